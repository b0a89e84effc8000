"""The scenario registry: a name, a seed, and functions that build rows with factories.

Scenarios are seeded into templates once per fingerprint, never per test; the fingerprint
covers the scenario's code (its module's source) and its seed.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from netra_isolation.compat.sqlalchemy_greenlet import in_greenlet
from netra_isolation.errors import ConfigurationError, NoSessionError, UnknownChoiceError
from netra_isolation.migrations import files_digest
from netra_isolation.settings import Settings

PostgresSeeder = Callable[[Session], Any]
# Given the PostgreSQL user ids the scenario made, the rows to insert per ClickHouse table.
ClickHouseSeeder = Callable[[list[int]], Mapping[str, list[dict[str, Any]]]]


@dataclass(eq=False)  # removed by identity: the same session may be bound twice
class _Bound:
    session: Session
    flush: bool
    async_session: AsyncSession | None = None


_main_bindings: list[_Bound] = []  # where tests bind their sessions
_thread_bindings = threading.local()  # template builds seeding in threads of their own
# factory-boy's sequence counters and random state are process-wide: one seeding at a time
# owns them, so templates built in parallel threads get the same rows as built alone.
_factory_state = threading.RLock()


def _own_stack() -> list[_Bound]:
    if threading.current_thread() is threading.main_thread():
        return _main_bindings
    if not hasattr(_thread_bindings, "stack"):
        _thread_bindings.stack = []
    stack: list[_Bound] = _thread_bindings.stack
    return stack


def _stack() -> list[_Bound]:
    """This thread's bindings; a thread with none of its own (one a test started) sees the
    main thread's."""
    return _own_stack() or _main_bindings


@contextmanager
def bind_session(session: Session | AsyncSession, *, flush: bool = True) -> Iterator[None]:
    """Make `session` the one factories write to (the running test's, or a template's).

    With `flush`, each factory call flushes so its row has an id. An AsyncSession's sync twin
    can take `add()` but no IO outside SQLAlchemy's greenlet: a plain factory call only adds
    (the test awaits flush()/commit()); `await Factory.acreate(...)` runs the call inside
    `AsyncSession.run_sync`, where it flushes and get-or-create can query. Bindings are per
    thread, so a template seeded in a background thread never takes a test's factory calls.
    """
    if isinstance(session, AsyncSession):
        bound = _Bound(session.sync_session, flush, async_session=session)
    else:
        bound = _Bound(session, flush)
    stack = _own_stack()
    stack.append(bound)
    try:
        yield
    finally:
        stack.remove(bound)


def current_session() -> Session:
    """The session factories write to; fails clearly outside a test that has one."""
    bound = _stack()
    if not bound:
        raise NoSessionError(
            "no database session for factories: use them inside a test that requests "
            "isolated_postgres / isolated_postgres_sync, or inside bind_session(session)"
        )
    return bound[-1].session


def current_async_session() -> AsyncSession:
    """The AsyncSession factories write to; fails clearly when the test's session is sync."""
    current_session()
    async_session = _stack()[-1].async_session
    if async_session is None:
        raise NoSessionError(
            "this test's session is synchronous: call the factory directly "
            "(Factory(...)), not `await Factory.acreate(...)`"
        )
    return async_session


def session_can_query() -> bool:
    """Whether a factory may do IO now: a sync session, or an async one inside `run_sync`
    (SQLAlchemy's greenlet)."""
    bound = _stack()
    return bool(bound) and (bound[-1].async_session is None or in_greenlet())


def session_can_flush() -> bool:
    """Whether each factory call should flush (so its row has an id right away)."""
    return session_can_query() and _stack()[-1].flush


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    postgres: PostgresSeeder | None = None
    clickhouse: ClickHouseSeeder | None = None
    description: str = ""
    counts: Mapping[str, int] = field(default_factory=dict)
    # per backend, the schema type the scenario is seeded into when a test names none
    schemas: Mapping[str, str] = field(default_factory=dict)

    def code_paths(self) -> list[Path]:
        """The scenario's module and the modules of the factory classes it imports, wherever
        they live (other code it depends on: `registry.depends_on_code`)."""
        paths = set()
        for func in (self.postgres, self.clickhouse):
            if func is None:
                continue
            used = [func, *(v for v in func.__globals__.values() if _is_factory(v))]
            paths |= {Path(source) for obj in used if (source := _source(obj))}
        return sorted(paths)


def _source(obj: object) -> str | None:
    try:
        return inspect.getsourcefile(obj)  # type: ignore[arg-type]
    except TypeError:  # defined where there is no file (a REPL, a built-in module)
        return None


def _is_factory(value: object) -> bool:
    # factory-boy (with Faker, ~400 ms) is not imported for this: while nothing has imported
    # it, no value is one of its factories.
    factory = sys.modules.get("factory.base")
    return (
        factory is not None and isinstance(value, type) and issubclass(value, factory.BaseFactory)
    )


