"""Helpers for an application's own `env.py` (public): the body that migrates the connection
netra_isolation hands it or, run by the `alembic` command, the URL it is given; and
ClickHouse's Alembic dialect with the upstream gaps handled (see `compat/`).

    from netra_isolation.alembic_env import clickhouse_alembic_dialect, run_env
"""

from netra_isolation.compat.clickhouse_alembic import (
    load_alembic_dialect as clickhouse_alembic_dialect,
)
from netra_isolation.compat.clickhouse_alembic import (
    patch_alembic_version as patch_clickhouse_version_table,
)
from netra_isolation.migrations import cli_url, run_env

__all__ = ["cli_url", "clickhouse_alembic_dialect", "patch_clickhouse_version_table", "run_env"]
