"""ClickHouseTestIsolator: the PostgreSQL isolator's shape on ClickHouse.

A template database per fingerprint (migrated over HTTP by Alembic, seeded in one batch per
table, sealed last by a marker table); a clone per test made of hard links: `CREATE TABLE ..
AS template.t` plus `REPLACE PARTITION .. FROM` for every active partition (`CLONE AS` on
servers that have it), `INSERT .. SELECT` for engines without partitions, views re-created
from their DDL (a materialized view's own inner table refilled through the view). All SQL
goes through a small executor seam (sync SQL in, rows out): the server implementation here,
and chdb's in-process engine in the tests of modern servers.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, Unpack

from filelock import FileLock, Timeout
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from netra_isolation import compat
from netra_isolation.backends.clickhouse.server import (
    ClickHouseServerInfo,
    EphemeralClickHouse,
    server_info_from,
)
from netra_isolation.errors import SeedError
from netra_isolation.isolator import (
    MASK,
    DatabaseRef,
    IsolatorOptions,
    TableRows,
    TemplateRef,
    TemplateSpec,
    TestIsolatorBase,
)
from netra_isolation.liveness import (
    ClickHouseLease,
    clickhouse_owner_alive,
    clickhouse_template_used,
)
from netra_isolation.naming import Owner, slug
from netra_isolation.routing import refusing
from netra_isolation.settings import Settings
from netra_isolation.threads import to_thread

OWNER_TABLE = "_netra_owner"
SEALED_TABLE = "_netra_sealed"
UNPARTITIONED = {"Log", "TinyLog", "StripeLog", "Memory"}
PARTITIONS_PER_ALTER = 200
VIEWS = {"View", "MaterializedView", "LiveView"}


def quote(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Executor(Protocol):
    """Sync SQL in, rows out."""

    version: tuple[int, int]

    def execute(self, sql: str) -> list[tuple[Any, ...]]: ...

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


class ServerExecutor:
    """A real server over the native protocol (clickhouse-driver), one client per thread."""

    def __init__(self, server: ClickHouseServerInfo, timeout: float = 5.0) -> None:
        self.server = server
        self.timeout = timeout
        self._local = threading.local()
        self._clients: list[Any] = []
        self._lock = threading.Lock()
        major, minor, *_ = [*server.query("SELECT version()", timeout=timeout).split("."), "0"]
        self.version = (int(major), int(minor))

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from clickhouse_driver import Client

            client = Client(
                host=self.server.host,
                port=self.server.native_port,
                user=self.server.user,
                password=self.server.password,
                connect_timeout=self.timeout,
            )
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        result = self._client().execute(sql)
        return [tuple(row) for row in result] if isinstance(result, list) else []

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        cols = ", ".join(quote(c) for c in columns)
        self._client().execute(f"INSERT INTO {table} ({cols}) VALUES", [list(r) for r in rows])

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.disconnect()


VANISHED = (60, 81)  # ClickHouse's UNKNOWN_TABLE, UNKNOWN_DATABASE


class ClickHouseTestIsolator(TestIsolatorBase):
    backend = "clickhouse"
    schema_setting = "clickhouse_schema"
    name_length = 40  # short: database names become directory names on the server

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        executor: Executor | None = None,
        server: ClickHouseServerInfo | None = None,
        **options: Unpack[IsolatorOptions],
    ) -> None:
        compat.apply()  # ClickHouse's upstream gaps, fixed once ClickHouse is used
        super().__init__(settings, **options)
        self._lease: ClickHouseLease | None = None
        self._layouts: dict[str, list[_Table]] = {}  # sealed template -> how to copy it
        self._server = server
        self._executor = executor
        self._lock = threading.Lock()
        self._has_clone_as = True  # until the server says otherwise

    # -- server ---------------------------------------------------------------------------
    @property
    def server(self) -> ClickHouseServerInfo:
        server: ClickHouseServerInfo = self._cached_server()
        return server

    def _resolve_server(self) -> ClickHouseServerInfo:
        with self.step("server_start", "starting ClickHouse", announce=False):
            if self.settings.clickhouse is None:
                server = EphemeralClickHouse(self.settings.cache_dir, self.settings.server_data)
                self.throwaway = server
                return server.ensure_running(self.settings.server_start_timeout)
            return server_info_from(self.settings)

    @property
    def executor(self) -> Executor:
        if self._executor is None:
            server = self.server
            with self._lock:
                if self._executor is None:
                    self._executor = ServerExecutor(server, self.settings.connect_timeout)
        return self._executor

    @property
    def has_server(self) -> bool:
        return self._executor is not None

    def _run(self, sql: str) -> list[tuple[Any, ...]]:
        return self.executor.execute(sql)

    def _listing(self, sql: str) -> list[tuple[Any, ...]]:
        """A query over system.tables, which on servers before Atomic databases fails when a
        table it passes is being dropped (another run's cleanup): asked again, up to 5 times."""
        for attempt in range(5):
            try:
                return self._run(sql)
            except Exception as exc:
                if getattr(exc, "code", None) not in VANISHED or attempt == 4:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    @property
    def atomic(self) -> bool:
        """Servers with Atomic databases (20.10+), whose drops are lazy unless SYNC."""
        return self.executor.version >= (20, 10)

    def _clone_as(self, src: str, dst: str) -> bool:
        """`CREATE TABLE dst CLONE AS src` (hard links in one statement) where the server has
        it; it came during 24.x, so it is tried there and given up at the first syntax error."""
        if not self._has_clone_as or self.executor.version < (24, 1):
            return False
        try:
            self._run(f"CREATE TABLE {dst} CLONE AS {src}")
        except Exception as exc:
            if "syntax error" not in str(exc).lower():
                raise
            self._has_clone_as = False
            return False
        return True

    # -- templates ------------------------------------------------------------------------
    def server_identity(self) -> list[str]:
        return [str(self.executor.version[0]), self.server.user]

    def exists(self, database: str, table: str | None = None) -> bool:
        if table is None:
            sql = f"SELECT count() FROM system.databases WHERE name = {literal(database)}"
        else:
            sql = (
                f"SELECT count() FROM system.tables WHERE database = {literal(database)} "
                f"AND name = {literal(table)}"
            )
        return bool(self._run(sql)[0][0])

    def _build_lock(self, name: str) -> FileLock:
        """A file lock: the throwaway server is this machine's, and an external one is shared
        by runs that share this cache directory. A lock of a process that died is free."""
        lock_dir = self.settings.cache_dir / "clickhouse" / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(
            str(lock_dir / f"{name}.lock"), timeout=self.settings.template_build_timeout
        )

    def _is_sealed(self, name: str) -> bool:
        return self.exists(name, SEALED_TABLE)

    @contextmanager
    def _not_building(self, name: str) -> Iterator[bool]:
        """No build of it on this host (its file lock is free), and none elsewhere: its tables
        are older than a build may take (a build on another host does not take this host's
        file lock)."""
        lock = self._build_lock(name)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        try:
            rows = self._run(
                "SELECT count(), max(metadata_modification_time) < now() - "
                f"{float(self.settings.template_build_timeout)} FROM system.tables "
                f"WHERE database = {literal(name)}"
            )
            yield bool(rows and int(rows[0][0]) and int(rows[0][1]))
        finally:
            lock.release()

    def _build(self, spec: TemplateSpec, name: str, fingerprint: str) -> None:
        self._run(f"CREATE DATABASE {quote(name)}")
        # a PostgreSQL connection of the app's here has no template to go to
        why = f"the ClickHouse template {name} is being built, with no PostgreSQL database"
        try:
            with refusing(why):
                with self.metrics.timed("migrate"):
                    self._migrate(name, spec.schema_type)
                if spec.scenario is not None:
                    with self.metrics.timed("seed"):
                        self._seed(name, spec)
            self._mark(name, OWNER_TABLE, self.template_owner(spec, fingerprint).tag())
            # Sealing is the last step: an unsealed template is never cloned.
            self._mark(name, SEALED_TABLE, fingerprint)
        except BaseException:
            self.drop_database(name)
            raise

    def sqlalchemy_url(self, database: str | None = None) -> str:
        server = self.server
        return URL.create(
            "clickhouse+http",
            username=server.user,
            password=server.password,
            host=server.host,
            port=server.http_port,
            database=database or "default",
        ).render_as_string(hide_password=False)

    def _migrate(self, database: str, schema_type: str) -> None:
        url = self.sqlalchemy_url(database)
        engine = create_engine(url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                self.builder.build(connection, url, schema_type)
        finally:
            engine.dispose()

    def _seed(self, database: str, spec: TemplateSpec) -> None:
        scenario_name = spec.scenario
        assert scenario_name is not None
        try:
            tables = self.scenarios.seed_clickhouse(scenario_name, spec.scale)
            for table, rows in tables.items():
                if rows:
                    columns = list(rows[0])
                    self.executor.insert(
                        f"{quote(database)}.{quote(table)}",
                        columns,
                        [[row[c] for c in columns] for row in rows],
                    )
        except Exception as exc:
            raise SeedError(
                f"scenario {scenario_name!r} failed while seeding ClickHouse: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def _mark(self, database: str, table: str, value: str) -> None:
        target = f"{quote(database)}.{quote(table)}"
        self._run(f"CREATE TABLE {target} ENGINE = TinyLog AS SELECT {literal(value)} AS value")

    # -- clones ---------------------------------------------------------------------------
    def tables(self, database: str) -> list[tuple[str, str, str]]:
        rows = self._run(
            "SELECT name, engine, create_table_query FROM system.tables "
            f"WHERE database = {literal(database)} ORDER BY name"
        )
        return [(str(n), str(e), str(q)) for n, e, q in rows if not str(n).startswith(".inner")]

    def copy_tables(self, source: str, target: str, *, skip: Iterable[str] = ()) -> None:
        """Make `target`'s tables equal to `source`'s: hard links where the engine allows."""
        self._copy(self._layout(source, skip), source, target)

    def _layout(self, source: str, skip: Iterable[str] = ()) -> list[_Table]:
        """What copying `source` takes: its tables, their active partitions, whether a
        materialized view keeps its rows in a table of its own."""
        skipped = {OWNER_TABLE, SEALED_TABLE, *skip}
        layout = []
        for table, engine, ddl in self.tables(source):
            if table in skipped:
                continue
            partitions = []
            if engine.endswith("MergeTree"):
                partitions = [
                    str(partition_id)
                    for (partition_id,) in self._run(
                        "SELECT DISTINCT partition_id FROM system.parts WHERE "
                        f"database = {literal(source)} AND table = {literal(table)} AND active"
                    )
                ]
            inner = engine == "MaterializedView" and self._has_inner_table(source, table)
            layout.append(_Table(table, engine, ddl, partitions, inner))
        return layout

    def _copy(self, layout: list[_Table], source: str, target: str) -> None:
        for t in layout:
            if t.engine in VIEWS:
                continue
            src, dst = f"{quote(source)}.{quote(t.name)}", f"{quote(target)}.{quote(t.name)}"
            if t.engine.endswith("MergeTree") and self._clone_as(src, dst):
                continue
            self._run(f"CREATE TABLE {dst} AS {src}")
            if t.engine.endswith("MergeTree"):
                # the partitions in one ALTER (a few hundred at a time): a statement each
                # costs a round trip and a pass through the server's ALTER, twice the time
                for at in range(0, len(t.partitions), PARTITIONS_PER_ALTER):
                    chunk = t.partitions[at : at + PARTITIONS_PER_ALTER]
                    replace = (f"REPLACE PARTITION ID {literal(p)} FROM {src}" for p in chunk)
                    self._run(f"ALTER TABLE {dst} {', '.join(replace)}")
            else:
                self._run(f"INSERT INTO {dst} SELECT * FROM {src}")
        for t in layout:
            if t.engine in VIEWS:
                self._run(_retarget(t.ddl, source, target))
            if t.inner:
                # Its rows live in an inner table it owns (a `TO` target is copied above);
                # inserting into the view writes there without running the view's SELECT.
                src, dst = f"{quote(source)}.{quote(t.name)}", f"{quote(target)}.{quote(t.name)}"
                self._run(f"INSERT INTO {dst} SELECT * FROM {src}")

    def _has_inner_table(self, database: str, view: str) -> bool:
        """Whether a materialized view stores its rows in a table of its own (`.inner.<view>`,
        or `.inner_id.<uuid>` in Atomic databases) rather than in a `TO` table."""
        inner = {
            str(name)
            for (name,) in self._run(
                "SELECT name FROM system.tables WHERE database = "
                f"{literal(database)} AND name LIKE '.inner%'"
            )
        }
        if f".inner.{view}" in inner:
            return True
        if not self.atomic:
            return False
        rows = self._run(
            "SELECT toString(uuid) FROM system.tables WHERE database = "
            f"{literal(database)} AND name = {literal(view)}"
        )
        return bool(rows) and f".inner_id.{rows[0][0]}" in inner

    def clone(self, template: TemplateRef, name: str, owner: Owner) -> DatabaseRef:
        with self.metrics.timed("clone"):
            self._run(f"CREATE DATABASE {quote(name)}")
            try:
                # a sealed template never changes: what copying it takes is read once
                layout = self._layouts.get(template.name)
                if layout is None:
                    layout = self._layouts[template.name] = self._layout(template.name)
                self._copy(layout, template.name, name)
                self._mark(name, OWNER_TABLE, owner.tag())
            except BaseException:
                self.drop_database(name)
                raise
        self.metrics.count("databases_created")
        return DatabaseRef(self.backend, name, slug(owner.test or name), owner, template)

    def snapshot(self, db: DatabaseRef, name: str) -> DatabaseRef:
        """A copy of `db` as it is now, made of hard links."""
        with self.metrics.timed("snapshot"):
            self._run(f"CREATE DATABASE {quote(name)}")
            self.copy_tables(db.name, name)
            self._mark(name, OWNER_TABLE, db.owner.tag())
        return DatabaseRef(self.backend, name, db.test_id, db.owner, db.template)

    def restore(self, source: str, db: DatabaseRef) -> None:
        """Make `db` (same name, same clients) hold `source`'s tables: a snapshot or its
        template."""
        with self.metrics.timed("restore"):
            tables = sorted(self.tables(db.name), key=lambda t: t[1] not in VIEWS)
            for table, _engine, _ddl in tables:
                if table != OWNER_TABLE:
                    sync = " SYNC" if self.atomic else ""
                    self._run(f"DROP TABLE IF EXISTS {quote(db.name)}.{quote(table)}{sync}")
            self.copy_tables(source, db.name)

    def template_owners(self) -> dict[str, Owner | None]:
        pattern = literal(f"{self.settings.prefix}\\_tpl\\_%")
        rows = self._run(f"SELECT name FROM system.databases WHERE name LIKE {pattern}")
        return {str(name): self.owner_of(str(name)) for (name,) in rows}

    def drop_template(self, name: str) -> None:
        self.drop_database(name)

    @contextmanager
    def readable_state(self, template: TemplateRef) -> Iterator[str]:
        yield template.name  # readable as it is

    def table_rows(self, database: str, limit: int, connection: Any = None) -> dict[str, TableRows]:
        """Keyed by the model's primary key when the application declares one (ClickHouse keys
        are not unique: a diff compares whole rows if it is not)."""
        models = self.models()
        tables: dict[str, TableRows] = {}
        for name, engine, _ddl in self.tables(database):
            if name in (OWNER_TABLE, SEALED_TABLE, "alembic_version") or engine in VIEWS:
                continue
            target = f"{quote(database)}.{quote(name)}"
            columns = [str(r[0]) for r in self._run(f"DESCRIBE TABLE {target}")]
            model = models.tables.get(name) if models is not None else None
            key = [c.name for c in model.primary_key.columns] if model is not None else []
            key = key if key and set(key) <= set(columns) else []
            order = " ORDER BY " + ", ".join(quote(c) for c in key) if key else ""
            rows = self._run(f"SELECT * FROM {target}{order} LIMIT {limit + 1}")
            found = [dict(zip(columns, r, strict=True)) for r in rows]
            tables[name] = (key, found[:limit], len(found) > limit)
        return tables

    def column_values(self, database: str, table: str, column: str) -> set[Any] | None:
        if not self.exists(database, table):
            return None
        rows = self._run(f"SELECT DISTINCT {quote(column)} FROM {quote(database)}.{quote(table)}")
        return {row[0] for row in rows}

    @contextmanager
    def check_handle(self, db: DatabaseRef, own: Any = None) -> Iterator[Executor]:
        yield self.executor

    def template_is_sealed(self, template: TemplateRef) -> bool:
        if not self.exists(template.name, SEALED_TABLE):
            return False
        rows = self._run(f"SELECT value FROM {quote(template.name)}.{quote(SEALED_TABLE)}")
        return bool(rows) and rows[0][0] == template.fingerprint

    def database_size(self, name: str) -> int:
        rows = self._run(
            f"SELECT sum(bytes) FROM system.parts WHERE database = {literal(name)} AND active"
        )
        return int(rows[0][0] or 0) if rows else 0

    def owner_of(self, name: str) -> Owner | None:
        if not self.exists(name, OWNER_TABLE):
            return None
        rows = self._run(f"SELECT value FROM {quote(name)}.{quote(OWNER_TABLE)}")
        return Owner.parse(str(rows[0][0])) if rows else None

    def drop_database(self, name: str) -> None:
        sync = " SYNC" if self.atomic else ""
        self._run(f"DROP DATABASE IF EXISTS {quote(name)}{sync}")

    def remove(self, db: DatabaseRef) -> None:
        self.drop_database(db.name)

    def keep(self, db: DatabaseRef) -> None:
        self._run(f"DROP TABLE IF EXISTS {quote(db.name)}.{quote(OWNER_TABLE)}")
        self._mark(db.name, OWNER_TABLE, db.owner.keeping().tag())

    def drop(self, db: DatabaseRef) -> None:
        with self.metrics.timed("drop"):
            self.drop_database(db.name)
        self.metrics.count("databases_dropped")

    def owned(self, run: str | None = None) -> list[DatabaseRef]:
        prefix = f"{self.settings.prefix}\\_%"
        databases = self._listing(
            f"SELECT database FROM system.tables WHERE name = {literal(OWNER_TABLE)} "
            f"AND database LIKE {literal(prefix)} ORDER BY database"
        )
        refs = []
        for (database,) in databases:
            if self.exists(str(database), SEALED_TABLE):
                continue  # templates are not owned by a run
            try:
                rows = self._run(f"SELECT value FROM {quote(str(database))}.{quote(OWNER_TABLE)}")
            except Exception as exc:
                if getattr(exc, "code", None) in VANISHED:
                    continue  # dropped meanwhile by its own run, or by another's cleanup
                raise
            owner = Owner.parse(str(rows[0][0])) if rows else None
            if owner is not None and (run is None or owner.run == run):
                refs.append(DatabaseRef(self.backend, str(database), slug(owner.test), owner))
        return refs

    def _where(self, db: DatabaseRef) -> dict[str, Any]:
        server = self.server
        url = f"clickhouse+http://{server.user}:{MASK}@{server.host}:{server.http_port}/{db.name}"
        return {
            "host": server.host,
            "http_port": server.http_port,
            "native_port": server.native_port,
            "user": server.user,
            "url": url,
        }

    def client(self, test_id: str) -> ClickHouseClient:
        return ClickHouseClient(self.server, self.database(test_id).name)

    def start_lease(self) -> None:
        self._lease = ClickHouseLease(
            self._run, self.executor.insert, self.owner, self.settings.lease_seconds
        )

    def _use_template(self, name: str) -> None:
        if self._lease is not None:
            self._lease.use_template(name)

    @contextmanager
    def _unused(self, name: str) -> Iterator[bool]:
        with self._build_lock(name):  # this host's builders and users of it wait
            yield not clickhouse_template_used(self._run, name, self.settings.lease_seconds)

    def owner_alive(self, owner: Owner) -> bool | None:
        alive = clickhouse_owner_alive(self._run, owner, self.settings.lease_seconds)
        return self.liveness(owner) if alive is None else alive

    def close(self) -> None:
        if self._lease is not None:
            self._lease.release()
        if isinstance(self._executor, ServerExecutor):
            self._executor.close()


@dataclass(frozen=True)
class _Table:
    name: str
    engine: str
    ddl: str
    partitions: list[str]  # a MergeTree's active partitions
    inner: bool  # a materialized view whose rows live in a table of its own


def _retarget(ddl: str, source: str, target: str) -> str:
    """A view's DDL with every `source.` qualifier pointing at `target` instead."""
    pattern = re.compile(rf"(?<![\w`]){re.escape(source)}\.|`{re.escape(source)}`\.")
    return pattern.sub(f"{quote(target)}.", ddl)


class ClickHouseClient:
    """The client a sync test gets: queries and batch inserts, in the test's database."""

    def __init__(self, server: ClickHouseServerInfo, database: str) -> None:
        from clickhouse_driver import Client

        self.database = database
        self._client = Client(
            host=server.host,
            port=server.native_port,
            user=server.user,
            password=server.password,
            database=database,
            connect_timeout=5,
        )

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run `sql`; unqualified table names are the test's database's."""
        result = self._client.execute(sql, params)
        return [tuple(row) for row in result] if isinstance(result, list) else []

    def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        rows = self.execute(sql, params)
        return rows[0][0] if rows else None

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert all `rows` (dicts with the same keys) as one batch."""
        if not rows:
            return 0
        columns = list(rows[0])
        cols = ", ".join(quote(c) for c in columns)
        self._client.execute(
            f"INSERT INTO {quote(table)} ({cols}) VALUES", [[r[c] for c in columns] for r in rows]
        )
        return len(rows)

    def count(self, table: str) -> int:
        return int(self.scalar(f"SELECT count() FROM {quote(table)}"))

    def close(self) -> None:
        self._client.disconnect()


class AsyncClickHouseClient:
    """The same client for async tests: every call is awaited (run off the event loop)."""

    def __init__(self, sync: ClickHouseClient) -> None:
        self.sync = sync
        self.database = sync.database

    async def execute(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        return await to_thread(self.sync.execute, sql, params)

    async def scalar(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        return await to_thread(self.sync.scalar, sql, params)

    async def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        return await to_thread(self.sync.insert, table, rows)

    async def count(self, table: str) -> int:
        return await to_thread(self.sync.count, table)

    def close(self) -> None:
        self.sync.close()
