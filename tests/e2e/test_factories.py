"""Factories inside tests write to that test's database, at both isolation levels."""

from __future__ import annotations

import pytest

FACTORY_TESTS = """
import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.pool import NullPool

from factories import MembershipFactory, OrganizationFactory, UserFactory
from factories.models import Organization, User


def other_connection_count(config):
    url = config.isolator("postgres").database_url(config.test_id, "psycopg")
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM users")).scalar()
    engine.dispose()
    return count


@pytest.mark.parametrize("n", range(3))
@pytest.mark.isolation(level="transaction", schema="user_management")
def test_transaction_level_rows_are_gone_after_the_test(isolated_postgres_sync, n):
    session, config = isolated_postgres_sync
    UserFactory.create_batch(2)
    session.commit()
    assert session.scalar(select(func.count()).select_from(User)) == 2
    assert other_connection_count(config) == 0  # never committed for real


@pytest.mark.isolation(level="transaction", schema="user_management")
def test_get_or_create_keeps_the_savepoint(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    UserFactory(email="kept@example.com")
    first = OrganizationFactory(slug="acme")
    again = OrganizationFactory(slug="acme")
    assert again is first
    assert session.scalar(select(func.count()).select_from(User)) == 1


@pytest.mark.isolation(level="database", schema="user_management")
def test_database_level_rows_are_visible_to_a_second_connection(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    UserFactory.create_batch(3)
    session.commit()
    assert other_connection_count(config) == 3


@pytest.mark.isolation(level="database", schema="user_management")
async def test_async_tests_use_factories_too(isolated_postgres):
    session, config = isolated_postgres
    UserFactory.create_batch(2)
    await session.commit()
    assert other_connection_count(config) == 2


@pytest.mark.parametrize("n", range(2))
@pytest.mark.isolation(level="transaction", schema="user_management")
async def test_async_factories_with_io_at_transaction_level(isolated_postgres, n):
    session, config = isolated_postgres
    user = await UserFactory.acreate()
    assert user.id is not None  # flushed: it has its id
    first = await OrganizationFactory.acreate(slug="acme")  # get-or-create queries
    again = await OrganizationFactory.acreate(slug="acme")
    assert again is first
    membership = await MembershipFactory.acreate(user=user, organization=first)
    assert membership.organization_id == first.id
    await UserFactory.acreate_batch(2)
    await session.commit()
    assert (await session.scalar(select(func.count()).select_from(User))) == 3
    assert (await session.scalar(select(func.count()).select_from(Organization))) == 1
    assert other_connection_count(config) == 0  # rolled back after the test


@pytest.mark.isolation(level="transaction", schema="user_management")
async def test_async_get_or_create_without_acreate_says_what_to_do(isolated_postgres):
    with pytest.raises(RuntimeError, match="use `await OrganizationFactory.acreate"):
        OrganizationFactory(slug="acme")
"""


def test_factories_follow_the_test_session(project: pytest.Pytester, run) -> None:  # type: ignore[no-untyped-def]
    project.makepyfile(test_factories_inside=FACTORY_TESTS)
    result = run("-n", "2")
    result.assert_outcomes(passed=9)


APP_SESSIONS = """
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import scoped_session, sessionmaker

Session = scoped_session(sessionmaker())
AsyncSession = async_sessionmaker()
"""

APP_SESSION_TESTS = """
import pytest
from sqlalchemy import text

import appdb

COUNT = text("SELECT count(*) FROM test_users")
INSERT = text("INSERT INTO test_users (email, full_name) VALUES ('a@example.com', 'A')")


@pytest.mark.isolation(level="transaction")
@pytest.mark.parametrize("n", range(2))
def test_sync(isolated_postgres_sync, n):
    session, _ = isolated_postgres_sync
    assert appdb.Session.execute(COUNT).scalar() == 0  # the app's SAVEPOINT, left open
    session.execute(INSERT)  # the test's, newer: ended when the app's is rolled back
    assert session.execute(COUNT).scalar() == 1


@pytest.mark.isolation(level="transaction")
@pytest.mark.parametrize("n", range(2))
async def test_async(isolated_postgres, n):
    session, _ = isolated_postgres
    async with appdb.AsyncSession() as app:
        assert (await app.execute(COUNT)).scalar() == 0
        await session.execute(INSERT)
        assert (await session.execute(COUNT)).scalar() == 1
        assert (await app.execute(COUNT)).scalar() == 1
"""


def test_app_sessions_older_savepoints_do_not_break_the_tests_teardown(  # type: ignore[no-untyped-def]
    project: pytest.Pytester, tool_options, run
) -> None:
    """At `transaction` level the app's sessions and the test's share one connection, each
    with SAVEPOINTs of its own; the app's are rolled back first, which ends any newer one of
    the test's. The test's connection is then rolled back as a whole, not savepoint by
    savepoint (that failed: `savepoint "sa_savepoint_2" does not exist`)."""
    tool_options('sessions = ["appdb:Session", "appdb:AsyncSession"]')
    project.makepyfile(appdb=APP_SESSIONS, test_app_sessions=APP_SESSION_TESTS)
    result = run()
    result.assert_outcomes(passed=4)  # rows rolled back: each run sees 0 before its insert