class ScenarioRegistry:
    def __init__(self) -> None:
        self._scenarios: dict[str, Scenario] = {}
        self._extra_code: list[Path] = []
        self._loaded: set[str] = set()

    def register(self, scenario: Scenario) -> Scenario:
        self._scenarios[scenario.name] = scenario
        return scenario

    def scenario(
        self,
        name: str,
        *,
        seed: int,
        description: str = "",
        counts: Mapping[str, int] | None = None,
        clickhouse: ClickHouseSeeder | None = None,
        schema: str | None = None,
        clickhouse_schema: str | None = None,
    ) -> Callable[[PostgresSeeder], PostgresSeeder]:
        """Decorator: `@scenario("minimal", seed=1, counts={"users": 3})` on a
        function(session) that builds rows with factories. `schema` / `clickhouse_schema`:
        the schema types it fits, used when a test asks for the scenario but names none."""
        schemas = {"postgres": schema, "clickhouse": clickhouse_schema}

        def decorate(func: PostgresSeeder) -> PostgresSeeder:
            self.register(
                Scenario(
                    name,
                    seed,
                    func,
                    clickhouse,
                    description or (func.__doc__ or ""),
                    dict(counts or {}),
                    {backend: s for backend, s in schemas.items() if s},
                )
            )
            return func

        return decorate

    def seed_clickhouse(
        self, name: str, scale: int = 1, user_ids: list[int] | None = None
    ) -> Mapping[str, list[dict[str, Any]]]:
        """A scenario's ClickHouse rows per table, deterministically (one batch each).

        Scenarios make their users first in a fresh schema, so their ids are 1..n unless the
        caller knows better (`user_ids`)."""
        scenario = self.get(name)
        if scenario.clickhouse is None:
            return {}
        ids = user_ids or list(range(1, scenario.counts.get("users", 0) * scale + 1))
        with _factory_state:
            reseed(scenario.seed + 1)
            return scenario.clickhouse(ids, **_scaled(scenario, scale))

    def seed_postgres(self, name: str, session: Session, scale: int = 1) -> list[int]:
        """Run a scenario's PostgreSQL part into `session`, deterministically; returns the ids
        of the users it made (when it makes any)."""
        scenario = self.get(name)
        if scenario.postgres is None:
            return []
        with _factory_state, bind_session(session, flush=False):  # one flush: batched INSERTs
            reseed(scenario.seed)
            made = scenario.postgres(session, **_scaled(scenario, scale))
            session.flush()
        return [user.id for user in made or [] if hasattr(user, "id")]

    def depends_on_code(self, *paths: Path) -> None:
        """Code (factories) whose change must rebuild every seeded template."""
        self._extra_code.extend(paths)

    def load(self, modules: Iterable[str]) -> None:
        for module in modules:
            if module in self._loaded:
                continue
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name is not None and (
                    module == exc.name or module.startswith(f"{exc.name}.")
                ):
                    raise ConfigurationError(
                        f"module {module!r} of the setting 'scenario_modules' "
                        "([tool.netra_isolation] / NETRA_ISOLATION_SCENARIO_MODULES) cannot be "
                        f"imported: {exc}"
                    ) from None
                raise
            self._loaded.add(module)

    def names(self) -> list[str]:
        return sorted(self._scenarios)

    def get(self, name: str) -> Scenario:
        try:
            return self._scenarios[name]
        except KeyError:
            raise UnknownChoiceError(
                "scenario",
                name,
                self._scenarios,
                "Add one with @netra_isolation.scenario(...) or list its module in "
                "scenario_modules under [tool.netra_isolation]",
            ) from None

    def fingerprint(self, name: str) -> str:
        scenario = self.get(name)
        code = files_digest(sorted({*scenario.code_paths(), *self._extra_code}))
        return f"{scenario.name}:{scenario.seed}:{code}"


def _scaled(scenario: Scenario, scale: int) -> dict[str, int]:
    if scale == 1:
        return {}
    for func in (scenario.postgres, scenario.clickhouse):
        if func is not None and "scale" not in inspect.signature(func).parameters:
            raise ConfigurationError(
                f"scenario {scenario.name!r} cannot be scaled: give its functions a "
                "`scale: int = 1` parameter"
            )
    return {"scale": scale}


async def seed_performance_data(
    test_id: str,
    postgres_session: Session | AsyncSession,
    clickhouse_client: Any,
    database_names: Mapping[str, str],
    scale_factor: int = 5,
    scenario: str = "performance",
) -> dict[str, Any]:
    """Seed the performance scenario times `scale_factor` into a test's databases.

    Users, threads and messages go through the PostgreSQL session (sync or async); the
    events, whose user ids are those users', go to ClickHouse in one batch per table.
    Returns what was made, by table. (For data baked into a template once instead, use the
    `performance_test_config` fixture.)"""
    registry.load(Settings.load().scenario_modules)

    def seed(session: Session) -> list[int]:
        return registry.seed_postgres(scenario, session, scale_factor)

    if isinstance(postgres_session, AsyncSession):
        user_ids = await postgres_session.run_sync(seed)
        await postgres_session.commit()
    else:
        user_ids = seed(postgres_session)
        postgres_session.commit()
    made: dict[str, Any] = {"test_id": test_id, "databases": dict(database_names)}
    made["users"] = len(user_ids)
    for table, rows in registry.seed_clickhouse(scenario, scale_factor, user_ids).items():
        inserted = clickhouse_client.insert(table, rows)
        if inspect.isawaitable(inserted):
            inserted = await inserted
        made[table] = inserted
    return made


def reseed(seed: int) -> None:
    """The same seed gives the same rows: factory-boy's and Faker's randomness, and every
    factory's sequence counter."""
    import factory
    import factory.random

    factory.random.reseed_random(seed)  # type: ignore[no-untyped-call]
    pending: list[type[Any]] = [factory.base.BaseFactory]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if not getattr(cls._meta, "abstract", True):
            cls.reset_sequence(force=True)


registry = ScenarioRegistry()
scenario = registry.scenario
