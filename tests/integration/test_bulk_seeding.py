"""Bulk seeding gives exactly the rows per-object seeding gives (issue 9).

Each scenario is built twice into the same migrated schema, from the same seed and from
emptied tables with their identities restarted: once with one factory `create()` a row
(`create_each`, the way the scenarios seeded before), once with one statement a table
(`bulk_create`, the way they seed now); every column of every row, the ids the scenario
returns and the sequences' next values are compared. Then the same on the other drivers'
path (INSERT .. RETURNING instead of psycopg's COPY), and `bulk_create`'s own rules (rows
looked up by get-or-create, None left to the column's default) against `create_each`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import create_engine, func, inspect, make_url, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from factories import MembershipFactory, MessageFactory, OrganizationFactory, UserFactory
from factories.scenarios import SCENARIOS, build
from netra_isolation.binding import abulk_create
from netra_isolation.errors import ConfigurationError
from netra_isolation.seed_data_manager import (
    bind_session,
    bulk_create,
    create_each,
    registry,
    reseed,
)

TABLES = ["organizations", "users", "memberships", "threads", "thread_participants", "messages"]

Dump = dict[str, list[tuple[Any, ...]]]


def tables(session: Session) -> list[str]:
    """The scenario tables the schema has (user_management has no threads or messages)."""
    found = inspect(session.connection())
    return [t for t in TABLES if found.has_table(t)]


def dump(session: Session) -> Dump:
    """Every row of every table, and where each identity's sequence stands."""
    rows = {
        t: [tuple(r) for r in session.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2"))]
        for t in tables(session)
    }
    rows["sequences"] = [
        tuple(session.execute(text(f"SELECT last_value, is_called FROM {t}_id_seq")).one())
        for t in tables(session)
        if t != "thread_participants"
    ]
    return rows


def restart(session: Session) -> None:
    """Empty tables, identities back at 1: the state a template's seeding starts from."""
    session.execute(text(f"TRUNCATE {', '.join(tables(session))} RESTART IDENTITY CASCADE"))
    session.expunge_all()


def seeded(session: Session, name: str, create: Callable[..., list[Any]]) -> tuple[Dump, Any]:
    restart(session)
    reseed(registry.get(name).seed)
    users = build(session, SCENARIOS[name], create=create)
    session.flush()
    return dump(session), [user.id for user in users]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.isolation(schema="thread_messages")
def test_bulk_seeding_gives_the_rows_per_object_seeding_gives(
    isolated_postgres_sync: Any, name: str
) -> None:
    session, _ = isolated_postgres_sync
    per_object = seeded(session, name, create_each)
    bulk = seeded(session, name, bulk_create)
    assert bulk == per_object
    rows, user_ids = bulk
    counts = SCENARIOS[name]
    assert [len(rows[t]) for t in ("users", "threads", "messages")] == [
        counts["users"],
        counts["threads"],
        counts["messages"],
    ]
    assert user_ids == list(range(1, counts["users"] + 1))


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg_async"])
@pytest.mark.isolation(schema="thread_messages")
def test_bulk_seeding_without_copy_gives_the_same_rows(
    isolated_postgres_sync: Any, driver: str
) -> None:
    """Drivers other than psycopg's sync one insert with INSERT .. RETURNING (async ones
    through `abulk_create`): the same rows as psycopg's per-object seeding."""
    session, config = isolated_postgres_sync
    per_object = seeded(session, "multi_user", create_each)
    session.commit()
    if driver.endswith("_async"):
        url = make_url(config.database_url()).set(drivername=f"postgresql+{driver}")

        async def bulk_async() -> tuple[Dump, Any]:
            engine = create_async_engine(url, poolclass=NullPool)
            try:
                async with AsyncSession(engine) as other:
                    with bind_session(other):
                        return await other.run_sync(seeded, "multi_user", bulk_create)
            finally:
                await engine.dispose()

        bulk = asyncio.run(bulk_async())
    else:
        with session_on(config, driver) as other:
            bulk = seeded(other, "multi_user", bulk_create)
    assert bulk == per_object


@contextmanager
def session_on(config: Any, driver: str) -> Iterator[Session]:
    """A session on the test's database through `driver`, the one factories write to."""
    url = make_url(config.database_url()).set(drivername=f"postgresql+{driver}")
    engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(engine) as session, bind_session(session):
            yield session
    finally:
        engine.dispose()


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
@pytest.mark.isolation(schema="user_management")
def test_get_or_create_keys_and_none_as_create_each_does(
    isolated_postgres_sync: Any, driver: str
) -> None:
    """Rows already there and repeats within the batch are looked up, not inserted; keys
    given keep theirs and the others draw from the identity; a None leaves the column to its
    default ('member'); what comes back carries ids and foreign keys."""
    _, config = isolated_postgres_sync

    def steps(create: Callable[..., list[Any]]) -> tuple[Dump, list[Any]]:
        with session_on(config, driver) as session:
            restart(session)
            reseed(7)
            acme = OrganizationFactory(slug="acme")  # one row already there
            orgs = create(OrganizationFactory, [{"slug": "acme"}, {}, {"slug": "b"}, {"slug": "b"}])
            users = create(UserFactory, [{}, {"id": 100}, {}])
            members = create(MembershipFactory, [{"user": u} for u in users], organization=orgs[2])
            create(MembershipFactory, 1, user=users[0], organization=orgs[1], role=None)
            session.flush()
            assert orgs[0].id == acme.id and orgs[2].id == orgs[3].id
            made = [o.id for o in orgs] + [(m.id, m.user_id, m.organization_id) for m in members]
            got = dump(session)
            session.commit()
            return got, made

    per_object, bulk = steps(create_each), steps(bulk_create)
    assert bulk == per_object
    assert [u[0] for u in bulk[0]["users"]] == [1, 2, 100]
    assert bulk[0]["memberships"][-1][3] == "member"


@pytest.mark.isolation(schema="thread_messages")
async def test_abulk_create_in_an_async_test(isolated_postgres: Any) -> None:
    session, _ = isolated_postgres
    users = await abulk_create(UserFactory, 2)
    thread = (await MessageFactory.acreate(author=await UserFactory.acreate())).thread
    messages = await abulk_create(MessageFactory, [{"author": u} for u in users], thread=thread)
    assert [m.thread_id for m in messages] == [thread.id, thread.id]
    got = await session.execute(text("SELECT user_id FROM messages WHERE id = :id"), {"id": 2})
    assert got.scalar_one() == users[0].id


@pytest.mark.isolation(schema="user_management")
def test_sql_expressions_are_refused(isolated_postgres_sync: Any) -> None:
    """create() takes `created_at=func.now()`; an INSERT of many rows cannot."""
    refused = r"created_at given as SQL expressions.*create_each"
    with pytest.raises(ConfigurationError, match=refused):
        bulk_create(UserFactory, 2, created_at=func.now())
