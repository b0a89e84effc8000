"""clickhouse-sqlalchemy 0.3.2's Alembic dialect imports autogenerate helpers that current
Alembic no longer has (xzkostyan/clickhouse-sqlalchemy#368): the app stands in for the one
module that needs them (autogenerate of materialized views is all it loses)."""

import importlib
import sys
import types

COMPARATORS = "clickhouse_sqlalchemy.alembic.comparators"


def alembic_dialect() -> types.ModuleType:
    try:
        return importlib.import_module("clickhouse_sqlalchemy.alembic.dialect")
    except ImportError:
        stand_in = types.ModuleType(COMPARATORS)
        stand_in.compare_mat_view = lambda *args, **kwargs: None
        sys.modules[COMPARATORS] = stand_in
        return importlib.import_module("clickhouse_sqlalchemy.alembic.dialect")
