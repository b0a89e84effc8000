"""The vocabulary of state validation: what a check sees (`CheckContext`), what it returns,
and the checks every backend shares (owner tag, sealed template, scenario counts, timed
queries). Each backend's own checks live in its folder (`backends/<name>/checks.py`); the
validator (`database_state_validator`) runs them.

A check is `check(context)` returning True/False, a status, or (status, details).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from netra_isolation.handle import IsolatedTestConfig
    from netra_isolation.isolator import TestIsolatorBase


PASSED, FAILED, WARNING, SKIPPED = "passed", "failed", "warning", "skipped"
CONNECTIVITY = ("connection", "connectivity")
NOT_RUN = "not run: connection.connectivity failed"
DISABLED = "not run: disabled (validation_skip / disable())"
MIN_FREE_SLOTS = 5  # a server with fewer free connections (queries, on ClickHouse) fails "pool"


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
    database: Any  # DatabaseRef; None for the cross-database check
    handle: Any  # the backend's: a SQLAlchemy Connection, ClickHouse's executor
    isolator: TestIsolatorBase
    in_test_transaction: bool = False  # the handle is the test's own connection
    cache: dict[str, Any] = field(default_factory=dict)


Check = Callable[[CheckContext], Any]


def outcome(value: Any) -> tuple[str, Any]:
    """A check returns a status, a bool, (bool|status, details), or a CheckResult's pieces."""
    if isinstance(value, tuple) and len(value) == 2:
        status, details = value
    else:
        status, details = value, None
    if isinstance(status, bool):
        status = PASSED if status else FAILED
    return str(status), details


NO_MODELS = (
    'no models to compare with: name them with {backend}_models = "package.module:Base" '
    "in [tool.netra_isolation] (or give env.py a target_metadata)"
)


def expected_heads(context: CheckContext) -> set[str]:
    spec = context.database.template.spec
    return context.isolator.builder.expected_heads(spec.schema_type) or set()


def owner_check(context: CheckContext) -> Any:
    owner = context.isolator.owner_of(context.database.name)
    expected = context.database.owner
    if owner is None:
        return FAILED, "no owner tag: the database was not made by netra_isolation"
    if (owner.run, owner.test) != (expected.run, expected.test):
        return FAILED, {"owner": owner.test, "run": owner.run, "expected": expected.test}
    return PASSED, {"test": owner.test, "run": owner.run, "worker": owner.worker}


def template_check(context: CheckContext) -> Any:
    template = context.database.template
    if template is None:
        return FAILED, "not cloned from a template"
    if not context.isolator.template_is_sealed(template):
        return FAILED, f"template {template.name} is missing or not sealed"
    if context.isolator.fingerprint(template.spec) != template.fingerprint:
        return FAILED, f"template {template.name} is out of date for {template.spec}"
    return PASSED, template.name


def scenario_counts(
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


def timed_queries(c: CheckContext, queries: Iterable[tuple[str, Callable[[], Any]]]) -> Any:
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
