"""IsolatedTestConfig, the `with_isolated_*` context managers and the fixtures.

Loadable as a plugin (`pytest_plugins = ["netra_isolation.isolated_test_config"]`, as the
original design's conftest does); the `pytest11` entry point loads it too.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
import pytest_asyncio

from netra_isolation.errors import ConfigurationError, ValidationFailedError
from netra_isolation.naming import slug, test_id_from_nodeid
from netra_isolation.settings import LEVELS, Settings

# Loaded with the plugin, so only what declaring the fixtures needs is imported here: the
# drivers, factory-boy, Alembic and SQLAlchemy's ORM load with the first test that uses them.
if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    from netra_isolation.clickhouse_isolation import AsyncClickHouseClient, ClickHouseClient
    from netra_isolation.database_snapshots import StateDiff
    from netra_isolation.isolator import DatabaseRef
    from netra_isolation.test_database_manager import TestDatabaseManager

T = TypeVar("T")

CONFIGS = pytest.StashKey[list["IsolatedTestConfig"]]()
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
        from netra_isolation.database_snapshots import DatabaseSnapshots

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
        self._isolators: dict[str, Any] = {}
        self._clients: list[ClickHouseClient] = []
        self._sessions: list[AsyncSession | Session] = []
        self.snapshots = DatabaseSnapshots(self)

    def __repr__(self) -> str:
        return f"IsolatedTestConfig(test_id={self.test_id!r}, level={self.level!r})"

    def _shared(self, backend: str) -> bool:
        # ClickHouse has no transactions: it is always isolated by database.
        return self.level == "transaction" and backend == "postgres"

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
        if self._shared(backend):
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
        return await asyncio.to_thread(self.setup_sync, backend, schema_type, scenario, scale)

    # -- PostgreSQL ----------------------------------------------------------------------
    def setup_postgres_sync(
        self, schema_type: str | None = None, scenario: str | None = None
    ) -> DatabaseRef:
        return self.setup_sync("postgres", schema_type, scenario)

    async def setup_postgres(
        self, schema_type: str | None = None, scenario: str | None = None
    ) -> DatabaseRef:
        return await self.setup("postgres", schema_type, scenario)

    @asynccontextmanager
    async def postgres_session(self) -> AsyncIterator[AsyncSession]:
        """The test's AsyncSession (rolled back afterwards at `transaction` level)."""
        rollback = self.level == "transaction"
        async with self.manager.postgres.session(self.test_id, rollback=rollback) as session:
            self._sessions.append(session)
            try:
                yield session
            finally:
                self._sessions.remove(session)

    @contextmanager
    def postgres_session_sync(self) -> Iterator[Session]:
        rollback = self.level == "transaction"
        with self.manager.postgres.session_sync(self.test_id, rollback=rollback) as session:
            self._sessions.append(session)
            try:
                yield session
            finally:
                self._sessions.remove(session)

    @contextmanager
    def bind_test_session(self, session: AsyncSession | Session) -> Iterator[None]:
        """For the block, factories write to `session`, and the application's configured
        factories, sessions and engines (settings `factories`, `sessions`, `engines`, and
        engines given to `follow_engine`) use the test's database. In async code use
        `abind_test_session`, which also closes the async engines' pooled connections."""
        with self._bind_test_session(session, dispose_async=True):
            yield

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
        refusal = None
        if self._shared("postgres"):
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
                    load_sessions(settings.sessions),
                    session,
                    transaction=self._shared("postgres"),
                    url=lambda driver: isolator.database_url(self.test_id, driver),
                    application_name=isolator.application_name(self.test_id),
                    sync_driver=postgres_driver(settings, "sync"),
                ),
                engines_on(
                    isolator.server.url(self.databases["postgres"].name),
                    isolator.application_name(self.test_id),
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
        """Give back the connections the test's sessions hold (they reconnect on next use):
        a PostgreSQL database is copied or replaced only while nobody is connected."""
        from sqlalchemy.ext.asyncio import AsyncSession

        for session in self._sessions:
            if isinstance(session, AsyncSession):
                await session.close()
            else:
                session.close()

    # -- validation -------------------------------------------------------------------------
    def transaction_session(self) -> AsyncSession | Session | None:
        """At `transaction` level, the test's session: only its connection sees the test's
        uncommitted work. None at `database` level, where every connection sees it."""
        return self._sessions[-1] if self._shared("postgres") and self._sessions else None

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
                    asyncio.to_thread(read, None, backends - {"postgres"}),
                )
            )
        if session is not None:
            return [read(session.connection(), backends)]
        return [await asyncio.to_thread(read, None, backends)]

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

    def _release_sync_sessions(self) -> None:
        from sqlalchemy.orm import Session

        for session in self._sessions:
            if isinstance(session, Session):
                session.close()

    # -- ClickHouse ----------------------------------------------------------------------
    def setup_clickhouse_sync(
        self, table_set: str | None = None, scenario: str | None = None
    ) -> DatabaseRef:
        return self.setup_sync("clickhouse", table_set, scenario)

    async def setup_clickhouse(
        self, table_set: str | None = None, scenario: str | None = None
    ) -> DatabaseRef:
        return await self.setup("clickhouse", table_set, scenario)

    def clickhouse_client_sync(self) -> ClickHouseClient:
        client: ClickHouseClient = self.manager.isolator("clickhouse").client(self.test_id)
        self._clients.append(client)
        return client

    def clickhouse_client(self) -> AsyncClickHouseClient:
        from netra_isolation.clickhouse_isolation import AsyncClickHouseClient

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
        if not self.keep:
            self.snapshots.drop_all_sync()
        for client in self._clients:
            client.close()
        self._clients.clear()
        for backend in list(self.databases):
            del self.databases[backend]
            if self._shared(backend):  # the worker's database outlives the test
                self._isolators[backend].forget(self.test_id)
            else:
                self.manager.release(backend, self.test_id, keep=self.keep)

    async def cleanup_databases(self) -> None:
        """Drop this test's databases (kept instead when the test failed and keeping is on)."""
        self.cleanup_databases_sync()

    def get_database_info(self) -> dict[str, Any]:
        """Per backend: where the test's database is (password masked), its size, its level
        and its snapshots."""
        return {
            backend: self._isolators[backend].connection_info(db)
            | {
                "level": self.level,
                "size_bytes": self._isolators[backend].database_size(db.name),
                "snapshots": [s for s in self.snapshots.ids() if s.startswith(f"{backend}:")],
            }
            for backend, db in self.databases.items()
        }


