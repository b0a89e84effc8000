"""State validation: named checks by category, per backend and across both; a report.

Categories: connection, schema, data, performance, isolation (per backend) and
cross_database. Results read as the original design's examples read them:
`results["postgres"]["status"] == "passed"`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from netra_isolation.clickhouse_isolation import OWNER_TABLE, SEALED_TABLE, literal, quote
from netra_isolation.errors import ConfigurationError, UnknownChoiceError

if TYPE_CHECKING:
    from netra_isolation.isolated_test_config import IsolatedTestConfig

PASSED, FAILED, WARNING, SKIPPED = "passed", "failed", "warning", "skipped"
CONNECTIVITY = ("connection", "connectivity")
NOT_RUN = "not run: connection.connectivity failed"
DISABLED = "not run: disabled (validation_skip / disable())"
MIN_FREE_SLOTS = 5  # a server with fewer free connections (queries, on ClickHouse) fails "pool"
_HIDDEN_CH_TABLES = {OWNER_TABLE, SEALED_TABLE}


@dataclass
class CheckResult:
    name: str
    category: str
    status: str
    details: Any = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckContext:
    """What a check sees: the test's config, the backend, its database, and a live handle
    (a SQLAlchemy connection for PostgreSQL, the isolator's executor for ClickHouse)."""

    config: IsolatedTestConfig
    backend: str
    database: Any
    handle: Any
    isolator: Any
    in_test_transaction: bool = False  # the handle is the test's own connection
    cache: dict[str, Any] = field(default_factory=dict)


Check = Callable[[CheckContext], Any]


def _outcome(value: Any) -> tuple[str, Any]:
    """A check returns a status, a bool, (bool|status, details), or a CheckResult's pieces."""
    if isinstance(value, tuple) and len(value) == 2:
        status, details = value
    else:
        status, details = value, None
    if isinstance(status, bool):
        status = PASSED if status else FAILED
    return str(status), details


class DatabaseStateValidator:
    def __init__(self) -> None:
        self._checks: dict[str, list[tuple[str, str, Check]]] = {
            "postgres": list(_POSTGRES_CHECKS),
            "clickhouse": list(_CLICKHOUSE_CHECKS),
        }
        self.disabled: set[str] = set()

    def check_names(self) -> list[str]:
        """Every check as `category.name` (what `disable` and `validation_skip` take)."""
        return sorted({f"{c}.{n}" for checks in self._checks.values() for c, n, _ in checks})

    def disable(self, *names: str) -> None:
        """Skip checks by `category.name` (e.g. "schema.models_match"), on every backend."""
        unknown = set(names) - set(self.check_names()) - {"cross_database.relations"}
        if unknown:
            raise UnknownChoiceError("validation check", sorted(unknown)[0], self.check_names())
        self.disabled.update(names)

    def register_check(
        self, name: str, check: Check, *, backend: str = "postgres", category: str = "custom"
    ) -> None:
        """Add a check: `check(context)` returns True/False, a status, or (status, details)."""
        self._checks.setdefault(backend, []).append((category, name, check))

    def _run(self, context: CheckContext, category: str, name: str, check: Check) -> CheckResult:
        started = time.perf_counter()
        # On the test's own connection each check runs in a SAVEPOINT rolled back after it, so
        # a check that fails in SQL leaves the test's transaction as it was.
        savepoint = context.handle.begin_nested() if context.in_test_transaction else None
        try:
            status, details = _outcome(check(context))
        except Exception as exc:  # a check that cannot run has failed, and says why
            status, details = FAILED, f"{type(exc).__name__}: {exc}"
        finally:
            if savepoint is not None:
                savepoint.rollback()
        return CheckResult(name, category, status, details, time.perf_counter() - started)

    def _run_all(
        self, context: CheckContext, registered: list[tuple[str, str, Check]]
    ) -> list[CheckResult]:
        """The checks in order; once connectivity has failed the rest are skipped: they could
        only fail for the same reason."""
        checks: list[CheckResult] = []
        disabled = self.disabled | set(context.config.manager.settings.validation_skip)
        for category, name, check in registered:
            if f"{category}.{name}" in disabled:
                checks.append(CheckResult(name, category, SKIPPED, DISABLED))
            elif any((c.category, c.name) == CONNECTIVITY and c.status == FAILED for c in checks):
                checks.append(CheckResult(name, category, SKIPPED, NOT_RUN))
            else:
                checks.append(self._run(context, category, name, check))
        return checks

    def validate_sync(
        self, config: IsolatedTestConfig, connection: Connection | None = None
    ) -> dict[str, Any]:
        """With `connection` (the test's own, at `transaction` level), PostgreSQL is checked
        as the test sees it, its uncommitted work included."""
        started = time.perf_counter()
        results = self._check(config, set(config.databases), connection)
        self._record(config, time.perf_counter() - started)
        return _ordered(results)

    async def validate(self, config: IsolatedTestConfig) -> dict[str, Any]:
        started = time.perf_counter()
        parts = await config.on_test_connection(lambda c, b: self._check(config, b, c))
        self._record(config, time.perf_counter() - started)
        return _ordered({k: v for part in parts for k, v in part.items()})

    def _check(
        self, config: IsolatedTestConfig, backends: set[str], connection: Connection | None = None
    ) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for backend, db in config.databases.items():
            if backend not in backends:
                continue
            isolator = config._isolators[backend]
            own = connection if backend == "postgres" else None
            registered = self._checks.get(backend, [])
            with ExitStack() as stack:
                try:
                    handle = stack.enter_context(_handle(isolator, db, own))
                except Exception as exc:  # the test's database takes no connection
                    checks = _unreachable(registered, f"{type(exc).__name__}: {exc}")
                else:
                    context = CheckContext(config, backend, db, handle, isolator, own is not None)
                    checks = self._run_all(context, registered)
            results[backend] = _summary(checks, database=db.name)
        if "postgres" in backends and {"postgres", "clickhouse"} <= set(config.databases):
            results["cross_database"] = _summary([self._cross_database(config, connection)])
        return results

    @staticmethod
    def _record(config: IsolatedTestConfig, elapsed: float) -> None:
        config.manager.metrics.record("validation", elapsed)
        config.manager.metrics.note(config.nodeid, "validation_s", elapsed)

    def _cross_database(
        self, config: IsolatedTestConfig, connection: Connection | None = None
    ) -> CheckResult:
        """The project's declared relations (`cross_database` setting): every value of a
        ClickHouse column is in its PostgreSQL column."""
        relations = [parse_relation(r) for r in config.manager.settings.cross_database]

        def relations_hold(context: CheckContext) -> Any:
            ch = config._isolators["clickhouse"]
            ch_db = config.databases["clickhouse"].name
            conn = context.handle
            checked: dict[str, Any] = {}
            broken: dict[str, Any] = {}
            for (ch_table, ch_column), (pg_table, pg_column) in relations:
                label = f"{ch_table}.{ch_column} -> {pg_table}.{pg_column}"
                if not ch._exists(ch_db, ch_table) or not inspect(conn).has_table(pg_table):
                    checked[label] = "tables not in these databases"
                    continue
                values = {
                    r[0]
                    for r in ch._run(
                        f"SELECT DISTINCT {quote(ch_column)} FROM {quote(ch_db)}.{quote(ch_table)}"
                    )
                }
                quote_pg = conn.dialect.identifier_preparer.quote
                known = set(
                    conn.execute(
                        text(f"SELECT {quote_pg(pg_column)} FROM {quote_pg(pg_table)}")
                    ).scalars()
                )
                missing = sorted(values - known, key=repr)
                if missing:
                    broken[label] = {"missing": missing[:20], "count": len(missing)}
                else:
                    checked[label] = len(values)
            return (FAILED, broken) if broken else (PASSED, checked)

        name = "relations"
        if "cross_database.relations" in self.disabled | set(
            config.manager.settings.validation_skip
        ):
            return CheckResult(name, "cross_database", SKIPPED, DISABLED)
        if not relations:
            why = "none declared (cross_database in [tool.netra_isolation])"
            return CheckResult(name, "cross_database", SKIPPED, why)
        pg = config._isolators["postgres"]
        with ExitStack() as stack:
            try:
                handle = stack.enter_context(_handle(pg, config.databases["postgres"], connection))
            except Exception:  # the postgres section says why
                why = "not run: postgres connection.connectivity failed"
                return CheckResult(name, "cross_database", SKIPPED, why)
            context = CheckContext(
                config, "cross_database", None, handle, pg, connection is not None
            )
            return self._run(context, "cross_database", name, relations_hold)

    def generate_validation_report(
        self, results: Mapping[str, Any] | Iterable[Any], format: str = "text"
    ) -> str:
        """A readable report of `validate_database_state()` results (or of a list of checks);
        `format="json"` for machines."""
        sections = _sections(results)
        if format == "json":
            return json.dumps(sections, indent=2, default=str)
        overall = _overall(sections)
        lines = [f"Database state validation: {overall.upper()}"]
        for name, section in sections.items():
            where = f" ({section['database']})" if section.get("database") else ""
            lines.append(f"{name}{where}: {section['status']}")
            for check in section["checks"]:
                details = "" if check["details"] in (None, "", {}) else f"  {check['details']}"
                lines.append(
                    f"  [{check['status']:>7}] {check['category']}.{check['name']}"
                    f"  {check['seconds'] * 1000:.1f} ms{details}"
                )
        return "\n".join(lines)


def _unreachable(registered: list[tuple[str, str, Check]], error: str) -> list[CheckResult]:
    """No connection to the test's database: connectivity fails with why, the rest are skipped."""
    checks = [CheckResult(CONNECTIVITY[1], CONNECTIVITY[0], FAILED, error)]
    checks += [
        CheckResult(name, category, SKIPPED, NOT_RUN)
        for category, name, _check in registered
        if (category, name) != CONNECTIVITY
    ]
    return checks


def _sections(results: Mapping[str, Any] | Iterable[Any]) -> dict[str, Any]:
    if isinstance(results, Mapping):
        return {k: v for k, v in results.items() if isinstance(v, Mapping) and "checks" in v}
    items: Iterable[Any] = results
    checks = [r if isinstance(r, CheckResult) else CheckResult(**r) for r in items]
    return {"custom": _summary(checks)}


def _overall(sections: Mapping[str, Any]) -> str:
    return FAILED if any(s["status"] == FAILED for s in sections.values()) else PASSED


def _summary(checks: list[CheckResult], database: str | None = None) -> dict[str, Any]:
    status = FAILED if any(c.status == FAILED for c in checks) else PASSED
    summary: dict[str, Any] = {"status": status, "checks": [c.to_dict() for c in checks]}
    if database:
        summary["database"] = database
    return summary


def _ordered(results: dict[str, Any]) -> dict[str, Any]:
    """postgres, the other backends, then cross_database: the order a report reads best."""
    order = sorted(results, key=lambda k: (k == "cross_database", k != "postgres"))
    return {k: results[k] for k in order}


def failed(results: Mapping[str, Any]) -> bool:
    return _overall(_sections(results)) == FAILED


def failure_message(results: Mapping[str, Any], diff: object) -> str:
    """What a test failed by validation shows: the report, then what it changed."""
    report = db_state_validator.generate_validation_report(results)
    return f"database state validation failed\n{report}\n\n{diff}"


class _handle:
    """A PostgreSQL connection to the test's database (`own`: the test's, left open), or
    ClickHouse's executor."""

    def __init__(self, isolator: Any, db: Any, own: Connection | None = None) -> None:
        self.isolator, self.db, self.own = isolator, db, own
        self._cm: Any = None

    def __enter__(self) -> Any:
        if self.own is not None:
            return self.own
        if self.isolator.backend == "postgres":
            self._cm = self.isolator.connect_to(self.db.name)
            return self._cm.__enter__()
        return self.isolator.executor

    def __exit__(self, *exc: Any) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)


