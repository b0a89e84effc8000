"""The application's own factories and sessions, pointed at the running test's database.

`factories`: factory-boy SQLAlchemyModelFactory classes (a module's, or a class and its
subclasses; unset, every one imported that names no session of its own) write to
`current_session()`. `sessions`: the app's `scoped_session`,
`sessionmaker` or `async_sessionmaker` are bound to the test's database for the test, and
restored afterwards.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, scoped_session, sessionmaker
from sqlalchemy.pool import NullPool

from netra_isolation.engines import pooled
from netra_isolation.errors import ConfigurationError
from netra_isolation.routing import own
from netra_isolation.seed_data_manager import (
    bulk_create,
    current_async_session,
    current_session,
)
from netra_isolation.settings import resolve_name

# factory-boy (with Faker, ~400 ms) is imported only for a project that configures factories.
if TYPE_CHECKING:
    from factory.alchemy import SQLAlchemyModelFactory

T = TypeVar("T")
AppSession = scoped_session[Any] | sessionmaker[Any] | async_sessionmaker[Any]


def _factories(specs: Iterable[str]) -> Iterator[type[SQLAlchemyModelFactory]]:
    """The factories `specs` names and their subclasses; with none named, every factory the
    process has imported that has no session of its own (`_unbound`)."""
    specs = tuple(specs)
    if not specs:
        yield from _unbound()
        return
    for spec in specs:
        from factory.alchemy import SQLAlchemyModelFactory

        module, found = resolve_name(spec, "factories")
        if found is None:
            roots = [
                value
                for value in vars(module).values()
                if isinstance(value, type)
                and issubclass(value, SQLAlchemyModelFactory)
                and value.__module__ == module.__name__
            ]
        elif isinstance(found, type) and issubclass(found, SQLAlchemyModelFactory):
            roots = [found]
        else:
            raise ConfigurationError(
                f"{spec!r} of the setting 'factories' is not a factory-boy "
                f"SQLAlchemyModelFactory class: {found!r}"
            )
        pending = list(roots)
        while pending:  # each factory class has its own _meta, copied when it was made
            cls = pending.pop()
            pending.extend(cls.__subclasses__())
            yield cls


def _unbound() -> Iterator[type[SQLAlchemyModelFactory]]:
    """Every SQLAlchemyModelFactory class made so far whose `Meta` names no session and no
    session factory (factory-boy would raise "No session provided." at its `create()`), or
    that this module pointed at the running test's: with the setting `factories` unset, those
    write to the test's session. A factory given a session of its own is left as it is. Only
    when factory-boy is imported already: a project without factories never pays for it."""
    alchemy = sys.modules.get("factory.alchemy")
    if alchemy is None:
        return
    from netra_isolation.compat import factory_boy_session

    pending = list(alchemy.SQLAlchemyModelFactory.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if factory_boy_session.unbound(cls, current_session):
            yield cls


def bind_factories(specs: Iterable[str]) -> None:
    """Make the configured factories (and every subclass of them made so far) write to the
    running test's (or template's) session: factory-boy reads the factory at each call."""
    for cls in _factories(specs):
        from netra_isolation.compat import factory_boy_session

        factory_boy_session.point_at(cls, current_session)


def forget_sessions(specs: Iterable[str]) -> None:
    """factory-boy keeps the last session it used on `_meta`: let the test's go."""
    for cls in _factories(specs):
        from netra_isolation.compat import factory_boy_session

        factory_boy_session.forget(cls)


async def acreate(factory: Any, **kwargs: Any) -> Any:
    """`await acreate(Factory, **kwargs)`: any factory's `create()` in an async test, run
    inside `AsyncSession.run_sync`, so it can flush, commit and look rows up."""
    return await current_async_session().run_sync(lambda _: factory.create(**kwargs))


async def acreate_batch(factory: Any, size: int, **kwargs: Any) -> list[Any]:
    """`await acreate_batch(Factory, n, **kwargs)`: `create_batch` the same way."""
    made: list[Any] = await current_async_session().run_sync(
        lambda _: factory.create_batch(size, **kwargs)
    )
    return made


