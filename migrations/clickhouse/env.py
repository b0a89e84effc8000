"""Alembic environment for the ClickHouse schema, run over HTTP.

The native driver cannot send INSERT with inline VALUES, which is how Alembic writes its
version table, so migrations use `clickhouse+http://`. netra_isolation passes its own
connection in `config.attributes`; the CLI path takes `-x url=clickhouse+http://...`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from factories.models.clickhouse import ClickHouseBase
from netra_isolation.alembic_env import (
    cli_url,
    clickhouse_alembic_dialect,
    patch_clickhouse_version_table,
    run_env,
)

dialect = clickhouse_alembic_dialect()
target_metadata = ClickHouseBase.metadata


def _url() -> str:
    return cli_url("NETRA_CLICKHOUSE_URL", "clickhouse+http://user:password@host:8123/db")


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=dialect.include_object,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        patch_clickhouse_version_table(context)
        context.run_migrations()


run_env(_run, _url)
