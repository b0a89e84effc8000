"""The tenants app's Alembic environment: the URL from the app's config, the version table
in the tenant's schema (`-x tenant=...`, or the `tenant` attribute)."""

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from tenants import config as app_config
from tenants.models import Base

config = context.config
tenant = config.attributes.get("tenant") or context.get_x_argument(as_dictionary=True)["tenant"]

engine = create_engine(app_config.DATABASE_URL, poolclass=NullPool)
try:
    with engine.connect() as connection:
        connection = connection.execution_options(schema_translate_map={None: tenant})
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            version_table_schema=tenant,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
finally:
    engine.dispose()