async def abulk_create(factory: Any, rows: Any, /, **kwargs: Any) -> list[Any]:
    """`await abulk_create(Factory, rows, **kwargs)`: `seed_data_manager.bulk_create` in an
    async test, run inside `AsyncSession.run_sync`."""
    made: list[Any] = await current_async_session().run_sync(
        lambda _: bulk_create(factory, rows, **kwargs)
    )
    return made


# -- the application's sessions -----------------------------------------------------------
def load_sessions(specs: Iterable[str]) -> list[tuple[str, AppSession]]:
    found: list[tuple[str, AppSession]] = []
    for spec in specs:
        _, target = resolve_name(spec, "sessions", example="myapp.db:Session")
        if isinstance(target, type) and issubclass(target, Session):
            continue  # a class (SQLModel's Session): scenarios get it; nothing to bind
        if not isinstance(target, scoped_session | sessionmaker | async_sessionmaker):
            raise ConfigurationError(
                f"{spec!r} of the setting 'sessions' is {type(target).__name__}, not a "
                "scoped_session, sessionmaker, async_sessionmaker or Session class"
            )
        found.append((spec, target))
    return found


@dataclass(frozen=True)
class SessionRecipe:
    """How the app makes its sessions of one kind (sync or async): the class, the keyword
    arguments of its session factory (its bind aside) and its bind's execution options (a
    `schema_translate_map`, say). The sessions the tool hands out, and a scenario's, are made
    the same way, so the app's code finds what it expects on them (`session.exec` of
    SQLModel, objects expired at commit or not)."""

    cls: type[Any]
    kw: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def make(self, bind: Any, **kw: Any) -> Any:
        """A session on `bind` (an Engine / Connection, or their async forms); `kw` wins."""
        if self.options and isinstance(bind, AsyncConnection):
            # its sync face, in place (the async one's is a coroutine)
            bind.sync_connection.execution_options(**self.options)  # type: ignore[union-attr]
        elif self.options:
            bind = bind.execution_options(**self.options)
        return self.cls(bind=bind, **(self.kw | kw))


# the tool's own sessions when the app names none: nothing expired at commit (an async
# session could not load it again), and SQLModel's class when the app uses SQLModel
_DEFAULT_KW = {"expire_on_commit": False}


def session_recipe(specs: Iterable[str], *, asynchronous: bool) -> SessionRecipe:
    """The recipe of the first session factory of that kind the setting `sessions` names (a
    sessionmaker / scoped_session / async_sessionmaker, or a Session class such as
    `sqlmodel:Session`); else SQLModel's Session when the app uses SQLModel; else
    SQLAlchemy's."""
    for spec in specs:
        _, found = resolve_name(spec, "sessions", example="myapp.db:Session")
        if isinstance(found, type) and issubclass(found, Session) and not asynchronous:
            return SessionRecipe(found, dict(_DEFAULT_KW))
        if isinstance(found, scoped_session | sessionmaker | async_sessionmaker):
            if is_async(found) != asynchronous:
                continue
            factory = _factory(found)
            kw = {k: v for k, v in factory.kw.items() if k not in ("bind", "binds")}
            return SessionRecipe(factory.class_, kw, _options(factory.kw.get("bind")))
    if asynchronous:
        return SessionRecipe(AsyncSession, dict(_DEFAULT_KW))
    sqlmodel = sys.modules.get("sqlmodel")
    made = getattr(sqlmodel, "Session", None)
    if isinstance(made, type) and issubclass(made, Session):
        return SessionRecipe(made, dict(_DEFAULT_KW))
    return SessionRecipe(Session, dict(_DEFAULT_KW))


def end_scoped_sessions(specs: Iterable[str]) -> None:
    """Close the current session of each of the app's `scoped_session`s (`remove()`), giving
    its connection back, its uncommitted work lost: before a snapshot or restore ends the
    connections to the test's database. The registry makes a new session on next use."""
    for _, target in load_sessions(specs):
        if isinstance(target, scoped_session):
            target.remove()


def is_async(target: AppSession) -> bool:
    return isinstance(target, async_sessionmaker)


