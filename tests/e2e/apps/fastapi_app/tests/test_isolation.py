"""What a test or a module-scoped fixture writes, no other test sees; a test that asks for
no database still works, on one of its own."""

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from app.core.config import settings
from app.models import Item, User

API = settings.API_V1_STR


@pytest.fixture(scope="module")
def module_item(client: TestClient, superuser_token_headers: dict[str, str]) -> dict:
    """Written outside any test: to the worker's database, which no test's database sees."""
    r = client.post(f"{API}/items/", headers=superuser_token_headers, json={"title": "module"})
    assert r.status_code == 200
    return r.json()


def test_writes_a_row(db: Session) -> None:
    owner = db.exec(select(User).where(User.email == settings.FIRST_SUPERUSER)).one()
    db.add(Item(title="left behind?", owner_id=owner.id))
    db.commit()
    assert db.exec(select(func.count()).select_from(Item)).one() == 1


def test_does_not_see_the_row_of_the_test_before(db: Session) -> None:
    assert db.exec(select(Item)).all() == []


def test_does_not_see_what_a_module_fixture_wrote(
    client: TestClient, superuser_token_headers: dict[str, str], module_item: dict, db: Session
) -> None:
    assert module_item["title"] == "module"
    r = client.get(f"{API}/items/", headers=superuser_token_headers)
    assert r.json() == {"data": [], "count": 0}
    assert db.exec(select(Item)).all() == []


def test_only_the_client(
    client: TestClient, superuser_token_headers: dict[str, str], module_item: dict
) -> None:
    """No database asked for: the app's engine gets one of this test's own, a clone of the
    same template, not the worker's."""
    r = client.get(f"{API}/items/", headers=superuser_token_headers)
    assert r.json() == {"data": [], "count": 0}
    r = client.post(f"{API}/items/", headers=superuser_token_headers, json={"title": "Mine"})
    assert r.status_code == 200
    r = client.get(f"{API}/items/", headers=superuser_token_headers)
    assert [item["title"] for item in r.json()["data"]] == ["Mine"]


def test_the_tools_fixture_and_the_apps_session_meet(isolated_postgres_sync, db: Session) -> None:
    """Asking for the tool's fixture: `db` and the app's engine reach that database."""
    session, config = isolated_postgres_sync
    name = config.databases["postgres"].name
    assert db.exec(select(func.current_database())).one() == name
    assert session.exec(select(func.count()).select_from(User)).one() == 2