# -- shared -------------------------------------------------------------------------------------
def parse_relation(text: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """`"events.user_id -> users.id"` -> (("events", "user_id"), ("users", "id"))."""
    try:
        left, right = (side.strip() for side in text.split("->"))
        ch_table, ch_column = left.rsplit(".", 1)
        pg_table, pg_column = right.rsplit(".", 1)
    except ValueError:
        raise ConfigurationError(
            f"cross_database relation {text!r} is not "
            "'clickhouse_table.column -> postgres_table.column'"
        ) from None
    return (ch_table, ch_column), (pg_table, pg_column)


def _expected_heads(context: CheckContext) -> set[str]:
    spec = context.database.template.spec
    return context.isolator.builder.expected_heads(spec.schema_type) or set()


def _owner(context: CheckContext) -> Any:
    owner = context.isolator.owner_of(context.database.name)
    expected = context.database.owner
    if owner is None:
        return FAILED, "no owner tag: the database was not made by netra_isolation"
    if (owner.run, owner.test) != (expected.run, expected.test):
        return FAILED, {"owner": owner.test, "run": owner.run, "expected": expected.test}
    return PASSED, {"test": owner.test, "run": owner.run, "worker": owner.worker}


def _template(context: CheckContext) -> Any:
    template = context.database.template
    if template is None:
        return FAILED, "not cloned from a template"
    if not context.isolator.template_is_sealed(template):
        return FAILED, f"template {template.name} is missing or not sealed"
    if context.isolator.fingerprint(template.spec) != template.fingerprint:
        return FAILED, f"template {template.name} is out of date for {template.spec}"
    return PASSED, template.name


def _scenario_counts(
    context: CheckContext,
    count: Callable[[str], int | None],
    seeded: Callable[[str], int | None],
) -> Any:
    """The template must hold the counts the scenario declares (times the scale): if it does
    not, the scenario's seed does not make what it says. The test's database may differ from
    them (tests add and delete rows): a warning. `count` counts in the test's database,
    `seeded` in the template; None for a table that is not there."""
    spec = context.database.template.spec
    if spec.scenario is None:
        return SKIPPED, "no scenario"
    declared = context.isolator.scenarios.get(spec.scenario).counts
    wanted = {t: n * spec.scale for t, n in declared.items()}
    in_template = {t: n for t in wanted if (n := seeded(t)) is not None}
    wrong = {t: (wanted[t], n) for t, n in in_template.items() if n != wanted[t]}
    if wrong:
        return FAILED, {"template_declared_vs_seeded": wrong}
    actual = {t: n for t in wanted if (n := count(t)) is not None}
    if actual != {t: wanted[t] for t in actual}:
        return WARNING, {"expected": {t: wanted[t] for t in actual}, "actual": actual}
    return PASSED, actual


def _timed_queries(c: CheckContext, queries: Iterable[tuple[str, Callable[[], Any]]]) -> Any:
    """Each query's time against the `validation_query_limit_ms` setting."""
    limit_ms = c.config.manager.settings.validation_query_limit_ms
    times = {}
    for label, run in queries:
        started = time.perf_counter()
        run()
        times[label] = (time.perf_counter() - started) * 1000
    slow = sorted(label for label, ms in times.items() if ms > limit_ms)
    details: dict[str, Any] = {
        "ms": {label: round(ms, 2) for label, ms in times.items()},
        "limit_ms": limit_ms,
    }
    if slow:
        details["slower_than_limit"] = slow
    return (FAILED if slow else PASSED), details


# -- PostgreSQL -----------------------------------------------------------------------------------
def _pg_connectivity(c: CheckContext) -> Any:
    return c.handle.execute(text("SELECT 1")).scalar() == 1


def _pg_pool(c: CheckContext) -> Any:
    """Room on the server for more connections: PostgreSQL refuses a client connection beyond
    max_connections (background processes have slots of their own and are not counted)."""
    row = c.handle.execute(
        text(
            "SELECT current_setting('max_connections')::int, count(*), "
            "count(*) FILTER (WHERE datname = current_database()) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend'"
        )
    ).one()
    limit, used, here = row
    details = {"max_connections": limit, "in_use": used, "to_this_database": here}
    return (limit - used >= MIN_FREE_SLOTS), details | {"free": limit - used}


def _pg_heads(c: CheckContext) -> Any:
    current = set(MigrationContext.configure(c.handle).get_current_heads())
    expected = _expected_heads(c)
    return expected <= current, {"expected": sorted(expected), "current": sorted(current)}


def _pg_template(c: CheckContext) -> dict[str, Any]:
    """The template's columns, constraints and row counts per table, read once per template
    from a throwaway copy (a sealed template refuses connections)."""
    key = f"pg-template:{c.database.template.name}"
    cache = c.isolator.inspection_cache
    if key not in cache:
        with (
            c.isolator.template_copy(c.database.template) as copy,
            c.isolator.connect_to(copy) as conn,
        ):
            facts = _pg_schema(conn)
            counter = _pg_count(CheckContext(c.config, "postgres", None, conn, c.isolator))
            facts["counts"] = {t: counter(t) for t in inspect(conn).get_table_names()}
            cache[key] = facts
    return dict(cache[key])


def _pg_schema(conn: Any) -> dict[str, Any]:
    columns = conn.execute(
        text(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY 1, 2"
        )
    ).all()
    constraints = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint c "
            "JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'"
        )
    ).all()
    return {
        "columns": {tuple(r) for r in columns},
        "constraints": {tuple(r) for r in constraints},
    }


