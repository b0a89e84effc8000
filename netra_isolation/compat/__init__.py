"""Small, version-guarded fixes for gaps in upstream libraries, each naming what it works around.

`apply()` runs them all; it is idempotent and each fix is a no-op where it is not needed.
"""

from __future__ import annotations

import importlib

from netra_isolation.errors import ConfigurationError

CLICKHOUSE_PACKAGES = ("clickhouse_sqlalchemy", "clickhouse_driver", "asynch")


def require_clickhouse() -> None:
    """ClickHouse support is an extra: a project that uses ClickHouse installs it."""
    missing = []
    for package in CLICKHOUSE_PACKAGES:
        try:
            importlib.import_module(package)
        except ImportError:
            missing.append(package)
    if missing:
        raise ConfigurationError(
            f"this project's tests use ClickHouse, but {', '.join(missing)} "
            "is not installed: pip install 'netra-isolation[clickhouse]'"
        )


def apply() -> list[str]:
    """The ClickHouse fixes; a clear error when ClickHouse support is not installed."""
    require_clickhouse()
    from netra_isolation.compat.clickhouse_alembic import patch_engine_type_bound
    from netra_isolation.compat.clickhouse_asynch import patch_asynch_dialect

    applied = patch_asynch_dialect()
    if patch_engine_type_bound():
        applied.append("engine _type_bound")
    return applied
