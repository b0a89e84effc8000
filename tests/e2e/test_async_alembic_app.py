"""A project made with `alembic init -t async` (its env.py runs the migrations on a loop of
its own, `asyncio.run`), an asyncpg engine of the app's, and async tests that ask for no
fixture of the tool's: the first test's app engine connects from inside pytest-asyncio's
running loop, which is where the template build starts, and env.py's `asyncio.run` cannot
start a loop there. The ini's `sqlalchemy.url` is a decoy's, never reached. Run by pytester in
a subprocess, serially and with `-n 2`, each run building the template anew."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

FILES = {
    "pyproject.toml": """
[tool.pytest.ini_options]
pythonpath = ["."]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
""",
    "notes/__init__.py": "",
    "notes/db.py": """
import os

from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(os.environ["NOTES_DATABASE_URL"], pool_pre_ping=True)
""",
    "tests/__init__.py": "",
    "tests/test_notes.py": """
import pytest
from sqlalchemy import text

from notes.db import engine


@pytest.mark.parametrize("n", range(3))
async def test_the_migrated_table_and_no_other_tests_rows(n):
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO notes (body) VALUES ('the same body')"))
        assert await conn.scalar(text("SELECT count(*) FROM notes")) == 1
""",
}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_an_async_env_py_builds_when_an_async_test_connects_first(
    written_app: pytest.Pytester,
    async_alembic: Callable[[str, str, str], None],
    app_templates: Any,
    decoy: Any,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[str],
) -> None:
    async_alembic(decoy.url("asyncpg", "notes_dev"), "notes", "body")
    monkeypatch.setenv("NOTES_DATABASE_URL", decoy.url("asyncpg", "notes_dev"))
    result = written_app.runpytest_subprocess("-p", "no:cacheprovider", *workers, timeout=180)
    result.assert_outcomes(passed=3)
    assert app_templates.templates()  # built by this run, under the prefix of its own
    assert decoy.connections == 0