def _factory(target: AppSession) -> sessionmaker[Any] | async_sessionmaker[Any]:
    return target.session_factory if isinstance(target, scoped_session) else target


def _options(bind: object) -> dict[str, Any]:
    if isinstance(bind, Engine | Connection):
        return dict(bind.get_execution_options())
    if isinstance(bind, AsyncEngine | AsyncConnection):
        return dict(bind.sync_engine.get_execution_options())
    return {}


def _refuse(spec: str, why: str) -> Callable[[], Any]:
    def connect() -> Any:
        raise ConfigurationError(f"{spec} (setting 'sessions'): {why}")

    return connect


@contextmanager
def bind_sessions(
    targets: list[tuple[str, AppSession]],
    test_session: Session | AsyncSession,
    *,
    transaction: bool,
    url: Callable[[str], str],
    application_name: str,
    sync_driver: str = "psycopg",
) -> Iterator[None]:
    """For the block, each of the app's session factories is bound to the test's database:
    at `transaction` level to the test's own connection, joined with SAVEPOINTs (the app's
    commits are rolled back with the test); else to an engine on the test's database, with
    the driver the tool uses (`sync_driver`, psycopg by default / asyncpg). The app's bind's
    execution options (say, `schema_translate_map`) are kept. `url(driver)`: the test's
    database URL."""
    saved: list[tuple[AppSession, dict[str, Any]]] = []
    test_async = isinstance(test_session, AsyncSession)
    stack = ExitStack()  # the engines made here, disposed at the end
    try:
        for spec, target in targets:
            factory = _factory(target)
            options = _options(factory.kw.get("bind"))
            kw: dict[str, Any] = {}
            if transaction and is_async(target) == test_async:
                connection = test_session.bind
                sync = (
                    connection.sync_connection
                    if isinstance(connection, AsyncConnection)
                    else connection
                )
                if not isinstance(sync, Connection):
                    raise ConfigurationError(f"{spec}: the test's session has no connection")
                if options:
                    sync.execution_options(**options)  # in place: the test's connection
                kw = {"bind": connection, "join_transaction_mode": "create_savepoint"}
            elif transaction:
                kind = "async" if is_async(target) else "sync"
                why = (
                    f"a {kind} session factory cannot join this test's transaction, which is on "
                    f"{'an async' if test_async else 'a sync'} connection: use the fixture of "
                    "its kind (isolated_postgres for async, "
                    "isolated_postgres_sync for sync) or level='database'"
                )
                if is_async(target):
                    # `creator`, not `async_creator` (SQLAlchemy 2.0.16+): it never connects
                    async_engine = own(
                        create_async_engine(
                            url("asyncpg"), poolclass=NullPool, creator=_refuse(spec, why)
                        )
                    )
                    stack.callback(async_engine.sync_engine.dispose)  # NullPool: no IO
                    kw = {"bind": async_engine}
                else:
                    refused = create_engine(
                        url("psycopg"), poolclass=NullPool, creator=_refuse(spec, why)
                    )
                    engine = own(refused)
                    stack.callback(engine.dispose)
                    kw = {"bind": engine}
            elif is_async(target):
                async_engine = own(
                    create_async_engine(
                        url("asyncpg"),
                        poolclass=NullPool,
                        connect_args={"server_settings": {"application_name": application_name}},
                    )
                )
                stack.callback(async_engine.sync_engine.dispose)  # NullPool: no IO
                kw = {
                    "bind": async_engine.execution_options(**options) if options else async_engine
                }
            else:  # pooled: a connection kept through the app's commits (see `pooled`)
                engine = stack.enter_context(pooled(own(create_engine(url(sync_driver)))))
                kw = {"bind": engine.execution_options(**options) if options else engine}
            if isinstance(target, scoped_session):
                target.remove()
            saved.append((target, dict(factory.kw)))
            factory.configure(**kw)
        yield
    finally:
        for target, kw in reversed(saved):
            if isinstance(target, scoped_session):
                target.remove()
            factory = _factory(target)
            factory.kw.clear()
            factory.kw.update(kw)
        stack.close()
