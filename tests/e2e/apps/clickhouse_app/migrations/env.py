"""The metrics app's Alembic environment for ClickHouse, over HTTP (the native driver cannot
send the inline VALUES Alembic writes its version table with). Under test the connection
comes in `config.attributes`; the `alembic` command takes `-x url=clickhouse+http://...`."""

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from netra_isolation.alembic_env import clickhouse_alembic_dialect, patch_clickhouse_version_table

dialect = clickhouse_alembic_dialect()
config = context.config


def run(connection):
    context.configure(
        connection=connection,
        target_metadata=None,
        include_object=dialect.include_object,
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        patch_clickhouse_version_table(context)
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("no database URL: pass -x url=clickhouse+http://user:pw@host:8123/db")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as live:
            run(live)
    finally:
        engine.dispose()