@dataclass(frozen=True)
class IsolationRequest:
    level: str = "database"
    schema: str | None = None
    scenario: str | None = None
    clickhouse_schema: str | None = None
    scale: int | None = None
    validate: bool = False


def isolation(
    level: str = "database",
    schema: str | None = None,
    scenario: str | None = None,
    clickhouse_schema: str | None = None,
    scale: int | None = None,
    validate: bool = False,
) -> IsolationRequest:
    """The signature of `@pytest.mark.isolation(...)`: a typo fails with Python's own message."""
    if level not in LEVELS:
        raise ConfigurationError(f"level={level!r} is not one of {', '.join(LEVELS)}")
    if scale is not None and (not isinstance(scale, int) or scale < 1):
        raise ConfigurationError(f"scale={scale!r} is not a whole number of at least 1")
    return IsolationRequest(level, schema, scenario, clickhouse_schema, scale, bool(validate))


@asynccontextmanager
async def with_isolated_postgres(
    test_name: str,
    schema_type: str | None = None,
    scenario: str | None = None,
    *,
    level: str = "database",
    cleanup_on_exit: bool = True,
    manager: TestDatabaseManager | None = None,
) -> AsyncIterator[tuple[AsyncSession, IsolatedTestConfig]]:
    """`async with with_isolated_postgres("my_test", "user_management") as (session, config):`"""
    config = IsolatedTestConfig(test_name, cleanup_on_exit, manager=manager, level=level)
    try:
        await config.setup_postgres(schema_type, scenario)
        async with config.postgres_session() as session, config.abind_test_session(session):
            yield session, config
    finally:
        if config.cleanup_on_exit:
            await config.cleanup_databases()


