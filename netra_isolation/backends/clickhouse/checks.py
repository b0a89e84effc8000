"""ClickHouse's validation checks (the order of the report), run by the validator through
the isolator's executor."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from netra_isolation.backends.clickhouse.isolator import (
    OWNER_TABLE,
    SEALED_TABLE,
    ClickHouseTestIsolator,
    literal,
    quote,
)
from netra_isolation.checks import (
    FAILED,
    MIN_FREE_SLOTS,
    NO_MODELS,
    PASSED,
    SKIPPED,
    Check,
    CheckContext,
    expected_heads,
    owner_check,
    scenario_counts,
    template_check,
    timed_queries,
)

HIDDEN = {OWNER_TABLE, SEALED_TABLE}  # the tool's marker tables


def _isolator(c: CheckContext) -> ClickHouseTestIsolator:
    assert isinstance(c.isolator, ClickHouseTestIsolator)
    return c.isolator


def _ch_columns(c: CheckContext, database: str) -> set[tuple[str, str, str]]:
    rows = c.handle.execute(
        "SELECT table, name, type FROM system.columns "
        f"WHERE database = {literal(database)} ORDER BY table, name"
    )
    return {(str(t), str(n), str(ty)) for t, n, ty in rows if t not in HIDDEN}


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
    user = _isolator(c).server.user
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
    if _isolator(c).exists("system", "server_settings"):
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
    expected = expected_heads(c)
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
        if not _isolator(c).exists(database, table):
            return None
        return int(c.handle.execute(f"SELECT count() FROM {quote(database)}.{quote(table)}")[0][0])

    return count


def _ch_performance(c: CheckContext) -> Any:
    tables = [t for t, _e, _d in _isolator(c).tables(c.database.name) if t not in HIDDEN]
    db = quote(c.database.name)
    return timed_queries(
        c,
        [
            (f"count {t}", partial(c.handle.execute, f"SELECT count() FROM {db}.{quote(t)}"))
            for t in tables
        ],
    )


CHECKS: list[tuple[str, str, Check]] = [
    ("connection", "connectivity", _ch_connectivity),
    ("connection", "server_connections", _ch_pool),
    ("schema", "at_migration_heads", _ch_heads),
    ("schema", "matches_template", _ch_matches_template),
    ("schema", "models_match", _ch_models_match),
    (
        "data",
        "scenario_counts",
        lambda c: scenario_counts(
            c, _ch_count(c, c.database.name), _ch_count(c, c.database.template.name)
        ),
    ),
    ("performance", "representative_queries", _ch_performance),
    ("isolation", "owner", owner_check),
    ("isolation", "sealed_template", template_check),
]
