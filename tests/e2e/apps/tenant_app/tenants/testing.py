"""How the tests' template is built: the app's own setup, as its deploy script runs it,
reading the URL from the app's config: the database made if missing (sqlalchemy-utils), the
shared schema, one schema per tenant made by create_all under a schema_translate_map, each
stamped at the Alembic head (through env.py, which reads the same config)."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool
from sqlalchemy_utils import create_database, database_exists

from tenants import config
from tenants.models import Base, SharedBase

ROOT = Path(__file__).resolve().parents[1]


def build_schema(connection):
    if not database_exists(config.DATABASE_URL):
        create_database(config.DATABASE_URL)
    engine = create_engine(config.DATABASE_URL, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE SCHEMA shared"))
            SharedBase.metadata.create_all(conn)
            for tenant in config.TENANTS:
                conn.execute(text(f"CREATE SCHEMA {tenant}"))
                mapped = conn.execution_options(schema_translate_map={None: tenant})
                Base.metadata.create_all(mapped)
    finally:
        engine.dispose()
    for tenant in config.TENANTS:
        alembic = Config(str(ROOT / "alembic.ini"))
        alembic.attributes["tenant"] = tenant
        command.stamp(alembic, "head")
