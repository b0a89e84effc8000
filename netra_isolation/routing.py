"""Where the application's PostgreSQL connections go under the tool: never where the app's
configuration points.

Class-level SQLAlchemy listeners, installed once per process, see every connection any
engine of the process opens (made before or after, sync or async, by the app, its env.py or
a helper library such as sqlalchemy-utils) and send it to the database the moment calls for:

- while a template is built: that template;
- in a non-function fixture (session, module, class scope) or outside any test: a database
  of the worker's, a clone of the default template that no test's database sees;
- in a test with a database of the tool's: that database (at `transaction` level, a
  connection that is not already there is refused: it could not join the test's
  transaction);
- in a test that asked for no database: a database of the test's own, made on first
  connect and dropped after the test.

The tool's own engines are marked (`own`) and left alone. A connection the listeners cannot
redirect (an engine made with `creator=`) is checked where it landed before anything runs
on it, and refused unless it is where it should be. `CREATE DATABASE` / `DROP DATABASE` on a
redirected connection do nothing: the database the app names *is* the one it was given.
Pooled connections remember where they went; one checked out when the target has changed
since is replaced. Those a test's code opened are marked for replacing when the test ends
(before its database is dropped), so that the next checkout replaces them before an engine's
`pool_pre_ping` pings one (a dead asyncpg connection, or one of a loop that is gone, fails
the ping with an error SQLAlchemy does not take for a disconnect).

Outside a pytest run (no `provider`), only a test's context manager routes; otherwise
connections go where they say, as they always did.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine, event, exc
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool

from netra_isolation.errors import ConfigurationError

E = TypeVar("E", Engine, AsyncEngine)

ROUTED = "netra_isolation.routed"  # a connection record's: the key of where it went
_OPENED_IN = "netra_isolation.test"  # a connection record's: the test that opened it
_SEEN = "netra_isolation.seen"  # a connection record's: do_connect ran for it
_OWN = "_netra_isolation_own"  # a dialect's attribute: an engine of the tool's own
_DATABASE_DDL = re.compile(r"\s*(CREATE|DROP)\s+DATABASE\b", re.IGNORECASE)

Key = tuple[str, str, str]  # host, port, database


@dataclass(frozen=True)
class Target:
    """Where the app's connections go: `url` (its host, port, user, password and database
    are used), tagged `application_name`; `refusal`: why a connection that is not already
    there may not connect (None: it is redirected); `what`: for messages."""

    url: URL | None
    application_name: str = ""
    refusal: str | None = None
    what: str = ""
    key: Key | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.url is not None:
            url = self.url
            object.__setattr__(
                self, "key", (str(url.host or ""), str(url.port or 5432), str(url.database))
            )


# (nodeid or None) -> the target of a test that asked for no database / of the worker
Provider = Callable[[str | None], Target]

_lock = threading.Lock()
_installed = False
_building: list[Target] = []  # a template build (innermost last)
_current: Target | None = None  # the running test's database (its fixture's)
_shared_depth = 0  # inside a non-function fixture's setup or teardown
_test: str | None = None  # the running test's nodeid
_provider: Provider | None = None
_names: dict[int, str] = {}  # by id() of a dialect: the app's name of its engine, for messages
_tool_databases: set[tuple[str, str, str]] = set()  # host, port, name prefix of the tool's
_any_routed = False  # whether a connection of this process was ever redirected or checked
_in_tests: weakref.WeakSet[Any] = weakref.WeakSet()  # pool entries a test's code opened


AnyEngine = Engine | AsyncEngine


def own(engine: E) -> E:
    """Mark an engine of the tool's own: its connections go where its URL says."""
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    setattr(sync.dialect, _OWN, True)
    return engine


def name_engine(engine: AnyEngine, name: str) -> None:
    """Name an engine of the app's in refusals (`module:attr` of the setting `engines`)."""
    sync = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    with _lock:
        _names[id(sync.dialect)] = name


def tool_databases(host: str, port: int, prefix: str) -> None:
    """The databases named `<prefix>_...` on the server at host:port are the tool's: a
    connection the app makes to one of them (a URL the tool handed out: `database_url()`,
    `netra_database_url`) goes there, as asked."""
    with _lock:
        _tool_databases.add((host, str(port), f"{prefix}_"))


def _is_tool_database(key: Key) -> bool:
    host, port, database = key
    with _lock:
        known = list(_tool_databases)
    return any(host == h and port == p and database.startswith(n) for h, p, n in known)


def target() -> Target | None:
    """Where an app's PostgreSQL connection goes now (None: where it says)."""
    with _lock:
        # a PostgreSQL template's build before another backend's (they build in parallel)
        ordered = sorted(_building, key=lambda entry: entry.url is not None)
        building = ordered[-1] if ordered else None
        current, shared, test, provider = _current, _shared_depth, _test, _provider
    if building is not None:
        return building
    if current is not None and not shared:
        return current
    if provider is None:
        return None
    return provider(None if shared else test)


