"""The app's prestart, as a scenario: every template holds the first superuser, and the
tests' normal user the module-scoped login fixture signs in as. The scenario's session is
SQLModel's (the app uses SQLModel), so init_db runs unchanged."""

import netra_isolation
from app.core.config import settings
from app.core.db import init_db
from app.core.security import get_password_hash
from app.models import User


@netra_isolation.scenario("init", seed=1, counts={"user": 2})
def init(session):
    init_db(session)
    session.add(User(email=settings.EMAIL_TEST_USER, hashed_password=get_password_hash("x")))
    session.commit()
