"""The application's own engines, pointed at the running test's database, and the driver of
the sessions the tool hands out.

An engine the app creates itself (often at import time, from an environment variable) is
followed: a `do_connect` listener, registered once per engine, rewrites the connect
parameters to the running test's database while a test runs, and the engine's pool is
disposed before and after each test, so no pooled connection to another database is
reused. Outside a test the listener changes nothing: the engine connects where its URL says.

At `transaction` level a followed engine refuses to connect: the test's transaction lives on
one connection of the tool's, and an engine hands out connections of its own (several at
once, from its pool, with its own driver), so its commits could not be made part of it; they
would land, committed, in the worker's database that later tests share. The error names the
engine and says to use `level="database"`.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine, event
from sqlalchemy.engine import URL, Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from netra_isolation.errors import ConfigurationError
from netra_isolation.settings import (
    ASYNC_DRIVERS,
    SYNC_DRIVERS,
    Settings,
    drivers_named,
    resolve_name,
)

T = TypeVar("T")

AnyEngine = Engine | AsyncEngine

# the driver's package, and what to install to get it
PACKAGES = {
    "psycopg": ("psycopg", "psycopg[binary]"),
    "psycopg2": ("psycopg2", "psycopg2-binary (or psycopg2)"),
    "asyncpg": ("asyncpg", "asyncpg"),
}
DEFAULT_DRIVERS = {"sync": "psycopg", "async": "asyncpg"}


@dataclass
class _Followed:
    name: str
    engine: AnyEngine
    own: frozenset[str]  # the connect parameters the engine's own URL gives


@dataclass(frozen=True)
class _Target:
    url: URL  # the test's database (only its host, port, user, password, name are used)
    application_name: str
    refusal: str | None = None  # at `transaction` level: why the engine may not connect


_lock = threading.Lock()
_followed: dict[int, _Followed] = {}  # by id() of the engine's dialect, shared by its copies
_current: _Target | None = None
# the tool's own pooled engines on the test's database (for the app's session factories):
# emptied with the followed ones, before a snapshot or restore ends their connections
_pooled: set[Engine] = set()


def _sync(engine: AnyEngine) -> Engine:
    return engine.sync_engine if isinstance(engine, AsyncEngine) else engine


def follow_engine(engine: AnyEngine, name: str | None = None) -> AnyEngine:
    """Make an `Engine` or `AsyncEngine` of the app's connect to the running test's database
    during every PostgreSQL test of this process (as the setting `engines` does); outside a
    test it connects where it always did. Returns the engine; calling it again is harmless.

        engine = netra_isolation.follow_engine(myapp.db.engine)   # in conftest.py
    """
    if not isinstance(engine, Engine | AsyncEngine):
        raise ConfigurationError(
            f"{name or engine!r} is a {type(engine).__name__}, not a SQLAlchemy Engine or "
            "AsyncEngine"
        )
    sync = _sync(engine)
    label = name or str(sync.url)  # str() of a URL masks its password
    if sync.dialect.name != "postgresql":
        raise ConfigurationError(
            f"engine {label} is a {sync.dialect.name} engine: only PostgreSQL engines can "
            "follow the test's database"
        )
    with _lock:
        if id(sync.dialect) in _followed:
            return engine
        own = frozenset(sync.dialect.create_connect_args(sync.url)[1])
        followed = _Followed(label, engine, own)
        event.listen(sync, "do_connect", partial(_connect, followed))
        _followed[id(sync.dialect)] = followed
    return engine


def _connect(
    followed: _Followed,
    dialect: Dialect,
    record: Any,
    cargs: list[Any],
    cparams: dict[str, Any],
) -> None:
    target = _current
    if target is None:
        return
    if target.refusal is not None:
        raise ConfigurationError(f"engine {followed.name}: {target.refusal}")
    args, params = dialect.create_connect_args(target.url)
    for key in followed.own:
        cparams.pop(key, None)
    cparams.update(params)
    cargs[:] = args
    if dialect.driver == "asyncpg":
        server_settings = dict(cparams.get("server_settings") or {})
        server_settings["application_name"] = target.application_name
        cparams["server_settings"] = server_settings
    else:  # libpq: psycopg, psycopg2
        cparams["application_name"] = target.application_name


def load_engines(specs: tuple[str, ...]) -> list[tuple[str, AnyEngine]]:
    """The engines the setting `engines` names (`module:attr`), each followed."""
    found = []
    for spec in specs:
        _, engine = resolve_name(spec, "engines", example="myapp.db:engine")
        if not isinstance(engine, Engine | AsyncEngine):
            raise ConfigurationError(
                f"{spec!r} of the setting 'engines' is a {type(engine).__name__}, not a "
                "SQLAlchemy Engine or AsyncEngine"
            )
        follow_engine(engine, spec)
        found.append((spec, engine))
    return found


@contextmanager
def pooled(engine: Engine) -> Iterator[Engine]:
    """For the block, `engine` (a sync one of the tool's, on the test's database) has its pool
    emptied wherever the followed engines' are; disposed after it."""
    with _lock:
        _pooled.add(engine)
    try:
        yield engine
    finally:
        with _lock:
            _pooled.discard(engine)
        engine.dispose()


