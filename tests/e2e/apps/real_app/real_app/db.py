"""The app's engine, built at import from its config, and the session everything uses."""

from sqlalchemy import create_engine
from sqlalchemy.orm import scoped_session, sessionmaker

from real_app import config

engine = create_engine(config.DATABASE_URL, pool_pre_ping=True)

Session = scoped_session(sessionmaker(bind=engine))
