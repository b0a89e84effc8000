"""An async application in the shape of a popular FastAPI template, adopted with nothing
changed and nothing configured: `alembic init -t async`'s env.py; an asyncpg engine made at
import time from the app's settings, with `pool_pre_ping`; a session-wide autouse fixture
that makes `test_db_<worker>` with `CREATE DATABASE` on the app's engine, points the
settings at it, swaps in a new engine and runs `create_all`; a function-scoped `session` on
a connection whose transaction is rolled back; pytest-asyncio's session-wide loop (a loop
per test: test_pooled_pre_ping.py); some tests without that fixture. Every database the app
names is a decoy's, which must see no connection. Run by pytester in a subprocess, serially
and with `-n 2`, each building its template."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

FILES = {
    "pyproject.toml": """
[tool.pytest.ini_options]
pythonpath = ["."]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "session"
asyncio_default_test_loop_scope = "session"
""",
    "app/__init__.py": "",
    "app/settings.py": """
import os
from functools import lru_cache


@lru_cache
def database_url() -> str:
    return f"{os.environ['APP_DATABASE_SERVER']}/{os.environ.get('APP_DATABASE_DB', 'app')}"
""",
    "app/models.py": """
from sqlalchemy import Integer, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(Text, unique=True)
""",
    "app/database.py": """
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.settings import database_url


def new_engine(url):
    return create_async_engine(url, pool_pre_ping=True, pool_size=5, pool_recycle=600)


ENGINE = new_engine(database_url())
SESSIONMAKER = async_sessionmaker(ENGINE, expire_on_commit=False)
""",
    "app/users.py": """
from sqlalchemy import func, select

from app import database
from app.models import User


async def register(email: str) -> None:
    async with database.SESSIONMAKER() as session:
        session.add(User(email=email))
        await session.commit()


async def count() -> int:
    async with database.SESSIONMAKER() as session:
        return await session.scalar(select(func.count()).select_from(User))
""",
    "tests/__init__.py": "",
    "tests/conftest.py": """
import os

import pytest
import pytest_asyncio
import sqlalchemy
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import database
from app.models import Base
from app.settings import database_url


@pytest_asyncio.fixture(scope="session", autouse=True)
async def new_test_database():
    name = f"test_db_{os.getenv('PYTEST_XDIST_WORKER', 'gw0')}"
    conn = await database.ENGINE.connect()
    await conn.execution_options(isolation_level="AUTOCOMMIT")
    await conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name}"))
    await conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    await conn.close()
    patch = pytest.MonkeyPatch()
    patch.setenv("APP_DATABASE_DB", name)
    database_url.cache_clear()
    engine = database.new_engine(database_url())
    patch.setattr(database, "ENGINE", engine)
    patch.setattr(database, "SESSIONMAKER", async_sessionmaker(engine, expire_on_commit=False))
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


@pytest_asyncio.fixture
async def session():
    connection = await database.ENGINE.connect()
    transaction = await connection.begin()
    session = AsyncSession(bind=connection, expire_on_commit=False)
    yield session
    await session.close()
    await transaction.rollback()
    await connection.close()
""",
    "tests/test_users.py": """
import pytest
from sqlalchemy import func, select, text

from app import users
from app.models import User


@pytest.mark.parametrize("n", range(3))
async def test_the_session_sees_no_other_tests_rows(session, n):
    session.add(User(email="same@example.com"))
    await session.flush()
    assert await session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.parametrize("n", range(3))
async def test_the_apps_own_sessions_without_the_fixture(n):
    await users.register("same@example.com")
    assert await users.count() == 1


async def test_the_migrations_made_the_schema(session):
    version = await session.scalar(text("SELECT version_num FROM alembic_version"))
    assert version == "0001"
""",
}


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_app_as_it_is_passes_and_its_databases_are_never_reached(
    written_app: pytest.Pytester,
    async_alembic: Callable[[str, str, str], None],
    decoy: Any,
    monkeypatch: pytest.MonkeyPatch,
    workers: list[str],
) -> None:
    server = decoy.url("asyncpg").rsplit("/", 1)[0]
    async_alembic(f"{server}/app", "users", "email")
    monkeypatch.setenv("APP_DATABASE_SERVER", server)
    monkeypatch.delenv("APP_DATABASE_DB", raising=False)
    result = written_app.runpytest_subprocess("-p", "no:cacheprovider", *workers, timeout=180)
    result.assert_outcomes(passed=7)
    assert decoy.connections == 0
