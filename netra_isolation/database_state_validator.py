"""State validation: named checks by category, per backend and across both; a report.

Categories: connection, schema, data, performance, isolation (per backend) and
cross_database. Results read as the original design's examples read them:
`results["postgres"]["status"] == "passed"`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, inspect, text

from netra_isolation import backends
from netra_isolation.checks import (
    CONNECTIVITY,
    DISABLED,
    FAILED,
    NOT_RUN,
    PASSED,
    SKIPPED,
    Check,
    CheckContext,
    CheckResult,
    outcome,
)
from netra_isolation.errors import ConfigurationError, UnknownChoiceError

if TYPE_CHECKING:
    from netra_isolation.handle import IsolatedTestConfig

__all__ = ["CheckContext", "CheckResult", "DatabaseStateValidator", "db_state_validator"]


class DatabaseStateValidator:
    def __init__(self) -> None:
        self._checks: dict[str, list[tuple[str, str, Check]]] = {}
        self.disabled: set[str] = set()

    def checks(self, backend: str) -> list[tuple[str, str, Check]]:
        """`backend`'s checks, its own (from its folder) and those registered, in order."""
        if backend not in self._checks:
            self._checks[backend] = list(backends.get(backend).parts().checks)
        return self._checks[backend]

    def check_names(self) -> list[str]:
        """Every check as `category.name` (what `disable` and `validation_skip` take)."""
        every = [self.checks(backend) for backend in backends.names()]
        return sorted({f"{c}.{n}" for checks in every for c, n, _ in checks})

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
        self.checks(backend).append((category, name, check))

    def _run(self, context: CheckContext, category: str, name: str, check: Check) -> CheckResult:
        started = time.perf_counter()
        # On the test's own connection each check runs in a SAVEPOINT rolled back after it, so
        # a check that fails in SQL leaves the test's transaction as it was.
        savepoint = context.handle.begin_nested() if context.in_test_transaction else None
        try:
            status, details = outcome(check(context))
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
            isolator = config.isolator(backend)
            own = connection if config.shares_database(backend) else None
            registered = self.checks(backend)
            with ExitStack() as stack:
                try:
                    handle = stack.enter_context(isolator.check_handle(db, own))
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
            ch = config.isolator("clickhouse")
            ch_db = config.databases["clickhouse"].name
            conn = context.handle
            checked: dict[str, Any] = {}
            broken: dict[str, Any] = {}
            for (ch_table, ch_column), (pg_table, pg_column) in relations:
                label = f"{ch_table}.{ch_column} -> {pg_table}.{pg_column}"
                values = ch.column_values(ch_db, ch_table, ch_column)
                if values is None or not inspect(conn).has_table(pg_table):
                    checked[label] = "tables not in these databases"
                    continue
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
        pg = config.isolator("postgres")
        with ExitStack() as stack:
            try:
                handle = stack.enter_context(
                    pg.check_handle(config.databases["postgres"], connection)
                )
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


db_state_validator = DatabaseStateValidator()
generate_validation_report = db_state_validator.generate_validation_report
