"""How the tests' template is built, as the app's deploy script builds a database: create_all
on an engine of its own (the app's driver), committed, then `alembic stamp head`."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from real_app import config
from real_app.models import Base

ROOT = Path(__file__).resolve().parents[1]


def build_schema(connection, url):
    url = make_url(url).set(drivername="postgresql+psycopg2")
    config.DATABASE_URL = url.render_as_string(hide_password=False)  # env.py reads it
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as conn:
            Base.metadata.create_all(conn)
    finally:
        engine.dispose()
    command.stamp(Config(str(ROOT / "alembic.ini")), "head")
