"""The real app's Alembic environment: the URL from the app's config."""

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from real_app import config as app_config
from real_app.models import Base

engine = create_engine(app_config.DATABASE_URL, poolclass=NullPool)
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
finally:
    engine.dispose()