@asynccontextmanager
async def with_isolated_clickhouse(
    test_name: str,
    table_set: str | None = None,
    scenario: str | None = None,
    *,
    cleanup_on_exit: bool = True,
    manager: TestDatabaseManager | None = None,
) -> AsyncIterator[tuple[AsyncClickHouseClient, str, IsolatedTestConfig]]:
    """`async with with_isolated_clickhouse("t", "events") as (client, db_name, config):`"""
    config = IsolatedTestConfig(test_name, cleanup_on_exit, manager=manager)
    try:
        db = await config.setup_clickhouse(table_set, scenario)
        yield config.clickhouse_client(), db.name, config
    finally:
        if config.cleanup_on_exit:
            await config.cleanup_databases()


@contextmanager
def with_isolated_clickhouse_sync(
    test_name: str,
    table_set: str | None = None,
    scenario: str | None = None,
    *,
    cleanup_on_exit: bool = True,
    manager: TestDatabaseManager | None = None,
) -> Iterator[tuple[ClickHouseClient, str, IsolatedTestConfig]]:
    """The synchronous twin of `with_isolated_clickhouse`."""
    config = IsolatedTestConfig(test_name, cleanup_on_exit, manager=manager)
    try:
        db = config.setup_clickhouse_sync(table_set, scenario)
        yield config.clickhouse_client_sync(), db.name, config
    finally:
        if config.cleanup_on_exit:
            config.cleanup_databases_sync()


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
    schemas = _full_stack_schemas(config.manager.settings, schema_type, table_set)
    try:
        async with _full_stack(config, schemas, scenario) as env:
            env["reset_to_clean_state"] = config.reset_to_clean_state
            env["create_snapshot"] = config.create_snapshot
            env["restore_snapshot"] = config.restore_snapshot
            yield env
    finally:
        if config.cleanup_on_exit:
            await config.cleanup_databases()


@contextmanager
def with_isolated_postgres_sync(
    test_name: str,
    schema_type: str | None = None,
    scenario: str | None = None,
    *,
    level: str = "database",
    cleanup_on_exit: bool = True,
    manager: TestDatabaseManager | None = None,
) -> Iterator[tuple[Session, IsolatedTestConfig]]:
    """The synchronous twin of `with_isolated_postgres` (a psycopg `Session`)."""
    config = IsolatedTestConfig(test_name, cleanup_on_exit, manager=manager, level=level)
    try:
        config.setup_postgres_sync(schema_type, scenario)
        with config.postgres_session_sync() as session, config.bind_test_session(session):
            yield session, config
    finally:
        if config.cleanup_on_exit:
            config.cleanup_databases_sync()


# -- fixtures --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def netra_manager(pytestconfig: pytest.Config) -> TestDatabaseManager:
    """The session's (worker's) manager; override to use your own settings."""
    from netra_isolation.pytest_plugin import manager_for

    return manager_for(pytestconfig)


def _request_isolation(
    request: pytest.FixtureRequest, manager: TestDatabaseManager
) -> IsolationRequest:
    __tracebackhide__ = True
    settings = manager.settings
    # schemas left unnamed are the scenario's own, else the configured ones (at setup)
    defaults: dict[str, Any] = {
        "level": settings.level,
        "scenario": settings.scenario,
        "validate": settings.validate,
    }
    marker = request.node.get_closest_marker("isolation")
    if marker is None:
        return isolation(**defaults)
    try:
        return isolation(*marker.args, **{**defaults, **marker.kwargs})
    except (TypeError, ConfigurationError) as exc:
        pytest.fail(
            f"bad @pytest.mark.isolation on {request.node.nodeid}: {exc}. "
            "Use @pytest.mark.isolation(level='database'|'transaction', schema=..., scenario=...)",
            pytrace=False,
        )


