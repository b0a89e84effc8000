"""Alembic environment for the PostgreSQL schema.

netra_isolation runs this in-process with a live connection in `config.attributes`; the CLI
path (`alembic -n postgres -x url=... upgrade heads`) builds its own engine.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

from factories.models.postgres import PostgresBase
from netra_isolation.alembic_env import cli_url, run_env

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


def _offline(url: str) -> None:
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


run_env(_run, _url, _offline)