def _pg_matches_template(c: CheckContext) -> Any:
    expected, actual = _pg_template(c)["columns"], _pg_schema(c.handle)["columns"]
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    if missing or extra:
        return FAILED, {"missing_columns": missing, "unexpected_columns": extra}
    return PASSED, {"columns": len(actual)}


NO_MODELS = (
    'no models to compare with: name them with {backend}_models = "package.module:Base" '
    "in [tool.netra_isolation] (or give env.py a target_metadata)"
)


def _pg_models_match(c: CheckContext) -> Any:
    models = c.isolator.models()
    if models is None:
        return SKIPPED, NO_MODELS.format(backend="postgres")
    present = set(inspect(c.handle).get_table_names())

    def include(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        table = name if type_ == "table" else getattr(getattr(obj, "table", None), "name", None)
        return table in present and table != "alembic_version"

    context = MigrationContext.configure(
        c.handle, opts={"include_object": include, "compare_type": True}
    )
    diffs = compare_metadata(context, models)
    return not diffs, ({"differences": [str(d)[:200] for d in diffs]} if diffs else None)


def _pg_constraints(c: CheckContext) -> Any:
    expected = _pg_template(c)["constraints"]
    actual = _pg_schema(c.handle)["constraints"]
    missing = sorted(expected - actual)
    return not missing, ({"missing": missing} if missing else {"constraints": len(actual)})


def _pg_foreign_keys(conn: Any) -> list[tuple[str, list[str], str, list[str]]]:
    rows = conn.execute(
        text(
            "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text, "
            "ARRAY(SELECT attname FROM unnest(c.conkey) k JOIN pg_attribute a "
            "  ON a.attrelid = c.conrelid AND a.attnum = k ORDER BY array_position(c.conkey, k)), "
            "ARRAY(SELECT attname FROM unnest(c.confkey) k JOIN pg_attribute a "
            "  ON a.attrelid = c.confrelid AND a.attnum = k ORDER BY array_position(c.confkey, k)) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE c.contype = 'f' AND n.nspname = 'public'"
        )
    ).all()
    return [(child, list(ccols), parent, list(pcols)) for child, parent, ccols, pcols in rows]


def _pg_referential_integrity(c: CheckContext) -> Any:
    orphans = {}
    prep = c.handle.dialect.identifier_preparer
    for child, ccols, parent, pcols in _pg_foreign_keys(c.handle):
        match = " AND ".join(
            f"p.{prep.quote(pc)} = c.{prep.quote(cc)}" for cc, pc in zip(ccols, pcols, strict=True)
        )
        not_null = " AND ".join(f"c.{prep.quote(cc)} IS NOT NULL" for cc in ccols)
        count = c.handle.execute(
            text(
                f"SELECT count(*) FROM {prep.quote(child)} c WHERE {not_null} AND NOT EXISTS "
                f"(SELECT 1 FROM {prep.quote(parent)} p WHERE {match})"
            )
        ).scalar()
        if count:
            orphans[f"{child}({', '.join(ccols)}) -> {parent}"] = count
    return not orphans, ({"orphan_rows": orphans} if orphans else None)


def _pg_count(c: CheckContext) -> Callable[[str], int | None]:
    tables = set(inspect(c.handle).get_table_names())

    def count(table: str) -> int | None:
        if table not in tables:
            return None
        return int(c.handle.execute(text(f'SELECT count(*) FROM "{table}"')).scalar())

    return count


def _pg_performance(c: CheckContext) -> Any:
    tables = [t for t in inspect(c.handle).get_table_names() if t != "alembic_version"]
    return _timed_queries(
        c,
        [
            (f"count {t}", partial(c.handle.execute, text(f'SELECT count(*) FROM "{t}"')))
            for t in tables
        ],
    )


def _pg_foreign_rows(c: CheckContext) -> Any:
    """Seen from a fresh connection, outside the test's transaction, a `transaction`-level
    worker database must hold exactly what its template holds."""
    if not c.config._shared("postgres"):
        return PASSED, "a database of this test's own (see isolation.owner)"
    template = _pg_template(c)["counts"]
    with c.isolator.connect_to(c.database.name) as fresh:  # outside the test's transaction
        counts = _pg_count(CheckContext(c.config, "postgres", c.database, fresh, c.isolator))
        actual = {t: counts(t) for t in template}
    foreign = {t: (template[t], n) for t, n in actual.items() if n != template[t]}
    return not foreign, ({"committed_rows_template_vs_now": foreign} if foreign else None)


def _pg_foreign_sessions(c: CheckContext) -> Any:
    """No connection of another test is open on this test's database (the connections this
    tool makes carry their test in application_name; untagged ones are only listed)."""
    own = c.isolator.application_name(c.config.test_id)

    def others() -> tuple[set[str], list[str]]:
        names = set(
            c.handle.execute(
                text(
                    "SELECT DISTINCT application_name FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    "AND backend_type = 'client backend'"
                )
            ).scalars()
        ) - {own}
        return names, sorted(n for n in names if n.startswith("netra:"))

    names, foreign = others()
    if foreign:  # a closed connection's server process may take a moment to exit
        time.sleep(0.2)
        names, foreign = others()
    if foreign:
        return FAILED, {"sessions_of_other_tests": foreign}
    return PASSED, {"other_clients": sorted(names)} if names else None


_POSTGRES_CHECKS: list[tuple[str, str, Check]] = [
    ("connection", "connectivity", _pg_connectivity),
    ("connection", "pool_health", _pg_pool),
    ("schema", "at_migration_heads", _pg_heads),
    ("schema", "matches_template", _pg_matches_template),
    ("schema", "models_match", _pg_models_match),
    ("schema", "constraints_present", _pg_constraints),
    ("data", "referential_integrity", _pg_referential_integrity),
    (
        "data",
        "scenario_counts",
        lambda c: _scenario_counts(c, _pg_count(c), _pg_template(c)["counts"].get),
    ),
    ("performance", "representative_queries", _pg_performance),
    ("isolation", "owner", _owner),
    ("isolation", "sealed_template", _template),
    ("isolation", "no_foreign_rows", _pg_foreign_rows),
    ("isolation", "no_foreign_sessions", _pg_foreign_sessions),
]


# -- ClickHouse -----------------------------------------------------------------------------------
def _ch_columns(c: CheckContext, database: str) -> set[tuple[str, str, str]]:
    rows = c.handle.execute(
        "SELECT table, name, type FROM system.columns "
        f"WHERE database = {literal(database)} ORDER BY table, name"
    )
    return {(str(t), str(n), str(ty)) for t, n, ty in rows if t not in _HIDDEN_CH_TABLES}


def _ch_connectivity(c: CheckContext) -> Any:
    """The server answers, and the test's database is there on it."""
    rows = c.handle.execute(
        f"SELECT name FROM system.databases WHERE name = {literal(c.database.name)}"
    )
    return bool(rows), (None if rows else f"no database {c.database.name} on the server")


def _ch_pool(c: CheckContext) -> Any:
    """Room on the server for more queries: ClickHouse refuses a query beyond
    max_concurrent_queries_for_user (the user's profile) or max_concurrent_queries (the
    server's, readable where the server has system.server_settings), as PostgreSQL refuses a
    connection beyond max_connections. This check's own query is one of those running."""
    user = c.isolator.server.user
    ((running, of_user),) = c.handle.execute(
        f"SELECT count(), countIf(user = {literal(user)}) FROM system.processes"
    )
    details: dict[str, Any] = {"running_queries": int(running), "of_this_user": int(of_user)}
    in_use: dict[str, tuple[int, int]] = {}  # limit name: (limit, queries it counts)
    per_user = c.handle.execute(
        "SELECT value FROM system.settings WHERE name = 'max_concurrent_queries_for_user'"
    )
    if per_user and int(per_user[0][0]):
        in_use["max_concurrent_queries_for_user"] = (int(per_user[0][0]), int(of_user))
    if c.isolator._exists("system", "server_settings"):
        server = c.handle.execute(
            "SELECT value FROM system.server_settings WHERE name = 'max_concurrent_queries'"
        )
        if server and int(server[0][0]):
            in_use["max_concurrent_queries"] = (int(server[0][0]), int(running))
    if not in_use:
        return SKIPPED, details | {"limits": "none known on this server (0: unlimited)"}
    free = min(limit - used for limit, used in in_use.values())
    details |= {name: limit for name, (limit, _used) in in_use.items()} | {"free": free}
    return free >= MIN_FREE_SLOTS, details


def _ch_heads(c: CheckContext) -> Any:
    rows = c.handle.execute(f"SELECT version_num FROM {quote(c.database.name)}.alembic_version")
    current = {str(r[0]) for r in rows}
    expected = _expected_heads(c)
    return expected <= current, {"expected": sorted(expected), "current": sorted(current)}


def _ch_matches_template(c: CheckContext) -> Any:
    expected = _ch_columns(c, c.database.template.name)
    actual = _ch_columns(c, c.database.name)
    missing, extra = sorted(expected - actual), sorted(actual - expected)
    if missing or extra:
        return FAILED, {"missing_columns": missing, "unexpected_columns": extra}
    return PASSED, {"columns": len(actual)}


def _ch_models_match(c: CheckContext) -> Any:
    models = c.isolator.models()
    if models is None:
        return SKIPPED, NO_MODELS.format(backend="clickhouse")
    actual: dict[str, set[str]] = {}
    for table, column, _type in _ch_columns(c, c.database.name):
        actual.setdefault(table, set()).add(column)
    differences = {}
    for name, model in models.tables.items():
        if name in actual and actual[name] != {col.name for col in model.columns}:
            differences[name] = sorted(actual[name] ^ {col.name for col in model.columns})
    return not differences, ({"columns_differ": differences} if differences else None)


def _ch_count(c: CheckContext, database: str) -> Callable[[str], int | None]:
    def count(table: str) -> int | None:
        if not c.isolator._exists(database, table):
            return None
        return int(c.handle.execute(f"SELECT count() FROM {quote(database)}.{quote(table)}")[0][0])

    return count


def _ch_performance(c: CheckContext) -> Any:
    tables = [t for t, _e, _d in c.isolator._tables(c.database.name) if t not in _HIDDEN_CH_TABLES]
    db = quote(c.database.name)
    return _timed_queries(
        c,
        [
            (f"count {t}", partial(c.handle.execute, f"SELECT count() FROM {db}.{quote(t)}"))
            for t in tables
        ],
    )


_CLICKHOUSE_CHECKS: list[tuple[str, str, Check]] = [
    ("connection", "connectivity", _ch_connectivity),
    ("connection", "server_connections", _ch_pool),
    ("schema", "at_migration_heads", _ch_heads),
    ("schema", "matches_template", _ch_matches_template),
    ("schema", "models_match", _ch_models_match),
    (
        "data",
        "scenario_counts",
        lambda c: _scenario_counts(
            c, _ch_count(c, c.database.name), _ch_count(c, c.database.template.name)
        ),
    ),
    ("performance", "representative_queries", _ch_performance),
    ("isolation", "owner", _owner),
    ("isolation", "sealed_template", _template),
]

db_state_validator = DatabaseStateValidator()
generate_validation_report = db_state_validator.generate_validation_report