# -- what the plugin and the isolators say ------------------------------------------------
def install() -> None:
    """The class-level listeners, once per process: where each connection goes, and where one
    made through `creator=` landed. Those that act on redirected connections alone (each
    statement, each checkout) follow the first connection redirected (`_mark`): until then
    every statement and checkout of the process would dispatch them for nothing."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    event.listen(Engine, "do_connect", _connect)
    event.listen(Pool, "first_connect", _landed)
    event.listen(Pool, "connect", _landed)


def set_provider(provider: Provider | None) -> Provider | None:
    """Who makes the databases of tests without one and of the worker (the plugin's manager);
    None: connections outside a test's context manager go where they say. Returns the one
    before (a run inside a run, pytester's, puts it back at its end)."""
    global _provider
    install()
    with _lock:
        previous, _provider = _provider, provider
    return previous


@contextmanager
def building(url: URL, what: str, application_name: str = "") -> Iterator[None]:
    """For the block (a template build), every app connection goes to `url`."""
    with _pushed(Target(url, application_name, what=what)):
        yield


@contextmanager
def refusing(why: str) -> Iterator[None]:
    """For the block (say, a ClickHouse template build), app PostgreSQL connections are
    refused with `why`."""
    with _pushed(Target(None, refusal=why, what="")):
        yield


@contextmanager
def _pushed(entry: Target) -> Iterator[None]:
    install()
    with _lock:
        _building.append(entry)
    try:
        yield
    finally:
        with _lock:
            _building.remove(entry)


@contextmanager
def test_target(entry: Target) -> Iterator[None]:
    """For the block, the running test's database is `entry`."""
    global _current
    install()
    with _lock:
        previous, _current = _current, entry
    _end_crossing_transactions()
    try:
        yield
    finally:
        with _lock:
            _current = previous
        _end_crossing_transactions()


def enter_test(nodeid: str | None) -> None:
    """The test `nodeid` runs now (None: no test). The pooled connections the test that
    ended opened are marked to be replaced at their next checkout."""
    global _test
    with _lock:
        ended, _test = _test, nodeid
        opened = [entry for entry in _in_tests if entry.info.get(_OPENED_IN) == ended]
    for entry in opened:
        _in_tests.discard(entry)
        entry.invalidate(soft=True)  # a public ConnectionPoolEntry's: closed at next checkout
    _end_crossing_transactions()


def enter_shared(step: int) -> None:
    """A non-function fixture starts (+1) or ends (-1) its setup or teardown."""
    global _shared_depth
    with _lock:
        _shared_depth = max(0, _shared_depth + step)
    _end_crossing_transactions()


def _end_crossing_transactions() -> None:
    """Roll back the app's sessions whose transaction holds a redirected connection: where
    the app's connections go has just changed (a test began or ended, a wider fixture set up
    or tore down), and such a transaction would go on in the database of before (a session
    kept by a module fixture, or refreshing an object after its commit, begins one). The
    session starts its next transaction where the moment's connections go. Nothing to look
    for while no connection of the process was ever redirected (called at every test
    boundary, and every session of the process would be looked at)."""
    if not _any_routed:
        return
    from sqlalchemy.orm.session import _sessions

    for session in list(_sessions.values()):
        transaction = session.get_transaction()
        if transaction is None:
            continue
        try:
            held = getattr(transaction, "_connections", {}).values()
            if not any(ROUTED in entry[0].info for entry in held):
                continue
            session.rollback()
        except Exception:  # an async session's (its loop's to end) or a dead connection
            continue


# -- the listeners --------------------------------------------------------------------------
def _key_of(cparams: dict[str, Any]) -> Key:
    database = cparams.get("dbname", cparams.get("database"))
    return (str(cparams.get("host") or ""), str(cparams.get("port") or 5432), str(database))


def _connect(dialect: Dialect, record: Any, cargs: list[Any], cparams: dict[str, Any]) -> None:
    info = record.info if record is not None else {}
    info[_SEEN] = True
    if dialect.name != "postgresql" or getattr(dialect, _OWN, False):
        return
    _as_the_app_gave(dialect, cargs, cparams)
    where = target()
    if where is None:
        return
    here = _key_of(cparams)
    if _is_tool_database(here):
        return
    if where.refusal is not None:
        if where.key is not None and here == where.key:
            _mark(info, here)
            _opened(record)
            return
        host, port, database = here
        engine = _names.get(id(dialect), "of the app's")
        raise ConfigurationError(
            f"engine {engine}: its connection to {host}:{port}/{database} was refused: "
            f"{where.refusal}"
        )
    assert where.url is not None
    args, params = dialect.create_connect_args(where.url)
    for key in _REWRITTEN:
        cparams.pop(key, None)
    cparams.update(params)
    cargs[:] = args
    if where.application_name:
        if dialect.driver == "asyncpg":
            server_settings = dict(cparams.get("server_settings") or {})
            server_settings["application_name"] = where.application_name
            cparams["server_settings"] = server_settings
        else:  # libpq: psycopg, psycopg2
            cparams["application_name"] = where.application_name
    _mark(info, where.key)
    _opened(record)


def _opened(record: Any) -> None:
    """A redirected or checked connection's pool entry, when a test's own code (not a wider
    fixture's, not a template build's) opened it: replaced once the test ends."""
    if record is None:
        return
    with _lock:
        test = _test if not _shared_depth and not _building else None
        if test is not None:
            record.info[_OPENED_IN] = test
            _in_tests.add(record)


def _mark(info: dict[Any, Any], key: Key | None) -> None:
    """A connection record's: where it went (see `_end_crossing_transactions`); the first in
    the process brings the listeners of redirected connections, before its first statement
    and its next checkout."""
    global _any_routed
    info[ROUTED] = key
    if _any_routed:
        return
    with _lock:
        if not _any_routed:
            event.listen(Engine, "before_cursor_execute", _before_execute, retval=True)
            event.listen(Pool, "checkout", _checkout)
            _any_routed = True


_REWRITTEN = ("host", "port", "dbname", "database", "user", "password", "service")
_TAGS = ("application_name", "server_settings")
_APP_GAVE = "_netra_isolation_app_gave"  # a dialect's attribute: its engine's own parameters


def _as_the_app_gave(dialect: Dialect, cargs: list[Any], cparams: dict[str, Any]) -> None:
    """Put back the engine's own connect parameters: SQLAlchemy before 2.0.10 hands
    do_connect the same dict at every connect, so the last redirect's values would be
    mistaken for the engine's own."""
    gave = getattr(dialect, _APP_GAVE, None)
    if gave is None:
        keys = (*_REWRITTEN, *_TAGS)
        gave = (list(cargs), {key: cparams[key] for key in keys if key in cparams})
        setattr(dialect, _APP_GAVE, gave)
        return
    for key in (*_REWRITTEN, *_TAGS):
        cparams.pop(key, None)
    cargs[:] = gave[0]
    cparams.update(gave[1])


def _destination(dbapi_connection: Any) -> Key | None:
    """Where a PostgreSQL DBAPI connection went (psycopg, psycopg2, asyncpg through
    SQLAlchemy's adapter); None: not one of those."""
    info = getattr(dbapi_connection, "info", None)
    if info is not None and hasattr(info, "dbname"):  # psycopg, psycopg2 (libpq's)
        return (str(info.host or ""), str(info.port or 5432), str(info.dbname))
    inner = getattr(dbapi_connection, "_connection", None)  # asyncpg, adapted
    params = getattr(inner, "_params", None)
    addr = getattr(inner, "_addr", None)
    if params is not None and addr is not None:
        host, port = (addr[0], addr[1]) if isinstance(addr, tuple) else (str(addr), 5432)
        return (str(host), str(port), str(params.database))
    return None


def _landed(dbapi_connection: Any, record: Any) -> None:
    """A connection do_connect never saw (an engine made with `creator=`): refused unless
    it is where it should be, before anything runs on it."""
    info = record.info
    if info.get(_SEEN) or info.get(ROUTED):
        return
    found = _destination(dbapi_connection)
    if found is None:
        return  # not a PostgreSQL connection of a driver the tool knows
    where = target()
    if where is None or found == where.key:
        _mark(info, found if where is not None else None)
        if where is not None:
            _opened(record)
        return
    dbapi_connection.close()
    host, port, database = found
    raise ConfigurationError(
        f"an engine made with creator= connected to {host}:{port}/{database}, which the "
        f"tool cannot redirect (it should be {where.what or 'the database the tool gave'}); "
        "it was closed before use. Make the engine from a URL (create_engine(url)), so the "
        "tool can send it to the test's database"
    )


def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    went = record.info.get(ROUTED)
    if went is None:
        return
    where = target()
    if where is None or where.key != went:
        # pooled while another database was the target: connect anew, to the current one
        raise exc.DisconnectionError("netra_isolation: the test's database changed")


def _before_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> tuple[str, Any]:
    if ROUTED in conn.info and _DATABASE_DDL.match(statement):
        # sqlalchemy-utils' create_database / drop_database and their kind: the database
        # the app names is the one the tool gave it, which exists and is not the app's to drop
        return "SELECT 1", {} if isinstance(parameters, dict) else ()
    return statement, parameters
