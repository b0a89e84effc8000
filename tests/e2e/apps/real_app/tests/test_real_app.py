"""The real app's own tests: its HTTP API through Starlette's TestClient, its services, its
factories committing through its scoped_session, its module-level engine."""

from decimal import Decimal

import pytest
from sqlalchemy import func, select, text

from real_app import db as app_db
from real_app import services
from real_app.factories import OrderFactory, UserFactory
from real_app.models import Order

# code on the app's own engine commits on connections of its own: such a test takes a
# database of its own whatever level the suite runs at (the tool refuses it at transaction)
APP_ENGINE = pytest.mark.isolation(level="database")


@pytest.mark.parametrize("n", range(3))
def test_register_through_the_api(client, n):
    response = client.post("/users", json={"email": "ada@example.com", "name": "Ada"})
    assert response.status_code == 201
    assert client.get("/users/count").json() == {"users": 1}  # no other test's users


def test_a_duplicate_email_is_a_409(client):
    client.post("/users", json={"email": "bob@example.com", "name": "Bob"})
    response = client.post("/users", json={"email": "bob@example.com", "name": "Bob"})
    assert response.status_code == 409


@pytest.mark.parametrize("n", range(3))
def test_factories_commit_through_the_apps_session(db, n):
    UserFactory(email="same@example.com")  # unique: another test's row would collide
    UserFactory.create_batch(2)
    assert services.user_count() == 3


def test_an_order_through_the_api(client):
    user = UserFactory()
    response = client.post(f"/users/{user.id}/orders", json={"total": "12.50"})
    assert response.status_code == 201
    assert app_db.Session.scalar(select(func.count()).select_from(Order)) == 1


def test_the_template_is_stamped_at_the_head(db):
    assert app_db.Session.scalar(text("SELECT version_num FROM alembic_version")) == "r0001"


@APP_ENGINE
def test_the_revenue_report_runs_on_the_apps_engine(client):
    OrderFactory.create_batch(2, total=Decimal("12.50"))
    assert client.get("/reports/revenue").json() == {"revenue": "25.00"}


@APP_ENGINE
def test_the_apps_engine_is_on_the_tests_database(db):
    on_session = app_db.Session.scalar(text("SELECT current_database()"))
    assert services.database_name() == on_session  # the test's (the app's Session follows it)
