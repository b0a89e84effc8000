"""A multi-tenant project (tests/e2e/apps/tenant_app): its PostgreSQL template is built by a
setup function of its own (`postgres_setup`) that reads the URL from the app's config module
(the developer's database: a decoy here): sqlalchemy-utils' database_exists/create_database,
a shared schema, a schema per tenant made by create_all under a schema_translate_map, each
stamped at the head of the app's own Alembic tree through its env.py (which reads the same
config). Its `scoped_session` is bound with a schema_translate_map; its factories commit
through it; one module overrides its session fixture without asking for a database. It
imports only `netra_isolation` itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netra_isolation import PostgreSQLTestIsolator

ROOT = Path(__file__).resolve().parents[2]
APP = "tenant_app"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_tenant_app_sees_its_own_rows_and_never_reaches_its_configured_database(
    run_app: Any,
    app: pytest.Pytester,
    app_templates: PostgreSQLTestIsolator,
    workers: list[str],
    decoy: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TENANTS_DATABASE_URL", decoy.url(database="tenants_dev"))
    app_templates.clean_on_start = False  # look at what the run left, do not clean it
    result = run_app(*workers)
    result.assert_outcomes(passed=14)
    assert decoy.connections == 0
    assert len(app_templates.templates()) == 2  # built by the setup function, and seeded
    assert app_templates.owned() == []  # the tests' and the workers' databases are gone
    with app_templates.server.connect() as conn:
        names = [name for (name,) in conn.execute("SELECT datname FROM pg_database")]
    assert "tenants_dev" not in names  # sqlalchemy-utils' create_database made nothing
