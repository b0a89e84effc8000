"""The per-test handle, `IsolatedTestConfig`: one test's databases, what it asked for, where
they are, its sessions and clients, snapshots, validation and cleanup.

Usable without pytest (the context managers and scripts use it); the fixtures hand one to
each test. It imports neither pytest nor a database driver until a database is set up.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import (
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from functools import partialmethod
from typing import TYPE_CHECKING, Any, TypeVar

from netra_isolation import backends
from netra_isolation.errors import ConfigurationError
from netra_isolation.naming import slug
from netra_isolation.settings import LEVELS
from netra_isolation.threads import to_thread

T = TypeVar("T")

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    from netra_isolation.backends.clickhouse.isolator import (
        AsyncClickHouseClient,
        ClickHouseClient,
    )
    from netra_isolation.database_snapshots import DatabaseSnapshots, StateDiff
    from netra_isolation.isolator import DatabaseRef, TestIsolatorBase
    from netra_isolation.test_database_manager import TestDatabaseManager


_default_manager: TestDatabaseManager | None = None
_default_lock = threading.Lock()


def default_manager() -> TestDatabaseManager:
    """The process's manager: the pytest plugin's during a run, else one made from settings."""
    global _default_manager
    with _default_lock:
        if _default_manager is None:
            from netra_isolation.test_database_manager import TestDatabaseManager

            _default_manager = TestDatabaseManager()
            atexit.register(_default_manager.finish)  # scripts leave nothing behind either
        return _default_manager


def set_default_manager(manager: TestDatabaseManager | None) -> None:
    global _default_manager
    with _default_lock:
        _default_manager = manager


class IsolatedTestConfig:
    """One test's databases: what it asked for, where they are, and their cleanup."""

    def __init__(
        self,
        test_id: str | None = None,
        cleanup_on_exit: bool = True,
        *,
        manager: TestDatabaseManager | None = None,
        nodeid: str | None = None,
        level: str = "database",
    ) -> None:
        if level not in LEVELS:
            raise ConfigurationError(f"isolation level {level!r} is not one of {LEVELS}")
        self.manager = manager or default_manager()
        self.test_id = slug(test_id or f"test_{uuid.uuid4().hex[:8]}")
        self.nodeid = nodeid or test_id or self.test_id
        self.cleanup_on_exit = cleanup_on_exit
        self.level = level
        self.keep = False
        self.validate = False  # validate after the test (marker or --netra-validate)
        self.databases: dict[str, DatabaseRef] = {}
        # the isolators of the backends set up, by name: the original design's debugging
        # snippets read it (`config._isolators["postgres"]`); `isolator(backend)` is the API
        self._isolators: dict[str, TestIsolatorBase] = {}
        self._clients: list[ClickHouseClient] = []
        self._sessions: list[AsyncSession | Session] = []
        self._snapshots: DatabaseSnapshots | None = None

    @property
    def snapshots(self) -> DatabaseSnapshots:
        """The test's snapshots (made on first use: most tests take none)."""
        if self._snapshots is None:
            from netra_isolation.database_snapshots import DatabaseSnapshots

            self._snapshots = DatabaseSnapshots(self)
        return self._snapshots

    def __repr__(self) -> str:
        return f"IsolatedTestConfig(test_id={self.test_id!r}, level={self.level!r})"

    def isolator(self, backend: str) -> TestIsolatorBase:
        """The isolator behind this test's `backend` database: its connection info, size,
        template, server."""
        return self.manager.isolator(backend)

    def shares_database(self, backend: str) -> bool:
        """Whether the test works on its worker's `backend` database inside a transaction
        rolled back after it (`transaction` level), rather than on a database of its own. A
        backend without transactions (ClickHouse) always gives a database of the test's own."""
        return self.level == "transaction" and backends.get(backend).transactional

    def setup_sync(
        self,
        backend: str,
        schema_type: str | None = None,
        scenario: str | None = None,
        scale: int = 1,
    ) -> DatabaseRef:
        """Give this test a database on `backend`, cloned from the (schema, scenario) template."""
        with self.manager.metrics.timed_for(self.nodeid, "setup"):
            return self._setup_sync(backend, schema_type, scenario, scale)

    def _setup_sync(
        self, backend: str, schema_type: str | None, scenario: str | None, scale: int
    ) -> DatabaseRef:
        from netra_isolation.isolator import TemplateSpec

        self.manager.run_process_setup()
        isolator = self.manager.isolator(backend)
        self._isolators[backend] = isolator
        if self.shares_database(backend):
            spec = TemplateSpec(isolator.schema_for(schema_type, scenario), scenario, scale)
            db = self.manager.worker_database(backend, spec)
            isolator.attach(self.test_id, db)
        else:
            db = isolator.create_isolated_database_sync(
                self.test_id, schema_type, scenario, scale=scale, nodeid=self.nodeid
            )
        self.databases[backend] = db
        return db

    async def setup(
        self,
        backend: str,
        schema_type: str | None = None,
        scenario: str | None = None,
        scale: int = 1,
    ) -> DatabaseRef:
        """`setup_sync` off the event loop; on it when nothing in it waits (a `transaction`
        level test on its worker's database, made already), which spares a thread's round trip."""
        wanted = (backend, schema_type, scenario, scale)
        if self.shares_database(backend) and self.manager.has_worker_database(*wanted):
            return self.setup_sync(*wanted)
        return await to_thread(self.setup_sync, *wanted)

    # -- PostgreSQL ----------------------------------------------------------------------
    setup_postgres_sync = partialmethod(setup_sync, "postgres")
    setup_postgres = partialmethod(setup, "postgres")

    @asynccontextmanager
    async def postgres_session(self) -> AsyncIterator[AsyncSession]:
        """The test's AsyncSession (rolled back afterwards at `transaction` level)."""
        rollback = self.level == "transaction"
        async with self.manager.postgres.session(self.test_id, rollback=rollback) as session:
            with self._tracked(session):
                yield session

    @contextmanager
    def postgres_session_sync(self) -> Iterator[Session]:
        rollback = self.level == "transaction"
        with self.manager.postgres.session_sync(self.test_id, rollback=rollback) as session:
            self._sessions.append(session)  # `_tracked`, inline: one context manager less
            try:
                yield session
            finally:
                self._sessions.remove(session)

    @contextmanager
    def _tracked(self, session: AsyncSession | Session) -> Iterator[None]:
        """The test's open sessions: what validation reads through and snapshots close."""
        self._sessions.append(session)
        try:
            yield
        finally:
            self._sessions.remove(session)

    def bind_test_session(self, session: AsyncSession | Session) -> AbstractContextManager[None]:
        """For the block, factories write to `session`, and the application's configured
        factories, sessions and engines (settings `factories`, `sessions`, `engines`, and
        engines given to `follow_engine`) use the test's database. In async code use
        `abind_test_session`, which also closes the async engines' pooled connections."""
        return self._bind_test_session(session, dispose_async=True)

    @asynccontextmanager
    async def abind_test_session(self, session: AsyncSession | Session) -> AsyncIterator[None]:
        """`bind_test_session` for async code: the app's async engines' pools are closed on
        the running loop before and after."""
        from netra_isolation.engines import dispose_async_engines

        await dispose_async_engines()
        try:
            with self._bind_test_session(session, dispose_async=False):
                yield
        finally:
            await dispose_async_engines()

    @contextmanager
    def _bind_test_session(
        self, session: AsyncSession | Session, *, dispose_async: bool
    ) -> Iterator[None]:
        from netra_isolation.binding import (
            bind_factories,
            bind_sessions,
            forget_sessions,
            load_sessions,
        )
        from netra_isolation.engines import engines_on, load_engines, postgres_driver
        from netra_isolation.seed_data_manager import bind_session

        settings = self.manager.settings
        bind_factories(settings.factories)
        load_engines(settings.engines)
        isolator = self.manager.postgres
        transaction = self.shares_database("postgres")
        application_name = isolator.application_name(self.test_id)
        sessions = load_sessions(settings.sessions)
        refusal = None
        if transaction:
            refusal = (
                f"{self.nodeid} runs at transaction level, where the app's own engines cannot "
                "join the test's transaction (it lives on one connection of the tool's; an "
                "engine opens connections of its own, whose commits would stay in the database "
                "later tests share). Use level='database' for this test "
                "(@pytest.mark.isolation(level='database')) or the project (level = \"database\")"
            )
        try:
            with (
                bind_session(session),
                bind_sessions(
                    sessions,
                    session,
                    transaction=transaction,
                    url=lambda driver: isolator.own_database_url(self.test_id, driver),
                    application_name=application_name,
                    sync_driver=postgres_driver(settings, "sync"),
                )
                if sessions  # none configured: nothing to bind, and nothing to look up
                else nullcontext(),
                engines_on(
                    isolator.server.url(self.databases["postgres"].name),
                    application_name,
                    refusal=refusal,
                    dispose_async=dispose_async,
                ),
            ):
                yield
        finally:
            forget_sessions(settings.factories)

    def database_url(self) -> str:
        """The test's PostgreSQL URL (the sync driver of the sessions the tool hands out,
        psycopg unless `postgres_driver` or the app's engine says otherwise): at
        `transaction` level the worker's database, where what an engine of its own commits
        is not rolled back."""
        db = self.databases.get("postgres")
        if db is None:
            raise ConfigurationError(f"{self.nodeid} has no PostgreSQL database (yet)")
        from netra_isolation.engines import postgres_driver

        driver = postgres_driver(self.manager.settings, "sync")
        url = self.manager.postgres.server.url(db.name, driver)
        return str(url.render_as_string(hide_password=False))

    async def release_sessions(self) -> None:
        """Give back the connections the test's sessions, the app's scoped sessions and the
        app's followed engines hold (they reconnect on next use): a PostgreSQL database is
        copied or replaced only while nobody is connected, and a connection held or pooled
        would be ended under them."""
        from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

        from netra_isolation.engines import dispose_async_engines

        for session in self._sessions:
            if isinstance(session, AsyncSession):
                await session.close()
                if isinstance(session.bind, AsyncEngine):  # the tool's engine for the session
                    await session.bind.dispose()
        self._release_sync_sessions(async_ones=False)  # closed here, on their loop
        await dispose_async_engines()

    # -- validation -------------------------------------------------------------------------
    def transaction_session(self) -> AsyncSession | Session | None:
        """At `transaction` level, the test's session: only its connection sees the test's
        uncommitted work. None at `database` level, where every connection sees it."""
        return self._sessions[-1] if self.shares_database("postgres") and self._sessions else None

    async def on_test_connection(self, read: Callable[[Connection | None, set[str]], T]) -> list[T]:
        """Run `read(connection, backends)` (sync) over the test's databases. At `transaction`
        level `connection` is the test's own; an AsyncSession's works only inside its greenlet
        on the event loop, so there PostgreSQL is read on the loop and the other backends in a
        thread alongside (two results). Otherwise one call reads everything in a thread."""
        from sqlalchemy.ext.asyncio import AsyncSession

        backends = set(self.databases)
        session = self.transaction_session()
        if isinstance(session, AsyncSession):
            return list(
                await asyncio.gather(
                    session.run_sync(lambda sync: read(sync.connection(), {"postgres"})),
                    to_thread(read, None, backends - {"postgres"}),
                )
            )
        if session is not None:
            return [read(session.connection(), backends)]
        return [await to_thread(read, None, backends)]

    def on_test_connection_sync(self, read: Callable[[Connection | None, set[str]], T]) -> T:
        from sqlalchemy.ext.asyncio import AsyncSession

        session = self.transaction_session()
        if isinstance(session, AsyncSession):
            raise ConfigurationError(
                "this test's session is an AsyncSession: use the awaitable form "
                "(`await config.validate_database_state()`, `await config.diff_state()`)"
            )
        return read(session.connection() if session is not None else None, set(self.databases))

    async def validate_database_state(self) -> dict[str, Any]:
        """Checks by category per backend, plus cross-database consistency."""
        from netra_isolation.database_state_validator import db_state_validator

        return await db_state_validator.validate(self)

    def validate_database_state_sync(self) -> dict[str, Any]:
        from netra_isolation.database_state_validator import db_state_validator

        return self.on_test_connection_sync(lambda c, _: db_state_validator.validate_sync(self, c))

    async def diff_state(self, snapshot_id: str | None = None) -> StateDiff:
        """Rows added, removed and changed per table since `snapshot_id` (default: the clean
        state right after migration and seeding); `print(diff)` shows them."""
        from netra_isolation.database_snapshots import StateDiff, diff_state_sync

        parts = await self.on_test_connection(lambda c, b: diff_state_sync(self, snapshot_id, c, b))
        return StateDiff(parts[0].against, [table for part in parts for table in part.tables])

    def diff_state_sync(self, snapshot_id: str | None = None) -> StateDiff:
        from netra_isolation.database_snapshots import diff_state_sync

        return self.on_test_connection_sync(lambda c, b: diff_state_sync(self, snapshot_id, c, b))

    # -- snapshots ------------------------------------------------------------------------
    async def create_snapshot(self, backend: str, label: str) -> str:
        """`snapshot_id = await config.create_snapshot("postgres", "after_setup")`"""
        return await self.snapshots.create(backend, label)

    async def restore_snapshot(self, snapshot_id: str) -> None:
        await self.snapshots.restore(snapshot_id)

    async def reset_to_clean_state(self, backends: list[str] | None = None) -> None:
        """Back to the state right after migration and seeding."""
        await self.snapshots.reset_to_clean_state(backends)

    def create_snapshot_sync(self, backend: str, label: str) -> str:
        self.snapshots.check([backend])
        self._release_sync_sessions()
        return self.snapshots.create_sync(backend, label)

    def restore_snapshot_sync(self, snapshot_id: str) -> None:
        self.snapshots.check(snapshot_id=snapshot_id)
        self._release_sync_sessions()
        self.snapshots.restore_sync(snapshot_id)

    def reset_to_clean_state_sync(self, backends: list[str] | None = None) -> None:
        self.snapshots.check(backends)
        self._release_sync_sessions()
        self.snapshots.reset_to_clean_state_sync(backends)

    def _release_sync_sessions(self, *, async_ones: bool = True) -> None:
        """The sync form of `release_sessions`; `async_ones`: also let go of the async
        sessions' pooled connections (which only their loop can close)."""
        from sqlalchemy import Engine
        from sqlalchemy.ext.asyncio import AsyncEngine
        from sqlalchemy.orm import Session

        from netra_isolation.binding import end_scoped_sessions
        from netra_isolation.engines import dispose_sync_engines

        for session in self._sessions:
            if isinstance(session, Session):
                session.close()
                if isinstance(session.bind, Engine):  # the tool's engine for the session
                    session.bind.dispose()
            elif async_ones and isinstance(session.bind, AsyncEngine):
                # an async test calling the sync form: its loop's connections cannot be
                # closed from here; the pool lets go of them (the server ends them) and
                # the session connects anew. Uncommitted work in it is lost, as ever.
                session.bind.sync_engine.dispose(close=False)
        end_scoped_sessions(self.manager.settings.sessions)  # the app's (setting `sessions`)
        dispose_sync_engines()

    # -- ClickHouse ----------------------------------------------------------------------
    setup_clickhouse_sync = partialmethod(setup_sync, "clickhouse")
    setup_clickhouse = partialmethod(setup, "clickhouse")

    def clickhouse_client_sync(self) -> ClickHouseClient:
        client = self.manager.clickhouse.client(self.test_id)
        self._clients.append(client)
        return client

    def clickhouse_client(self) -> AsyncClickHouseClient:
        from netra_isolation.backends.clickhouse.isolator import AsyncClickHouseClient

        return AsyncClickHouseClient(self.clickhouse_client_sync())

    # -- cleanup and info ---------------------------------------------------------------
    def cleanup_databases_sync(self) -> None:
        with self.manager.metrics.timed_for(self.nodeid, "cleanup"):
            self._cleanup()

    def metrics(self) -> dict[str, float]:
        """This test's numbers: seconds per step (setup, snapshot, restore, validation,
        cleanup; drop is added when the background drop is done) and database sizes."""
        return dict(self.manager.metrics.tests.get(self.nodeid, {}))

    def _cleanup(self) -> None:
        if not self.keep and self._snapshots is not None:
            self._snapshots.drop_all_sync()
        for client in self._clients:
            client.close()
        self._clients.clear()
        for backend in list(self.databases):
            del self.databases[backend]
            if self.shares_database(backend):  # the worker's database outlives the test
                self.isolator(backend).forget(self.test_id)
            else:
                self.manager.release(backend, self.test_id, keep=self.keep)

    async def cleanup_databases(self) -> None:
        """Drop this test's databases (kept instead when the test failed and keeping is on)."""
        self.cleanup_databases_sync()

    def get_database_info(self) -> dict[str, Any]:
        """Per backend: where the test's database is (password masked), its size, its level
        and its snapshots."""
        return {
            backend: self.isolator(backend).connection_info(db)
            | {
                "level": self.level,
                "size_bytes": self.isolator(backend).database_size(db.name),
                "snapshots": [s for s in self.snapshots.ids() if s.startswith(f"{backend}:")],
            }
            for backend, db in self.databases.items()
        }
