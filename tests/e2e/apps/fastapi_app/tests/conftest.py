"""The template's conftest, on netra-isolation. Its session-wide `db` keeps its scope; its
setup (init_db on the app's database) and cleanup (every row deleted) are gone: init_db is
the `init` scenario now (tests/scenarios.py), baked into the template. During a test, `db`
and the app's engine reach the test's own database; in the module-scoped login fixtures
(the template's, unchanged), the worker's, which starts with the same users."""

from collections.abc import Generator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.core.config import settings
from app.core.db import engine
from app.core.security import get_password_hash
from app.main import app
from app.models import User


@pytest.fixture(scope="session")
def db() -> Generator[Session, None, None]:
    with Session(engine) as session:
        yield session


@pytest.fixture(scope="module")
def client() -> Generator[TestClient, None, None]:
    with TestClient(app) as c:
        yield c


def get_superuser_token_headers(client: TestClient) -> dict[str, str]:
    login_data = {
        "username": settings.FIRST_SUPERUSER,
        "password": settings.FIRST_SUPERUSER_PASSWORD,
    }
    r = client.post(f"{settings.API_V1_STR}/login/access-token", json=login_data)
    tokens = r.json()
    a_token = tokens["access_token"]
    headers = {"Authorization": f"Bearer {a_token}"}
    return headers


@pytest.fixture(scope="module")
def superuser_token_headers(client: TestClient) -> dict[str, str]:
    return get_superuser_token_headers(client)


def authentication_token_from_email(*, client: TestClient, email: str, db: Session) -> dict:
    """As the template's: the user's password set anew through `db`, then a login."""
    password = "a-new-one"
    user = db.exec(select(User).where(User.email == email)).one()
    user.hashed_password = get_password_hash(password)
    db.add(user)
    db.commit()
    r = client.post(
        f"{settings.API_V1_STR}/login/access-token", json={"username": email, "password": password}
    )
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture(scope="module")
def normal_user_token_headers(client: TestClient, db: Session) -> dict[str, str]:
    return authentication_token_from_email(client=client, email=settings.EMAIL_TEST_USER, db=db)
