import pytest
from sqlalchemy import func, select

from factories import UserFactory
from factories.models import User
from netra_isolation import scenario


@pytest.mark.isolation(level="transaction", schema="user_management")
def test_with_factories(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    UserFactory.create_batch(3)  # in this test's database, rolled back afterwards
    assert session.scalar(select(func.count()).select_from(User)) == 3


# A scenario of your own: seeded into a template once, cloned for every test that names it
@scenario("two_admins", seed=42, counts={"users": 2})
def two_admins(session):
    UserFactory.create_batch(2)


@pytest.mark.isolation(schema="user_management", scenario="two_admins")
def test_my_scenario(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    assert session.scalar(select(func.count()).select_from(User)) == 2
