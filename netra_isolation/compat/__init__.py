"""Small, version-guarded fixes for gaps in upstream libraries, each naming what it works around.

`apply()` runs them all; it is idempotent and each fix is a no-op where it is not needed.
"""

from __future__ import annotations


def apply() -> list[str]:
    from netra_isolation.compat.clickhouse_alembic import patch_engine_type_bound
    from netra_isolation.compat.clickhouse_asynch import patch_asynch_dialect

    applied = patch_asynch_dialect()
    if patch_engine_type_bound():
        applied.append("engine _type_bound")
    return applied
