"""The context managers: a test's databases for a block of code, without pytest.

    async with with_isolated_postgres("my_test", "user_management") as (session, config):
    with with_isolated_postgres_sync("my_test") as (session, config):

Each is written once for both worlds: the object works under `with` (a `Session`, a sync
ClickHouse client) and under `async with` (an `AsyncSession`, an async client), so the
`_sync` names are the same context managers under the name the original design gives them.
The fixtures are these same context managers around a test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from netra_isolation.handle import IsolatedTestConfig

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    from netra_isolation.backends.clickhouse.isolator import (
        AsyncClickHouseClient,
        ClickHouseClient,
    )
    from netra_isolation.settings import Settings
    from netra_isolation.test_database_manager import TestDatabaseManager

SyncT = TypeVar("SyncT")
AsyncT = TypeVar("AsyncT")


class IsolatedDatabase(Generic[SyncT, AsyncT]):
    """A database of the test's own on one backend for the block, dropped after it (unless
    `cleanup_on_exit` is False, or `config.keep` was set). Subclasses say what the block
    gets, sync and async."""

    backend: str

    def __init__(
        self,
        config: IsolatedTestConfig,
        schema: str | None = None,
        scenario: str | None = None,
        *,
        bind: bool = True,
        before_cleanup: Callable[[], None] = lambda: None,
    ) -> None:
        self.config = config
        self.schema, self.scenario = schema, scenario
        self.bind = bind  # factories and the app's sessions use this database in the block
        self.before_cleanup = before_cleanup  # e.g. a fixture deciding to keep a failed test's

    def _cleanup(self) -> None:
        self.before_cleanup()
        if self.config.cleanup_on_exit:
            self.config.cleanup_databases_sync()

    def __enter__(self) -> SyncT:
        self._stack = ExitStack()
        self._stack.callback(self._cleanup)
        try:
            self.config.setup_sync(self.backend, self.schema, self.scenario)
            return self._open_sync(self._stack)
        except BaseException:
            self._stack.close()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.__exit__(kind, exc, tb)

    async def __aenter__(self) -> AsyncT:
        self._astack = AsyncExitStack()
        self._astack.callback(self._cleanup)
        try:
            await self.config.setup(self.backend, self.schema, self.scenario)
            return await self._open_async(self._astack)
        except BaseException:
            await self._astack.aclose()
            raise

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._astack.__aexit__(kind, exc, tb)

    def _open_sync(self, stack: ExitStack) -> SyncT:
        raise NotImplementedError

    async def _open_async(self, stack: AsyncExitStack) -> AsyncT:
        raise NotImplementedError


class IsolatedPostgres(
    IsolatedDatabase[
        "tuple[Session, IsolatedTestConfig]", "tuple[AsyncSession, IsolatedTestConfig]"
    ]
):
    """`(session, config)`: a `Session` under `with`, an `AsyncSession` under `async with`."""

    backend = "postgres"

    def _open_sync(self, stack: ExitStack) -> tuple[Session, IsolatedTestConfig]:
        session = stack.enter_context(self.config.postgres_session_sync())
        if self.bind:
            stack.enter_context(self.config.bind_test_session(session))
        return session, self.config

    async def _open_async(self, stack: AsyncExitStack) -> tuple[AsyncSession, IsolatedTestConfig]:
        session = await stack.enter_async_context(self.config.postgres_session())
        if self.bind:
            await stack.enter_async_context(self.config.abind_test_session(session))
        return session, self.config


class IsolatedClickHouse(
    IsolatedDatabase[
        "tuple[ClickHouseClient, str, IsolatedTestConfig]",
        "tuple[AsyncClickHouseClient, str, IsolatedTestConfig]",
    ]
):
    """`(client, database name, config)`, the client async under `async with`."""

    backend = "clickhouse"

    def _open_sync(self, stack: ExitStack) -> tuple[ClickHouseClient, str, IsolatedTestConfig]:
        name = self.config.databases[self.backend].name
        return self.config.clickhouse_client_sync(), name, self.config

    async def _open_async(
        self, stack: AsyncExitStack
    ) -> tuple[AsyncClickHouseClient, str, IsolatedTestConfig]:
        name = self.config.databases[self.backend].name
        return self.config.clickhouse_client(), name, self.config


def with_isolated_postgres(
    test_name: str,
    schema_type: str | None = None,
    scenario: str | None = None,
    *,
    level: str = "database",
    cleanup_on_exit: bool = True,
    manager: TestDatabaseManager | None = None,
) -> IsolatedPostgres:
    """`async with with_isolated_postgres("my_test", "user_management") as (session, config):`
    (an AsyncSession), or under `with` a Session."""
    config = IsolatedTestConfig(test_name, cleanup_on_exit, manager=manager, level=level)
    return IsolatedPostgres(config, schema_type, scenario)


def with_isolated_clickhouse(
    test_name: str,
    table_set: str | None = None,
    scenario: str | None = None,
    *,
    cleanup_on_exit: bool = True,
    manager: TestDatabaseManager | None = None,
) -> IsolatedClickHouse:
    """`async with with_isolated_clickhouse("t", "events") as (client, db_name, config):`, or
    under `with` a sync client."""
    config = IsolatedTestConfig(test_name, cleanup_on_exit, manager=manager)
    return IsolatedClickHouse(config, table_set, scenario)


# The original design's names of the same context managers, for `with`.
with_isolated_postgres_sync = with_isolated_postgres
with_isolated_clickhouse_sync = with_isolated_clickhouse


def full_stack_schemas(
    settings: Settings, schema: str | None, clickhouse_schema: str | None
) -> dict[str, str | None]:
    """Named ones, else the full_stack_* settings; None left: the scenario's, else defaults."""
    return {
        "schema": schema or settings.full_stack_schema,
        "clickhouse_schema": clickhouse_schema or settings.full_stack_clickhouse_schema,
    }


@asynccontextmanager
async def full_stack(
    config: IsolatedTestConfig,
    schemas: dict[str, str | None],
    scenario: str | None,
    scale: int = 1,
) -> AsyncIterator[dict[str, Any]]:
    """Both databases, set up at once, and a session bound for the block."""
    # both to the end, a failed one too: the other's database is then the config's to clean
    outcomes = await asyncio.gather(
        config.setup("postgres", schemas["schema"], scenario, scale),
        config.setup("clickhouse", schemas["clickhouse_schema"], scenario, scale),
        return_exceptions=True,
    )
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    pg, ch = config.databases["postgres"], config.databases["clickhouse"]
    async with config.postgres_session() as session, config.abind_test_session(session):
        yield {
            "postgres_session": session,
            "postgres_database": pg.name,
            "clickhouse_client": config.clickhouse_client(),
            "clickhouse_database": ch.name,
            "config": config,
        }


@asynccontextmanager
async def with_database_snapshots(
    test_name: str,
    schema_type: str = "thread_messages",
    table_set: str = "events",
    scenario: str | None = None,
    *,
    cleanup_on_exit: bool = True,
    manager: TestDatabaseManager | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Both databases, with `await env["reset_to_clean_state"]()` and snapshots:

    `async with with_database_snapshots("my_test") as env:`"""
    config = IsolatedTestConfig(test_name, cleanup_on_exit, manager=manager)
    schemas = full_stack_schemas(config.manager.settings, schema_type, table_set)
    try:
        async with full_stack(config, schemas, scenario) as env:
            env["reset_to_clean_state"] = config.reset_to_clean_state
            env["create_snapshot"] = config.create_snapshot
            env["restore_snapshot"] = config.restore_snapshot
            yield env
    finally:
        if config.cleanup_on_exit:
            await config.cleanup_databases()
