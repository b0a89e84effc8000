"""The app's prestart, as a scenario: every template holds the first superuser. The
scenario's session is SQLModel's (the app uses SQLModel), so init_db runs unchanged."""

import netra_isolation
from app.core.db import init_db


@netra_isolation.scenario("init", seed=1, counts={"user": 1})
def init(session):
    init_db(session)
