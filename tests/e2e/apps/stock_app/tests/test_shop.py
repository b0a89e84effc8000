"""The shop's own tests, on netra_isolation with no configuration at all."""

import pytest
from shop import services
from shop.models import Customer
from sqlalchemy import text

LEVELS = pytest.mark.parametrize(
    "level",
    [pytest.param(lv, marks=pytest.mark.isolation(level=lv)) for lv in ("database", "transaction")],
)


@LEVELS
@pytest.mark.parametrize("n", range(3))
def test_register_commits_and_sees_only_its_own(isolated_postgres_sync, level, n):
    session, config = isolated_postgres_sync
    assert config.level == level
    assert services.customer_count(session) == 0
    customer = services.register(session, "same@example.com")  # the same email every time
    services.place_order(session, customer, 1200 * (n + 1))
    assert services.customer_count(session) == 1
    assert session.get(Customer, customer.id).orders[0].total_cents == 1200 * (n + 1)


@LEVELS
async def test_async_session_sees_the_schema_at_head(isolated_postgres, level):
    session, config = isolated_postgres
    assert config.level == level
    versions = (await session.execute(text("SELECT version_num FROM alembic_version"))).all()
    assert versions == [("0002",)]
    await session.execute(text("INSERT INTO customers (email) VALUES ('a@example.com')"))
    await session.commit()
    assert (await session.execute(text("SELECT count(*) FROM customers"))).scalar() == 1
