"""A project shaped like the FastAPI full-stack template (tests/e2e/apps/fastapi_app):
SQLModel over psycopg 3, an engine made at import from its settings' DATABASE_URL
(APP_DATABASE_URL), an env.py that reads that URL from the settings, not the ini, a scenario
that calls the app's own `init_db(session)`, a module-scoped TestClient and login, and a test
that asks for no database. Its [tool.netra_isolation] is configuration only; env.py, the
engine and init_db are the app's, unedited.

Its settings point at a decoy server: no connection may reach it, while the template is
migrated and seeded, in a test, or in a module-scoped fixture."""

from __future__ import annotations

from typing import Any

import pytest

from netra_isolation import PostgreSQLTestIsolator

APP = "fastapi_app"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_fastapi_app_never_reaches_its_configured_database(
    run_app: Any,
    app: pytest.Pytester,
    app_templates: PostgreSQLTestIsolator,
    decoy: Any,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[str],
) -> None:
    monkeypatch.setenv("APP_DATABASE_URL", decoy.url("psycopg", "app"))
    app_templates.clean_on_start = False  # look at what the run left, do not clean it
    result = run_app(*workers)
    result.assert_outcomes(passed=10)
    assert decoy.connections == 0
    assert len(app_templates.templates()) == 1  # at head, seeded by init_db
    assert app_templates.owned() == []  # no test's, worker's or copy made ahead is left


def test_without_the_tool_the_app_goes_to_the_decoy(
    run_app: Any, app: pytest.Pytester, decoy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decoy is where the app's configuration points: without the plugin, the test that
    needs no database fixture connects there (and fails, the decoy being no server)."""
    monkeypatch.setenv("APP_DATABASE_URL", decoy.url("psycopg", "app"))
    result = run_app("-p", "no:netra_isolation", "-k", "only_the_client")
    result.assert_outcomes(errors=1)
    assert decoy.connections > 0
