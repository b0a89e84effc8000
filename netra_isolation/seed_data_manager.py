"""The scenario registry: a name, a seed, and functions that build rows with factories.

Scenarios are seeded into templates once per fingerprint, never per test; the fingerprint
covers the scenario's code (its module's source, its factories' and the project's modules
these import) and its seed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import itertools
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
from netra_isolation.sources import project_sources

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
        """The scenario's module, the modules of the factory classes it imports, wherever
        they live, and every module of the project these import, transitively (its models,
        the config module: `sources.project_sources`; other code it depends on:
        `registry.depends_on_code`)."""
        used: list[object] = []
        for func in (self.postgres, self.clickhouse):
            if func is not None:
                used += [func, *(v for v in func.__globals__.values() if _is_factory(v))]
        return project_sources(used)


def scenario_session_class(sessions: Iterable[str]) -> type[Session]:
    """The class of the session a scenario gets while a template is seeded: the app's (see
    `binding.session_recipe`), so the app's own code (`init_db(session)`) runs on it
    unchanged."""
    from netra_isolation.binding import session_recipe  # binding imports this module

    made = session_recipe(sessions, asynchronous=False).cls
    return made if isinstance(made, type) and issubclass(made, Session) else Session


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

    @staticmethod
    def session_class(sessions: Iterable[str]) -> type[Session]:
        """The class of a scenario's session (`scenario_session_class`)."""
        return scenario_session_class(sessions)

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


# -- many rows at once ------------------------------------------------------------------------
Rows = int | Iterable[Mapping[str, Any]]


def create_each(factory: type[Any], rows: Rows, /, **kwargs: Any) -> list[Any]:
    """`factory.create()` once per row: `rows` is a count, or one mapping of overrides per
    row (over `kwargs`). The reference `bulk_create` is measured against."""
    if isinstance(rows, int):
        return list(factory.create_batch(rows, **kwargs))
    return [factory.create(**{**kwargs, **row}) for row in rows]


def bulk_create(factory: type[Any], rows: Rows, /, **kwargs: Any) -> list[Any]:
    """The rows `create_each(factory, rows, **kwargs)` inserts, in one statement.

    Each row's values come from the factory as `create()` makes them (its declarations,
    sequences and random draws, in the same order), so the table ends up as it would with one
    `create()` per row: the same values, the same generated keys in the same order. Related
    objects passed for a many-to-one relationship (`thread=t`) give their keys. A factory with
    `sqlalchemy_get_or_create` reuses the rows that are there (looked up in one query) and
    repeats within the batch, as `create()` would.

    Returns one object per row: not a model instance but the factory's values as attributes
    (factory-boy's stub), with the columns inserted and the primary key set, fit to pass to
    another `bulk_create` (`author=users[0]`) or to read (`users[0].id`).

    For factories whose `create()` is the model made from its values, added and flushed
    (factory-boy's own, and overrides that only add and flush): the model's own `__init__`
    and the factory's `_create` are not run. Post-generation declarations, sub-factories
    left to make their object, one-to-many or many-to-many values and SQL expressions as
    values are refused: use `create_each` for those.

    PostgreSQL on psycopg: COPY (see `_copy`); elsewhere one ORM bulk INSERT .. RETURNING the
    keys (one statement a row on SQLAlchemy before 2.0.10, which cannot order RETURNING)."""
    from factory.alchemy import SQLAlchemyModelFactory

    if not (isinstance(factory, type) and issubclass(factory, SQLAlchemyModelFactory)):
        raise ConfigurationError(
            f"bulk_create takes a factory-boy SQLAlchemyModelFactory class, not {factory!r}"
        )
    meta: Any = factory._meta  # factory-boy's options (untyped)
    if list(meta.post_declarations.sorted()):
        raise ConfigurationError(
            f"{factory.__name__} has post-generation declarations "
            f"({', '.join(meta.post_declarations.sorted())}), which need each object: "
            "use create_each"
        )
    table = _Table(meta.get_model_class(), factory.__name__)
    session = _factory_session(factory)
    each = [kwargs] * rows if isinstance(rows, int) else [{**kwargs, **row} for row in rows]
    make: Any = factory.stub  # factory-boy's stub strategy: the values, no model (untyped)
    made = [make(**values) for values in each]
    session.flush()  # objects made one by one before: their keys
    values = [table.values(stub) for stub in made]
    lookup = tuple(meta.sqlalchemy_get_or_create)
    fresh = table.get_or_create(session, lookup, values, made) if lookup else range(len(made))
    table.insert(session, [values[i] for i in fresh], [made[i] for i in fresh])
    if meta.sqlalchemy_session_persistence == "commit":
        session.commit()
    return made


