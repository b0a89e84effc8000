"""The application's own engines: the ones it names (setting `engines`, `follow_engine`),
whose pools are emptied around each test, and the driver of the sessions the tool hands out.

Where every engine of the process connects (these and any other) is `routing`'s: during a
test, the test's database; at `transaction` level a connection that is not already there is
refused, naming the test and saying to use `level="database"`: the test's transaction lives
on one connection of the tool's, and an engine hands out connections of its own (several at
once, from its pool, with its own driver), so its commits could not be made part of it; they
would land, committed, in the worker's database that later tests share.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import greenlet_spawn

from netra_isolation import routing
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


_lock = threading.Lock()
_followed: dict[int, _Followed] = {}  # by id() of the engine's dialect, shared by its copies
# the tool's own pooled engines on the test's database (for the app's session factories):
# emptied with the followed ones, before a snapshot or restore ends their connections
_pooled: set[Engine] = set()


def _sync(engine: AnyEngine) -> Engine:
    return engine.sync_engine if isinstance(engine, AsyncEngine) else engine


def follow_engine(engine: AnyEngine, name: str | None = None) -> AnyEngine:
    """Have the pool of an `Engine` or `AsyncEngine` of the app's emptied before and after
    every PostgreSQL test of this process (as the setting `engines` does), so that none of its
    connections outlives the test's database. (Where it connects is `routing`'s, for every
    engine.) Returns the engine; calling it again is harmless.

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
        _followed[id(sync.dialect)] = _Followed(label, engine)
    routing.name_engine(engine, label)
    return engine


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
    """For the block, the app's engines connect to `url` (or, with `refusal`, raise it unless
    they are there already); the followed ones' pools are emptied before and after.
    `dispose_async=False`: the caller awaits `dispose_async_engines()` itself, on its loop."""
    target = routing.Target(url, application_name, refusal=refusal, what=f"database {url.database}")
    with routing.test_target(target):
        try:
            _dispose(dispose_async)
            yield
        finally:
            _dispose(dispose_async)


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
