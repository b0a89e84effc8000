"""clickhouse-sqlalchemy 0.3.2's Alembic support on current Alembic.

Upstream: xzkostyan/clickhouse-sqlalchemy#368 and #380. `clickhouse_sqlalchemy.alembic.dialect`
imports its autogenerate comparators, which import `_compare_columns` and `_reflect_table`;
Alembic 1.15 removed the latter and 1.18 the former. The dialect module is what migrations
need (it registers the ClickHouse `DefaultImpl` and `patch_alembic_version`), so when that
import fails for this reason we give it a comparators module whose materialized-view
comparator says it is unavailable; autogenerate of ClickHouse materialized views is the only
thing lost.

Second gap, no upstream issue filed: Alembic 1.18's `op.create_table` asks every Constraint
among its arguments for `_type_bound`; clickhouse-sqlalchemy's table engines subclass
`Constraint` without running its `__init__`, so `op.create_table(..., engines.MergeTree(...))`
fails with AttributeError. An engine is never bound to a column type: the class gets False.

Third: `patch_alembic_version` makes the version table a ReplacingMergeTree with an empty
sorting key. Every row then has the same key, so a background merge keeps one row and forgets
the other branch heads (xzkostyan/clickhouse-sqlalchemy#235: the next `upgrade heads` re-runs
migrations and fails on "table already exists"), and ClickHouse 25.12+ refuses to create such
a table at all (#399). `patch_alembic_version` here keeps upstream's columns on a plain
MergeTree, which never merges rows away; Alembic's UPDATE and DELETE of version rows are
mutations on a non-key column, which MergeTree allows.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from alembic import __version__ as alembic_version
from sqlalchemy.sql.functions import Function

COMPARATORS = "clickhouse_sqlalchemy.alembic.comparators"
BROKEN_SINCE = (1, 15)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:2] if part.isdigit())


def compare_mat_view(*args: Any, **kwargs: Any) -> None:
    raise NotImplementedError(
        "autogenerate of ClickHouse materialized views is unavailable with alembic "
        f"{alembic_version} and clickhouse-sqlalchemy 0.3.2 (xzkostyan/clickhouse-sqlalchemy#368)"
    )


def patch_engine_type_bound() -> bool:
    """Give table engines the `_type_bound` flag Alembic 1.18+ reads; True if patched."""
    from clickhouse_sqlalchemy.engines.base import Engine

    if _version(alembic_version) < (1, 18) or hasattr(Engine, "_type_bound"):
        return False
    Engine._type_bound = False
    return True


def load_alembic_dialect() -> types.ModuleType:
    """Import `clickhouse_sqlalchemy.alembic.dialect`, working around the broken import."""
    patch_engine_type_bound()
    try:
        return importlib.import_module("clickhouse_sqlalchemy.alembic.dialect")
    except ImportError as exc:
        moved = any(name in str(exc) for name in _MOVED)
        if _version(alembic_version) < BROKEN_SINCE or not moved:
            raise
    stand_in = types.ModuleType(COMPARATORS)
    stand_in.compare_mat_view = compare_mat_view  # type: ignore[attr-defined]
    sys.modules[COMPARATORS] = stand_in
    return importlib.import_module("clickhouse_sqlalchemy.alembic.dialect")


def patch_alembic_version(context: Any, **kwargs: Any) -> bool:
    """Upstream's `patch_alembic_version`, then a MergeTree in place of a ReplacingMergeTree
    with an empty sorting key (#235, #399); True if the engine was replaced."""
    from clickhouse_sqlalchemy import engines

    load_alembic_dialect().patch_alembic_version(context, **kwargs)
    table = context._proxy._migration_context._version
    engine = table.engine
    if not isinstance(engine, engines.ReplacingMergeTree) or not _empty_key(engine):
        return False
    key = engine.order_by.expressions
    if isinstance(engine, engines.ReplicatedReplacingMergeTree):
        table.engine = engines.ReplicatedMergeTree(
            kwargs["table_path"], kwargs["replica_name"], order_by=key
        )
    else:
        table.engine = engines.MergeTree(order_by=key)
    return True


def _empty_key(engine: Any) -> bool:
    key = engine.order_by.expressions if engine.order_by is not None else []
    return all(isinstance(e, Function) and e.name == "tuple" and len(e.clauses) == 0 for e in key)


_MOVED = ("_compare_columns", "_reflect_table", "alembic.autogenerate.compare")
