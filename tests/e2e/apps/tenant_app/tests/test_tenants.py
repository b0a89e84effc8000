"""The tenants app's own tests: its session (tenant_a by schema_translate_map), its
committing factories, its scenario, its template built by its own setup function."""

from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from tenants import db, services
from tenants.factories import TenantFactory

APP = Path(__file__).resolve().parents[1]
HEAD = ScriptDirectory.from_config(Config(str(APP / "alembic.ini"))).get_current_head()
APP_ENGINE = db.Session.session_factory.kw["bind"]


def levels(**marker):
    return pytest.mark.parametrize(
        "level",
        [
            pytest.param(lv, marks=pytest.mark.isolation(level=lv, **marker))
            for lv in ("database", "transaction")
        ],
    )


def count(session, table):
    return session.scalar(text(f"SELECT count(*) FROM {table}"))


@pytest.mark.parametrize("n", range(3))
@levels(scenario="two_tenants")
def test_counts_only_its_scenario_and_itself(isolated_postgres_sync, level, n):
    session, config = isolated_postgres_sync
    assert config.level == level
    assert services.tenant_count() == 2  # the app's session, on the test's database
    assert services.item_count() == 1
    TenantFactory(slug="mine")  # unique: another test's "mine" would make this fail
    services.add_item("mine")  # the app commits
    assert services.tenant_count() == 3
    assert services.item_count() == 2
    assert count(session, "shared.tenants") == 3
    assert count(session, "tenant_a.items") == 2  # landed in tenant_a, nowhere else
    assert count(session, "tenant_b.items") == 0


@levels()
def test_the_apps_writes_land_in_the_tests_database(isolated_postgres_sync, level):
    session, config = isolated_postgres_sync
    mine = session.scalar(text("SELECT current_database()"))
    app = db.Session.scalar(text("SELECT current_database()"))
    assert app == mine
    if level == "database":
        assert config.test_id in mine
    assert services.tenant_count() == 0  # no scenario: nothing seeded
    services.add_item("only mine")
    assert session.scalar(text("SELECT name FROM tenant_a.items")) == "only mine"
    assert session.scalar(text("SELECT to_regclass('public.items')")) is None


@levels()
def test_each_tenant_schema_is_at_the_alembic_head(isolated_postgres_sync, level):
    session, _ = isolated_postgres_sync
    assert HEAD == "t0002"
    for tenant in ("tenant_a", "tenant_b"):
        assert session.scalar(text(f"SELECT version_num FROM {tenant}.alembic_version")) == HEAD
        columns = session.scalars(
            text(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = :s AND table_name = 'items' ORDER BY 1"
            ),
            {"s": tenant},
        ).all()
        assert columns == ["id", "name", "note"]


def test_outside_the_fixtures_the_app_keeps_its_own_session_factory():
    assert db.Session.session_factory.kw["bind"] is APP_ENGINE
    assert APP_ENGINE.url.database == "tenants_dev"  # the developer's, never reached
    assert APP_ENGINE.get_execution_options()["schema_translate_map"][None] == "tenant_a"