def _test_config(
    request: pytest.FixtureRequest, manager: TestDatabaseManager
) -> tuple[IsolatedTestConfig, IsolationRequest]:
    wanted = _request_isolation(request, manager)
    config = IsolatedTestConfig(
        test_id_from_nodeid(request.node.nodeid),
        manager=manager,
        nodeid=request.node.nodeid,
        level=wanted.level,
    )
    config.validate = wanted.validate
    request.node.stash.setdefault(CONFIGS, []).append(config)
    return config, wanted


def pytest_configure(config: pytest.Config) -> None:
    """Loaded as the original design does it, `pytest_plugins =
    ["netra_isolation.isolated_test_config"]`, on a machine where the package is importable but
    its entry point is not installed: bring in the rest of the plugin (marker, xdist wiring,
    cleanup at session end, summary), unless `-p no:netra_isolation` turned it off."""
    from netra_isolation import pytest_plugin

    manager = config.pluginmanager
    if not manager.is_registered(pytest_plugin) and not manager.is_blocked("netra_isolation"):
        manager.register(pytest_plugin, "netra_isolation")


async def _validate_before_rollback(
    request: pytest.FixtureRequest, config: IsolatedTestConfig
) -> None:
    """The validation gate for an async test at `transaction` level: its uncommitted work is
    visible only on its own connection, on its event loop, so the check runs here, in the
    fixture's teardown before the rollback, and fails the teardown with the report."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from netra_isolation.database_state_validator import failed, failure_message
    from netra_isolation.pytest_plugin import test_failed

    if not config.validate or not isinstance(config.transaction_session(), AsyncSession):
        return
    if test_failed(request.node):
        return
    results = await config.validate_database_state()
    if failed(results):
        raise ValidationFailedError(failure_message(results, await config.diff_state()))


def _finish(request: pytest.FixtureRequest, config: IsolatedTestConfig) -> None:
    from netra_isolation.pytest_plugin import test_failed

    config.keep = config.manager.settings.keep_failed and test_failed(request.node)
    config.cleanup_databases_sync()


@pytest_asyncio.fixture
async def isolated_postgres(
    request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
) -> AsyncIterator[tuple[AsyncSession, IsolatedTestConfig]]:
    """`(AsyncSession, config)` on a PostgreSQL database of the test's own."""
    config, wanted = _test_config(request, netra_manager)
    try:
        await config.setup_postgres(wanted.schema, wanted.scenario)
        async with config.postgres_session() as session:
            async with config.abind_test_session(session):
                yield session, config
            await _validate_before_rollback(request, config)
    finally:
        _finish(request, config)


@pytest.fixture
def isolated_postgres_sync(
    request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
) -> Iterator[tuple[Session, IsolatedTestConfig]]:
    """`(Session, config)`: the synchronous twin of `isolated_postgres`."""
    config, wanted = _test_config(request, netra_manager)
    try:
        config.setup_postgres_sync(wanted.schema, wanted.scenario)
        with config.postgres_session_sync() as session, config.bind_test_session(session):
            yield session, config
    finally:
        _finish(request, config)


@pytest.fixture
def netra_database_url(request: pytest.FixtureRequest) -> str:
    """The running test's PostgreSQL URL (psycopg driver), for code that builds its own
    engine; the test's isolated_postgres / isolated_postgres_sync if it asked for one, else
    isolated_postgres_sync."""
    for name in ("isolated_postgres", "isolated_postgres_sync", "isolated_full_stack"):
        if name in request.fixturenames:
            request.getfixturevalue(name)
            break
    else:
        request.getfixturevalue("isolated_postgres_sync")
    configs: list[IsolatedTestConfig] = request.node.stash.get(CONFIGS, [])
    for config in configs:
        if "postgres" in config.databases:
            return config.database_url()
    raise ConfigurationError(f"{request.node.nodeid} has no PostgreSQL database")


