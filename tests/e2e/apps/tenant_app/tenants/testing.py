"""How the tests' template is built: the shared schema, one schema per tenant made by
create_all under a schema_translate_map, each stamped at the Alembic head. All of it on an
engine of the app's own, as its deploy script does, committed."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from tenants import config
from tenants.models import Base, SharedBase

ROOT = Path(__file__).resolve().parents[1]


def build_schema(connection, url):
    config.DATABASE_URL = url  # env.py reads it
    engine = create_engine(url, poolclass=NullPool)
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
