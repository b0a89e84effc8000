"""A project shaped like a large real application (tests/e2e/apps/real_app): a module-level
engine built at import from its config's DATABASE_URL (a developer database that does not
exist), psycopg2, a Starlette API driven by its TestClient, factories committing through a
scoped_session, a template built by its own setup function (create_all on its own engine,
`alembic stamp head` through an env.py that reads its config).

It runs in its own environment when NETRA_REAL_APP_PYTHON names one (scripts/test-apps.sh
makes it from the app's requirements.txt: SQLAlchemy 2.0.8, pytest 7.4.4), else in this
suite's. Run on the tool it leaves no row anywhere; run on its original hand-written conftest
it leaves rows in the shared database, which is what the tool removes."""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

from netra_isolation import PostgreSQLTestIsolator

ROOT = Path(__file__).resolve().parents[2]
APP = "real_app"
PYTHON = os.environ.get("NETRA_REAL_APP_PYTHON", sys.executable)
PINNED = {"sqlalchemy": "2.0.8", "pytest": "7.4.4"}
TABLES = ("users", "orders")


@pytest.fixture(autouse=True)
def _no_database_url(app: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's own DATABASE_URL (its developer database) is what the tool must not need."""
    monkeypatch.delenv("DATABASE_URL", raising=False)


def run(app: pytest.Pytester, *args: str) -> pytest.RunResult:
    return app.run(PYTHON, "-m", "pytest", "-p", "no:cacheprovider", *args, timeout=300)


def rows(url: str) -> int:
    with psycopg.connect(re.sub(r"^postgresql\+\w+", "postgresql", url)) as conn:
        return sum(
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in TABLES
        )


def test_the_app_runs_on_its_pinned_releases(app: pytest.Pytester) -> None:
    result = app.run(
        PYTHON, "-c", "import sqlalchemy, pytest; print(sqlalchemy.__version__, pytest.__version__)"
    )
    versions = result.stdout.lines[-1].split()
    if "NETRA_REAL_APP_PYTHON" not in os.environ:
        pytest.skip(f"in this suite's environment ({' '.join(versions)}), not the app's own")
    assert versions == [PINNED["sqlalchemy"], PINNED["pytest"]]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
@pytest.mark.parametrize("level", ["database", "transaction"])
def test_the_apps_suite_passes_and_leaves_no_row_anywhere(
    app: pytest.Pytester,
    app_templates: PostgreSQLTestIsolator,
    level: str,
    workers: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NETRA_ISOLATION_LEVEL", level)
    result = run(app, *workers)
    result.assert_outcomes(passed=11)
    server = app_templates.server
    with server.connect() as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s",
                (f"{app_templates.settings.prefix}%",),
            ).fetchall()
        ]
    templates = app_templates.templates()
    assert templates, "the setup function built the app's template"
    assert sorted(set(names) - set(templates)) == []  # no test's database remains
    for name in templates:  # and nothing a test wrote reached a template (which refuses
        copy = f"real_app_check_{uuid.uuid4().hex[:8]}"  # connections: count in a copy)
        with server.connect() as conn:
            conn.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{name}"')
        try:
            assert rows(server.url(copy).render_as_string(hide_password=False)) == 0
        finally:
            with server.connect() as conn:
                conn.execute(f'DROP DATABASE "{copy}"')


def test_the_original_conftest_leaks_rows_into_the_shared_database(
    app: pytest.Pytester, app_templates: PostgreSQLTestIsolator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same suite on the app's original conftest (one shared database, create_all, the
    tests commit): its rows stay behind, and the tests see each other's."""
    server = app_templates.server
    name = f"real_app_test_{uuid.uuid4().hex[:8]}"
    with server.connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = server.url(name, driver="psycopg2").render_as_string(hide_password=False)
        monkeypatch.setenv("DATABASE_URL", url)
        shutil.copy(app.path / "conftest_original.py", app.path / "tests" / "conftest.py")
        result = run(app, "-p", "no:netra_isolation")
        outcomes = result.parseoutcomes()
        leaked = rows(url)
        assert leaked > 0, result.stdout.str()
        # each repeated test finds the rows of the ones before it
        assert outcomes.get("failed", 0) >= 4, result.stdout.str()
        print(f"the original conftest left {leaked} rows; outcomes {outcomes}")
    finally:
        with server.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
