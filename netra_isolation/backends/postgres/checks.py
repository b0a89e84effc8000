"""PostgreSQL's validation checks (the order of the report), run by the validator on a
connection to the test's database: the test's own at `transaction` level."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from netra_isolation.backends.postgres.isolator import PostgreSQLTestIsolator
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


def _isolator(c: CheckContext) -> PostgreSQLTestIsolator:
    assert isinstance(c.isolator, PostgreSQLTestIsolator)
    return c.isolator


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
    expected = expected_heads(c)
    return expected <= current, {"expected": sorted(expected), "current": sorted(current)}


def _pg_template(c: CheckContext) -> dict[str, Any]:
    """The template's columns, constraints and row counts per table, read once per template
    from a throwaway copy (a sealed template refuses connections)."""
    key = f"pg-template:{c.database.template.name}"
    cache = c.isolator.inspection_cache
    if key not in cache:
        with (
            _isolator(c).template_copy(c.database.template) as copy,
            _isolator(c).connect_to(copy) as conn,
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
    # PostgreSQL 18 records each NOT NULL in pg_constraint too (contype 'n'): nullability is
    # the models' to compare (models_match), as on the servers before it
    constraints = conn.execute(
        text(
            "SELECT conrelid::regclass::text, conname FROM pg_constraint c "
            "JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = 'public' AND c.contype <> 'n'"
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
    return timed_queries(
        c,
        [
            (f"count {t}", partial(c.handle.execute, text(f'SELECT count(*) FROM "{t}"')))
            for t in tables
        ],
    )


def _pg_foreign_rows(c: CheckContext) -> Any:
    """Seen from a fresh connection, outside the test's transaction, a `transaction`-level
    worker database must hold exactly what its template holds."""
    if not c.config.shares_database("postgres"):
        return PASSED, "a database of this test's own (see isolation.owner)"
    template = _pg_template(c)["counts"]
    with _isolator(c).connect_to(c.database.name) as fresh:  # outside the test's transaction
        counts = _pg_count(CheckContext(c.config, "postgres", c.database, fresh, c.isolator))
        actual = {t: counts(t) for t in template}
    foreign = {t: (template[t], n) for t, n in actual.items() if n != template[t]}
    return not foreign, ({"committed_rows_template_vs_now": foreign} if foreign else None)


def _pg_foreign_sessions(c: CheckContext) -> Any:
    """No connection of another test is open on this test's database (the connections this
    tool makes carry their test in application_name; untagged ones are only listed)."""
    own = _isolator(c).application_name(c.config.test_id)

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


CHECKS: list[tuple[str, str, Check]] = [
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
        lambda c: scenario_counts(c, _pg_count(c), _pg_template(c)["counts"].get),
    ),
    ("performance", "representative_queries", _pg_performance),
    ("isolation", "owner", owner_check),
    ("isolation", "sealed_template", template_check),
    ("isolation", "no_foreign_rows", _pg_foreign_rows),
    ("isolation", "no_foreign_sessions", _pg_foreign_sessions),
]
