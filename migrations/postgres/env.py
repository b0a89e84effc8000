"""Alembic environment for the PostgreSQL schema.

netra_isolation runs this in-process with a live connection in `config.attributes`; the CLI
path (`alembic -n postgres -x url=... upgrade heads`) builds its own engine.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from netra_isolation.migrations import cli_url
from netra_isolation.models.postgres import PostgresBase

config = context.config
target_metadata = PostgresBase.metadata


def _url() -> str:
    url = cli_url("NETRA_POSTGRES_URL", "postgresql+psycopg://user:password@host:port/db")
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)  # no fileConfig here: it would silence pytest's log capture
        return
    if config.config_file_name is not None:
        fileConfig(config.config_file_name)
    if context.is_offline_mode():
        context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


main()
