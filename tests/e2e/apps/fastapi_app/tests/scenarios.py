"""The app's prestart, as a scenario: every template holds the first superuser."""

from sqlalchemy.orm import sessionmaker
from sqlmodel import Session

import netra_isolation
from app.core.db import init_db

# The class of a scenario's session (setting `sessions`): the app's, SQLModel's. The app
# opens its sessions as Session(engine) and has no sessionmaker of its own to name.
SessionLocal = sessionmaker(class_=Session)


@netra_isolation.scenario("init", seed=1, counts={"user": 1})
def init(session):
    init_db(session)
