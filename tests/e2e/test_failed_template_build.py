"""A template that cannot be built, as a user meets it: the stock `alembic init` project
(tests/e2e/apps/stock_app) with 50 tests that all need its template, built by a setup
callable that fails, or by migrations one of which fails. The first test shows the user's
error with the user's frames, the tool's (and Alembic's, SQLAlchemy's) folded away; every
later test fails at once in one line naming it; the build runs once a run, with -n 2 too;
and the output does not grow by a line per test."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import pytest

APP = "stock_app"
TESTS = 50

MANY = f"""
import pytest

@pytest.mark.parametrize("n", range({TESTS}))
def test_needs_db(isolated_postgres_sync, n):
    pass
"""

SETUP = """
import os
from pathlib import Path


def build(connection):
    Path(__file__).parents[1].joinpath("built.log").open("a").write(f"{os.getpid()}\\n")
    connection.exec_driver_sql("CREATE TABLE tenants (id int)")
    raise RuntimeError("the tenant trigger needs psycopg2")
"""

BROKEN_MIGRATION = '''"""broken

Revision ID: 0003
Revises: 0002
"""

from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    Path(__file__).parents[2].joinpath("built.log").open("a").write("upgrade\\n")
    op.add_column("customers", sa.Column("nickname", sa.String(50)))
    raise RuntimeError("a broken migration")


def downgrade() -> None:
    pass
'''

WORKERS = pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
# What a run of 50 tests that fail this way prints, whatever their number: the header, the
# first test's error, a line for the rest, the tool's summary. A line per test (an error
# section or a short-summary line each) would pass 100.
MOST_LINES = 75


def errors_by_test(junit: Path) -> dict[str, str]:
    """Each test's error as the report has it (nodeid -> its text)."""
    found = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        for error in case:
            found[f"{module}.py::{case.get('name')}"] = error.text or ""
    return found


def check_shown_once(result: pytest.RunResult, app: pytest.Pytester, error: str) -> str:
    """The first test's error in full, once; every later test's one line naming it; returns
    that first test."""
    out = result.stdout.str()
    assert len(result.outlines) < MOST_LINES, out
    assert len(re.findall(rf"^E +{re.escape(error)}$", out, re.M)) == 1, out
    # no frame of the tool's, nor of the libraries between it and the user's code
    assert "netra_isolation/" not in out and "site-packages" not in out, out
    errors = errors_by_test(app.path / "junit.xml")
    assert len(errors) == TESTS
    [first] = [test for test, text in errors.items() if "TemplateBuildError" not in text]
    for test, text in errors.items():
        if test != first:
            assert text.startswith("TemplateBuildError: the postgres template "), text
            assert text.endswith(f"in full at {first}") and "\n" not in text.strip(), text
    result.stdout.re_match_lines(
        [
            rf"{TESTS - 1} tests failed at once needing the postgres template \w+: .*"
            rf"\(in full at {re.escape(first)}\)$",
            rf"=+ 1 error, {TESTS - 1} failed at once in .*",
        ]
    )
    return first


@WORKERS
def test_a_setup_callable_that_fails_is_shown_once_with_its_own_frame(
    run_app: Any, app: pytest.Pytester, workers: list[str]
) -> None:
    (app.path / "shop" / "testing.py").write_text(SETUP)
    with (app.path / "pyproject.toml").open("a") as pyproject:
        pyproject.write('\n[tool.netra_isolation]\npostgres_setup = "shop.testing:build"\n')
    app.makepyfile(**{"tests/test_many": MANY})
    result = run_app("tests/test_many.py", "--junitxml=junit.xml", *workers)
    error = "RuntimeError: the tenant trigger needs psycopg2"
    first = check_shown_once(result, app, error)
    out = result.stdout.str()
    # the user's frame, the line that raised marked
    assert out.count('>       raise RuntimeError("the tenant trigger needs psycopg2")') == 1
    assert out.count("shop/testing.py:9: RuntimeError") == 1
    assert f": {error} (in full at {first})" in out
    assert (app.path / "built.log").read_text().count("\n") == 1  # once a run, in one worker


@WORKERS
def test_a_migration_that_fails_is_shown_once_with_its_own_frame(
    run_app: Any, app: pytest.Pytester, workers: list[str]
) -> None:
    (app.path / "migrations" / "versions" / "0003_broken.py").write_text(BROKEN_MIGRATION)
    app.makepyfile(**{"tests/test_many": MANY})
    result = run_app("tests/test_many.py", "--junitxml=junit.xml", *workers)
    first = check_shown_once(result, app, "RuntimeError: a broken migration")
    out = result.stdout.str()
    assert out.count('>       raise RuntimeError("a broken migration")') == 1
    assert out.count("migrations/versions/0003_broken.py:21: RuntimeError") == 1
    # the tool's word on it, once, under the user's error
    assert out.count("E       MigrationError: alembic upgrade heads failed") == 1
    assert f": MigrationError (RuntimeError: a broken migration) (in full at {first})" in out
    assert (app.path / "built.log").read_text() == "upgrade\n"  # once a run, in one worker


MODULE_FIXTURE = f"""
import pytest
from sqlalchemy import create_engine, text


@pytest.fixture(scope="module")
def signed_in():
    # the app's engine, in a module-scoped fixture: the worker's database, built first
    engine = create_engine("postgresql+psycopg://dev:dev@127.0.0.1:1/shop_dev")
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


@pytest.mark.parametrize("n", range({TESTS}))
def test_needs_login(signed_in, n):
    pass
"""


@WORKERS
def test_a_build_failing_in_a_module_fixture_is_shown_once_not_once_a_test(
    run_app: Any, app: pytest.Pytester, workers: list[str]
) -> None:
    """pytest raises a module-scoped fixture's error again for each of its tests: after the
    first, each says it in one line."""
    (app.path / "shop" / "testing.py").write_text(SETUP)
    with (app.path / "pyproject.toml").open("a") as pyproject:
        pyproject.write('\n[tool.netra_isolation]\npostgres_setup = "shop.testing:build"\n')
    app.makepyfile(**{"tests/test_many": MODULE_FIXTURE})
    result = run_app("tests/test_many.py", "--junitxml=junit.xml", *workers)
    check_shown_once(result, app, "RuntimeError: the tenant trigger needs psycopg2")
    assert (app.path / "built.log").read_text().count("\n") == 1
