"""The app's session: tenant_a's, by schema_translate_map, on the developer database."""

from sqlalchemy import create_engine
from sqlalchemy.orm import scoped_session, sessionmaker

from tenants import config

engine = create_engine(config.DATABASE_URL)

Session = scoped_session(
    sessionmaker(bind=engine.execution_options(schema_translate_map={None: "tenant_a"}))
)
