"""The app's sessions. Its engine points at a developer database that does not exist (port
1): under test, every query must go to the test's database instead."""

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import scoped_session, sessionmaker

engine = create_async_engine(
    "postgresql+asyncpg://notes:notes@127.0.0.1:1/notes_dev"
).execution_options(schema_translate_map={"tenant": None})

Session = async_sessionmaker(engine, expire_on_commit=False)

# a legacy synchronous corner of the app: a thread-local session with no bind of its own
SyncSession = scoped_session(sessionmaker())