@pytest_asyncio.fixture
async def isolated_clickhouse(
    request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
) -> AsyncIterator[tuple[AsyncClickHouseClient, str, IsolatedTestConfig]]:
    """`(client, db_name, config)`: a ClickHouse database of the test's own; `await` the
    client's `execute`, `insert`, `scalar` and `count`."""
    config, wanted = _test_config(request, netra_manager)
    try:
        db = await config.setup_clickhouse(wanted.clickhouse_schema, wanted.scenario)
        yield config.clickhouse_client(), db.name, config
    finally:
        _finish(request, config)


@pytest.fixture
def isolated_clickhouse_sync(
    request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
) -> Iterator[tuple[ClickHouseClient, str, IsolatedTestConfig]]:
    """The synchronous twin of `isolated_clickhouse`."""
    config, wanted = _test_config(request, netra_manager)
    try:
        db = config.setup_clickhouse_sync(wanted.clickhouse_schema, wanted.scenario)
        yield config.clickhouse_client_sync(), db.name, config
    finally:
        _finish(request, config)


def _full_stack_schemas(
    settings: Settings, schema: str | None, clickhouse_schema: str | None
) -> dict[str, str | None]:
    """Named ones, else the full_stack_* settings; None left: the scenario's, else defaults."""
    return {
        "schema": schema or settings.full_stack_schema,
        "clickhouse_schema": clickhouse_schema or settings.full_stack_clickhouse_schema,
    }


@asynccontextmanager
async def _full_stack(
    config: IsolatedTestConfig,
    schemas: dict[str, str | None],
    scenario: str | None,
    scale: int = 1,
) -> AsyncIterator[dict[str, Any]]:
    pg, ch = await asyncio.gather(
        config.setup("postgres", schemas["schema"], scenario, scale),
        config.setup("clickhouse", schemas["clickhouse_schema"], scenario, scale),
    )
    async with config.postgres_session() as session, config.abind_test_session(session):
        yield {
            "postgres_session": session,
            "postgres_database": pg.name,
            "clickhouse_client": config.clickhouse_client(),
            "clickhouse_database": ch.name,
            "config": config,
        }


@pytest_asyncio.fixture
async def isolated_full_stack(
    request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
) -> AsyncIterator[dict[str, Any]]:
    """PostgreSQL and ClickHouse, both isolated and both seeded with the marker's scenario."""
    config, wanted = _test_config(request, netra_manager)
    schemas = _full_stack_schemas(netra_manager.settings, wanted.schema, wanted.clickhouse_schema)
    try:
        async with _full_stack(config, schemas, wanted.scenario) as env:
            yield env
            await _validate_before_rollback(request, config)
    finally:
        _finish(request, config)


@pytest_asyncio.fixture
async def performance_test_config(
    request: pytest.FixtureRequest, netra_manager: TestDatabaseManager
) -> AsyncIterator[dict[str, Any]]:
    """Both databases pre-loaded with the performance scenario times a scale factor (marker
    `isolation(scale=...)`, else `--netra-performance-scale`, default 5), baked into a
    template once per fingerprint and scale: tests pay for a clone, not for the seeding."""
    config, wanted = _test_config(request, netra_manager)
    schemas = _full_stack_schemas(netra_manager.settings, wanted.schema, wanted.clickhouse_schema)
    scale = wanted.scale or netra_manager.settings.performance_scale
    scenario = wanted.scenario or "performance"
    try:
        async with _full_stack(config, schemas, scenario, scale) as env:
            env["scale_factor"] = scale
            env["scenario"] = scenario
            yield env
            await _validate_before_rollback(request, config)
    finally:
        _finish(request, config)
