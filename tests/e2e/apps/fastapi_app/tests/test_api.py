"""The API through the module's client and login, on each test's own database."""

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.core.config import settings
from app.core.db import init_db
from app.models import Item, User

API = settings.API_V1_STR


def test_get_users_superuser_me(
    client: TestClient, superuser_token_headers: dict[str, str], db: Session
) -> None:
    r = client.get(f"{API}/users/me", headers=superuser_token_headers)
    current_user = r.json()
    assert current_user
    assert current_user["is_superuser"]
    assert current_user["email"] == settings.FIRST_SUPERUSER


def test_create_item_and_read_it_back(
    client: TestClient, superuser_token_headers: dict[str, str], db: Session
) -> None:
    r = client.post(f"{API}/items/", headers=superuser_token_headers, json={"title": "Foo"})
    assert r.status_code == 200
    created = r.json()
    r = client.get(f"{API}/items/", headers=superuser_token_headers)
    assert r.json() == {"data": [created], "count": 1}
    item = db.exec(select(Item)).one()  # in the test's database, where the app wrote it
    assert str(item.id) == created["id"]


def test_login_with_a_wrong_password(client: TestClient, db: Session) -> None:
    login_data = {"username": settings.FIRST_SUPERUSER, "password": "incorrect"}
    r = client.post(f"{API}/login/access-token", json=login_data)
    assert r.status_code == 400


def test_init_db_again_keeps_one_superuser(db: Session) -> None:
    init_db(db)
    superusers = select(func.count()).select_from(User).where(User.is_superuser)
    assert db.exec(superusers).one() == 1


def test_get_users_normal_user_me(
    client: TestClient, normal_user_token_headers: dict[str, str]
) -> None:
    r = client.get(f"{API}/users/me", headers=normal_user_token_headers)
    assert r.status_code == 200
    assert r.json()["email"] == settings.EMAIL_TEST_USER
    assert not r.json()["is_superuser"]