def _factory_session(factory: type[Any]) -> Session:
    """The session the factory's `create()` would use (factory-boy's own rule)."""
    meta: Any = factory._meta
    getter = getattr(meta, "sqlalchemy_session_factory", None)
    session = getter() if getter is not None else meta.sqlalchemy_session
    if session is None:
        raise NoSessionError(
            f"{factory.__name__} has no session: import it before the test starts, list it "
            "in the setting 'factories', or give it Meta.sqlalchemy_session_factory"
        )
    bound = _stack()
    # the test's AsyncSession (or factory-boy 3.2's stand-in for it) outside its greenlet
    if (
        bound
        and not session_can_query()
        and (session is bound[-1].session or not isinstance(session, Session))
    ):
        raise NoSessionError(
            f"bulk_create({factory.__name__}) needs the database: in an async test use "
            f"`await netra_isolation.binding.abulk_create({factory.__name__}, ...)`"
        )
    return session  # type: ignore[no-any-return]


class _Table:
    """A mapped class's one table: a factory stub's attributes as column values."""

    def __init__(self, model: type[Any], factory_name: str) -> None:
        from sqlalchemy import inspect as inspect_mapped
        from sqlalchemy.orm import Mapper, RelationshipDirection

        mapper = inspect_mapped(model, raiseerr=False)
        if not isinstance(mapper, Mapper):
            raise ConfigurationError(
                f"bulk_create({factory_name}): its model {model!r} is not a mapped class"
            )
        self.model = model
        self.name = factory_name
        self.mapper = mapper
        self.columns = {attr.key for attr in mapper.column_attrs}
        self.keys = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
        # many-to-one relationships: attribute -> [(local column key, remote column key)]
        self.foreign: dict[str, list[tuple[str, str]]] = {}
        self.refused: set[str] = set()
        for rel in mapper.relationships:
            if rel.direction is RelationshipDirection.MANYTOONE and rel.secondary is None:
                self.foreign[rel.key] = [
                    (
                        mapper.get_property_by_column(local).key,
                        rel.mapper.get_property_by_column(remote).key,
                    )
                    for local, remote in rel.local_remote_pairs or ()
                ]
            else:
                self.refused.add(rel.key)

    def values(self, stub: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        related = []
        for key, value in vars(stub).items():
            if key in self.columns:
                values[key] = value
            elif key in self.foreign:
                related.append((key, value))
            elif key in self.refused:
                raise ConfigurationError(
                    f"bulk_create({self.name}): {key!r} is a one-to-many or many-to-many "
                    "relationship; bulk_create fills one table: use create_each"
                )
            else:
                raise TypeError(
                    f"{key!r} is an invalid keyword argument for {self.model.__name__} "
                    f"(bulk_create({self.name}) fills mapped columns and many-to-one "
                    "relationships only)"
                )
        for key, target in related:  # a relationship wins over its column, as at a flush
            for local, remote in self.foreign[key]:
                if target is None:
                    values[local] = None
                    continue
                found = getattr(target, remote, None)
                if found is None:
                    raise ConfigurationError(
                        f"bulk_create({self.name}): its {key!r} has no {remote!r} (made by a "
                        "sub-factory, or not created yet): create those rows first "
                        f"(bulk_create or create) and pass each as {key}=..."
                    )
                values[local] = found
        return values

    def get_or_create(
        self,
        session: Session,
        lookup: tuple[str, ...],
        values: list[dict[str, Any]],
        made: list[Any],
    ) -> list[int]:
        """Rows whose lookup values are in the table (or earlier in the batch) become those
        (in `made`); the indexes of the others, to insert."""
        import factory.base
        from sqlalchemy import select, tuple_

        as_stub: Any = factory.base.StubObject  # factory-boy is untyped

        columns: list[str] = []
        for name in lookup:
            columns += (
                [local for local, _ in self.foreign[name]] if name in self.foreign else [name]
            )
        for row in values:
            if missing := [c for c in columns if c not in row]:
                raise ConfigurationError(
                    f"bulk_create({self.name}): sqlalchemy_get_or_create looks rows up by "
                    f"{', '.join(lookup)}, and a row has no {', '.join(missing)}"
                )
        keys = [tuple(row[c] for c in columns) for row in values]
        attrs = [getattr(self.model, c) for c in columns]
        wanted = (
            attrs[0].in_({k[0] for k in keys}) if len(attrs) == 1 else tuple_(*attrs).in_(set(keys))
        )
        every = [getattr(self.model, c) for c in self.columns]
        found: dict[tuple[Any, ...], Any] = {}
        for there in session.execute(select(*every).where(wanted)):
            stub = as_stub(**there._asdict())
            found[tuple(getattr(stub, c) for c in columns)] = stub
        fresh = []
        for i, key in enumerate(keys):
            if key in found:
                made[i] = found[key]
            else:
                found[key] = made[i]
                fresh.append(i)
        return fresh

    def insert(self, session: Session, rows: list[dict[str, Any]], made: list[Any]) -> None:
        from sqlalchemy import ClauseElement, insert

        if not rows:
            return
        keyless = [i for i, row in enumerate(rows) if any(row.get(k) is None for k in self.keys)]
        if _copy(session.connection(), self, rows, keyless):
            pass
        elif expressions := sorted(
            {
                k
                for row in rows
                for k, v in row.items()
                if isinstance(v, ClauseElement) or hasattr(v, "__clause_element__")
            }
        ):
            raise ConfigurationError(
                f"bulk_create({self.name}): {', '.join(expressions)} given as SQL expressions, "
                "which an INSERT of many rows cannot take: use create_each"
            )
        elif not keyless:
            session.execute(insert(self.model), rows)
        else:  # every row, in order, as the flush would: the database gives the missing keys
            pk = [getattr(self.model, k) for k in self.keys]
            if _ordered_returning():
                returning = insert(self.model).returning(*pk, sort_by_parameter_order=True)
                keys = list(session.execute(returning, rows))
            else:
                returning = insert(self.model).returning(*pk)
                keys = [session.execute(returning, [row]).one() for row in rows]
            for row, key in zip(rows, keys, strict=True):
                row.update(zip(self.keys, key, strict=True))
        for stub, row in zip(made, rows, strict=True):
            vars(stub).update(row)


def _copy(connection: Any, table: _Table, rows: list[dict[str, Any]], keyless: list[int]) -> bool:
    """PostgreSQL on psycopg: the rows by COPY, with the keys an INSERT would get drawn first
    from the key's own sequence (as many `nextval` as INSERTs call, in order).

    Only where COPY stores what an INSERT stores: every value of a plain type whose text the
    column reads as the INSERT's cast would (`_copy_fits`: not a tz-aware datetime into a
    column without time zone, not a float into NUMERIC, ...), no Python-side default left to
    run, no schema_translate_map, one table without inheritance or version counter, a key
    with a sequence of its own. Otherwise False, with nothing done: the caller INSERTs."""
    from sqlalchemy import text

    dialect = connection.dialect
    mapper = table.mapper
    if (
        dialect.name != "postgresql"
        or dialect.driver != "psycopg"
        or dialect.is_async
        or connection.get_execution_options().get("schema_translate_map")
        or len(mapper.tables) != 1
        or mapper.polymorphic_on is not None
        or mapper.version_id_col is not None
        or (keyless and len(table.keys) != 1)
    ):
        return False
    columns = {attr.key: attr.columns[0] for attr in mapper.column_attrs}
    fits = {key: _copy_fits(column) for key, column in columns.items()}
    processors = {
        key: column.type.dialect_impl(dialect).bind_processor(dialect)
        for key, column in columns.items()
    }
    # None is "no value" (the column's default), as at a flush; a drawn key comes last
    given = [tuple(k for k, v in row.items() if v is not None) for row in rows]
    python_defaults = {key for key, column in columns.items() if column.default is not None}
    if python_defaults and any(not python_defaults.issubset(g) for g in given):
        return False
    if any(fits[k] is None for k in {*itertools.chain(*given), *table.keys}):
        return False
    values = []
    for row, keys in zip(rows, given, strict=True):
        line = []
        for k in keys:
            value = row[k]
            if (processor := processors[k]) is not None:
                value = processor(value)
            if not fits[k](value):  # type: ignore[misc]
                return False
            line.append(value)
        values.append(line)
    preparer = dialect.identifier_preparer
    name = preparer.format_table(mapper.local_table)
    if keyless:
        key_column = columns[table.keys[0]]
        found = connection.execute(
            text(
                "SELECT pg_get_serial_sequence(:table, :column), a.attidentity "
                "FROM pg_attribute a WHERE a.attrelid = CAST(:table AS regclass) "
                "AND a.attname = :column"
            ),
            {"table": name, "column": key_column.name},
        ).one_or_none()
        if found is None or found[0] is None or found[1] == "a":  # GENERATED ALWAYS
            return False
        drawn = (
            connection.execute(
                text("SELECT nextval(:sequence) FROM generate_series(1, :n) AS g(i) ORDER BY g.i"),
                {"sequence": found[0], "n": len(keyless)},
            )
            .scalars()
            .all()
        )
        for i, key in zip(keyless, drawn, strict=True):
            rows[i][table.keys[0]] = key
            values[i].append(key)
            given[i] = (*given[i], table.keys[0])
    cursor = connection.connection.driver_connection.cursor()
    try:
        start = 0
        for keys, group in itertools.groupby(given):
            size = len(list(group))
            names = ", ".join(preparer.quote(columns[k].name) for k in keys)
            with cursor.copy(f"COPY {name} ({names}) FROM STDIN") as copy:
                for line in values[start : start + size]:
                    copy.write_row(line)
            start += size
    finally:
        cursor.close()
    return True


def _copy_fits(column: Any) -> Callable[[Any], bool] | None:
    """For a column COPY may fill: which (bound) values its text form stores as an INSERT
    would; None for a column of another type (COPY is not used)."""
    import datetime
    import decimal
    import uuid

    from sqlalchemy import types

    kind = column.type
    if kind.bind_expression(column) is not None or isinstance(kind, types.Enum):
        return None
    if isinstance(kind, types.Boolean):
        return lambda v: isinstance(v, bool)
    if isinstance(kind, types.Integer):
        return lambda v: isinstance(v, int) and not isinstance(v, bool)
    if isinstance(kind, types.String):
        return lambda v: isinstance(v, str)
    if isinstance(kind, types.DateTime):
        aware = bool(kind.timezone)
        return lambda v: isinstance(v, datetime.datetime) and (v.tzinfo is not None) == aware
    if isinstance(kind, types.Date):
        return lambda v: isinstance(v, datetime.date) and not isinstance(v, datetime.datetime)
    if isinstance(kind, types.Float):
        return lambda v: isinstance(v, float)
    if isinstance(kind, types.Numeric):
        return lambda v: isinstance(v, decimal.Decimal | int) and not isinstance(v, bool)
    if isinstance(kind, types.Uuid):
        return lambda v: isinstance(v, uuid.UUID)
    return None


@functools.cache
def _ordered_returning() -> bool:
    """SQLAlchemy 2.0.10+: RETURNING rows in the order of the parameters of an executemany."""
    from sqlalchemy.sql.dml import Insert

    return "sort_by_parameter_order" in inspect.signature(Insert.returning).parameters


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
