"""The sessions the tool hands out are made as the app makes its own (the first of the
setting `sessions` of each kind): its class, its options (expire_on_commit), its bind's
execution options (a schema_translate_map), at both levels."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, func, select

from netra_isolation import PostgreSQLTestIsolator, Settings

# also on the machine's PostgreSQL 15 (scripts/test.sh)
pytestmark = pytest.mark.both_servers

ROOT = Path(__file__).resolve().parents[2]
# the app's model of the table, in its own schema name: the app's map says where that is
USERS = Table("test_users", MetaData(), Column("id", Integer, primary_key=True), schema="tenant")

APP = """
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import Session, scoped_session, sessionmaker


class AppSession(Session):
    pass


engine = create_engine("postgresql+psycopg://dev:dev@127.0.0.1:1/app_dev")
SessionLocal = scoped_session(
    sessionmaker(
        bind=engine.execution_options(schema_translate_map={"tenant": "public"}),
        class_=AppSession,
    )
)
AsyncSessionLocal = async_sessionmaker(expire_on_commit=False)
"""


@pytest.fixture
def isolator(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = f"app_recipe_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    settings = Settings.load(root=ROOT).with_overrides(
        sessions=(f"{module}:AsyncSessionLocal", f"{module}:SessionLocal")
    )
    made = PostgreSQLTestIsolator(settings)
    yield made
    made.cleanup_all_sync()
    made.close()


@pytest.mark.parametrize("rollback", [False, True], ids=["database", "transaction"])
def test_the_tests_session_is_made_like_the_apps(isolator: Any, rollback: bool) -> None:
    test_id = f"t_recipe_{rollback}"
    isolator.create_isolated_database_sync(test_id, "basic")
    with isolator.session_sync(test_id, rollback=rollback) as session:
        assert type(session).__name__ == "AppSession"
        assert session.expire_on_commit  # the app's sessionmaker's default, not the tool's
        # the app's schema_translate_map: its schema "tenant" is this database's public
        assert session.scalar(select(func.count()).select_from(USERS)) == 0
