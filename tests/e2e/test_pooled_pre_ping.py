"""An app whose engines ping pooled connections before use (`pool_pre_ping=True`) and whose
tests ask for no database of the tool's: each test gets a database of its own on first
connect, dropped after it, while the engine's pool keeps its connection. The next test's
checkout must not ping that connection (asyncpg's error on it, from a loop that is gone, is
no disconnect to SQLAlchemy, so it would reach the test); it is replaced first, and lands on
that test's database. Run by pytester in a subprocess, with a decoy where the app points."""

from __future__ import annotations

from typing import Any

import pytest

FILES = {
    "pyproject.toml": """
[tool.pytest.ini_options]
pythonpath = ["."]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"

[tool.netra_isolation]
postgres_metadata = "notes.db:metadata"
""",
    "notes/__init__.py": "",
    "notes/db.py": """
import os

from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine
from sqlalchemy.ext.asyncio import create_async_engine

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("body", Text))

URL = os.environ["NOTES_DATABASE_URL"]
engine = create_engine(URL, pool_pre_ping=True)
async_engine = create_async_engine(URL.replace("+psycopg", "+asyncpg"), pool_pre_ping=True)
""",
    "tests/__init__.py": "",
    "tests/test_notes.py": """
import pytest
from sqlalchemy import func, select, text

from notes.db import async_engine, engine, notes

seen = []


@pytest.mark.parametrize("n", range(4))
async def test_async_engine_each_test_its_own_database(n):
    async with async_engine.begin() as conn:
        await conn.execute(notes.insert().values(body=f"note {n}"))
        assert await conn.scalar(select(func.count()).select_from(notes)) == 1
        seen.append(await conn.scalar(text("SELECT current_database()")))
    assert len(set(seen)) == len(seen)  # a database of each test's own


@pytest.mark.parametrize("n", range(4))
def test_sync_engine_each_test_its_own_database(n):
    with engine.begin() as conn:
        conn.execute(notes.insert().values(body=f"note {n}"))
        assert conn.scalar(select(func.count()).select_from(notes)) == 1
""",
}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_pooled_connections_of_a_test_are_not_pinged_in_the_next(
    written_app: pytest.Pytester, decoy: Any, monkeypatch: pytest.MonkeyPatch, workers: list[str]
) -> None:
    monkeypatch.setenv("NOTES_DATABASE_URL", decoy.url("psycopg"))
    result = written_app.runpytest_subprocess("-p", "no:cacheprovider", *workers, timeout=180)
    result.assert_outcomes(passed=8)
    assert decoy.connections == 0
