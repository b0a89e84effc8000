import pytest
from sqlalchemy import select

from factories.models import Organization, User


@pytest.mark.isolation(level="transaction", schema="user_management")
async def test_rolled_back_after_the_test(isolated_postgres):
    session, config = isolated_postgres
    session.add(User(email="ada@example.com", full_name="Ada Lovelace"))
    await session.commit()  # application code may commit: it is a SAVEPOINT here

    users = (await session.execute(select(User))).scalars().all()
    assert [u.email for u in users] == ["ada@example.com"]


@pytest.mark.isolation(schema="user_management")
def test_models_in_a_sync_test(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    session.add(Organization(name="Netra", slug="netra"))
    session.commit()
    assert session.scalar(select(Organization.slug)) == "netra"
    assert config.get_database_info()["postgres"]["password"] == "***"
