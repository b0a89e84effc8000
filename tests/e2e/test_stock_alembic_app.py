"""A stock `alembic init` project (tests/e2e/apps/stock_app): a linear history, env.py as
`alembic init` writes it but for `target_metadata`, no [tool.netra_isolation], no conftest.
Its ini's `sqlalchemy.url` names a developer's database on the same server: a decoy that the
tool must never touch, whether it builds the template or refuses to."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from netra_isolation import PostgreSQLTestIsolator, Settings

# also on the machine's PostgreSQL 15 (scripts/test.sh)
pytestmark = pytest.mark.both_servers

ROOT = Path(__file__).resolve().parents[2]
APP = "stock_app"


@pytest.fixture
def server() -> Iterator[PostgreSQLTestIsolator]:
    """The suite's PostgreSQL server (where the decoy lives too)."""
    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    yield isolator
    isolator.close()


@pytest.fixture
def scratch_database(server: PostgreSQLTestIsolator) -> Iterator[object]:
    """`scratch_database()`: a database of the test's own, not made by the tool (a
    developer's), dropped afterwards; returns its URL."""
    made: list[str] = []

    def make() -> str:
        name = f"shop_dev_{uuid.uuid4().hex[:8]}"
        with server.server.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return server.server.url(name).render_as_string(hide_password=False)

    yield make
    with server.server.connect() as conn:
        for name in made:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tables(url: str) -> list[str]:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        ).fetchall()
    return [r[0] for r in rows]


def point_ini_at(app: pytest.Pytester, url: str) -> None:
    ini = app.path / "alembic.ini"
    text = ini.read_text().replace(
        "sqlalchemy.url = driver://user:pass@localhost/dbname",
        f"sqlalchemy.url = {url.replace('%', '%%')}",
    )
    ini.write_text(text)


def env_py_connecting_to(app: pytest.Pytester, url: str) -> None:
    """The app's env.py made to build its engine from a URL of its own (say, an environment
    variable's) instead of the ini's."""
    env_py = app.path / "migrations" / "env.py"
    env_py.write_text(
        env_py.read_text().replace(
            "    connectable = engine_from_config(\n"
            "        config.get_section(config.config_ini_section, {}),",
            f"    connectable = engine_from_config(\n        {{'sqlalchemy.url': {url!r}}},",
        )
    )


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_stock_project_works_with_no_configuration_and_spares_the_decoy(
    run_app: Any, app: pytest.Pytester, scratch_database: object, workers: list[str]
) -> None:
    decoy = scratch_database()  # type: ignore[operator]
    point_ini_at(app, decoy)
    result = run_app(*workers)
    result.assert_outcomes(passed=12)
    assert tables(decoy) == []


@pytest.mark.parametrize("own_url", ["another database", "a server that is down"])
def test_an_env_py_that_connects_to_a_url_of_its_own_migrates_the_template(
    run_app: Any,
    app: pytest.Pytester,
    scratch_database: object,
    own_url: str,
) -> None:
    """env.py builds its engine from a URL of its own (say, DATABASE_URL from the app's
    settings), not the ini's: its connection goes to the template all the same, with no edit
    to env.py, and neither the ini's database nor its own is reached."""
    import socket

    decoy = scratch_database()  # type: ignore[operator]
    point_ini_at(app, decoy)
    if own_url == "another database":
        elsewhere = scratch_database()  # type: ignore[operator]
    else:
        with socket.socket() as sock:  # a port where nothing listens
            sock.bind(("127.0.0.1", 0))
            elsewhere = f"postgresql+psycopg://dev:dev@127.0.0.1:{sock.getsockname()[1]}/dev"
    env_py_connecting_to(app, elsewhere)
    result = run_app("-k", "register and database")
    result.assert_outcomes(passed=3)
    assert tables(decoy) == []
    if own_url == "another database":
        assert tables(elsewhere) == []


def test_validation_compares_with_the_apps_own_models(
    run_app: Any, app: pytest.Pytester, scratch_database: object
) -> None:
    """`--netra-validate` checks the app's database against the app's models (env.py's
    target_metadata), not this repository's; a check can be turned off by name."""
    point_ini_at(app, scratch_database())  # type: ignore[operator]
    run_app("--netra-validate", "-k", "register").assert_outcomes(passed=10)
    models = app.path / "shop" / "models.py"
    models.write_text(  # models that say otherwise than the migrations did
        models.read_text().replace("String(200), unique=True", "String(100), unique=True")
    )
    failed = run_app("--netra-validate", "-k", "register and database and 0")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*[[] failed[]] schema.models_match*VARCHAR(length=200)*"])
    (app.path / "pyproject.toml").write_text(
        (app.path / "pyproject.toml").read_text()
        + '\n[tool.netra_isolation]\nvalidation_skip = ["schema.models_match"]\n'
    )
    run_app("--netra-validate", "-k", "register and database and 0").assert_outcomes(passed=1)