def _dispose(include_async: bool) -> None:
    with _lock:
        followed = list(_followed.values())
        pooled = list(_pooled)
    for engine in pooled:
        engine.dispose()
    for entry in followed:
        if isinstance(entry.engine, AsyncEngine):
            if include_async:  # its connections belong to an event loop: let them go
                entry.engine.sync_engine.dispose(close=False)
        else:
            entry.engine.dispose()


def dispose_sync_engines() -> None:
    """Close the pooled connections of the followed sync engines."""
    _dispose(include_async=False)


async def dispose_async_engines() -> None:
    """Close the pooled connections of the followed async engines (on the running loop)."""
    with _lock:
        followed = list(_followed.values())
    for entry in followed:
        if isinstance(entry.engine, AsyncEngine):
            await entry.engine.dispose()


@contextmanager
def engines_on(
    url: URL, application_name: str, *, refusal: str | None = None, dispose_async: bool = True
) -> Iterator[None]:
    """For the block, followed engines connect to `url` (or, with `refusal`, raise it);
    their pools are emptied before and after. `dispose_async=False`: the caller awaits
    `dispose_async_engines()` itself, on its loop."""
    global _current
    with _lock:
        previous, _current = _current, _Target(url, application_name, refusal)
    try:
        _dispose(dispose_async)
        yield
    finally:
        try:
            _dispose(dispose_async)
        finally:
            with _lock:
                _current = previous


# -- the driver ----------------------------------------------------------------------------
def postgres_driver(settings: Settings, kind: str) -> str:
    """The driver of the `kind` ("sync" / "async") sessions the tool hands out: the one
    `postgres_driver` names, else the first `engines` engine's of that kind, else psycopg /
    asyncpg. A driver whose package is missing is an error naming what to install."""
    named = drivers_named(settings.postgres_driver)
    driver, source = named.get(kind), f"postgres_driver, from {settings.source('postgres_driver')}"
    if driver is None:
        usable = SYNC_DRIVERS if kind == "sync" else ASYNC_DRIVERS
        for spec, engine in load_engines(settings.engines):
            engine_driver = _sync(engine).dialect.driver
            if isinstance(engine, AsyncEngine) == (kind == "async") and engine_driver in usable:
                driver, source = engine_driver, f"the driver of the engine {spec}"
                break
    if driver is None:
        return DEFAULT_DRIVERS[kind]
    package, install = PACKAGES[driver]
    if importlib.util.find_spec(package) is None:
        raise ConfigurationError(
            f"PostgreSQL driver {driver!r} ({source}) is not installed: install {install} "
            f"(pip install {install.split(' ')[0]}), or set postgres_driver to one that is"
        )
    return driver


@asynccontextmanager
async def in_greenlet(context: AbstractContextManager[T]) -> AsyncIterator[T]:
    """A sync context manager over an async driver's connection, entered and left in
    SQLAlchemy's greenlet (as `AsyncSession` runs its sync `Session`), so that sync code
    written once serves async callers."""
    value = await greenlet_spawn(context.__enter__)
    try:
        yield value
    except BaseException as exc:
        if not await greenlet_spawn(context.__exit__, type(exc), exc, exc.__traceback__):
            raise
    else:
        await greenlet_spawn(context.__exit__, None, None, None)
