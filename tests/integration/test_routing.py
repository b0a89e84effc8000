"""Where the app's connections go while the tool routes them (`netra_isolation.routing`), on
the suite's real server, with a decoy where the app's configuration points: every engine of
the process (made before or after, sync or async, from any URL) lands on the database the
moment calls for, and the decoy sees nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from sqlalchemy import create_engine, engine_from_config, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool, QueuePool

from netra_isolation import ConfigurationError, PostgreSQLTestIsolator, Settings, routing

CURRENT = text("SELECT current_database()")


@pytest.fixture(autouse=True)
def _the_decoy_is_never_reached(decoy: Any) -> Iterator[None]:
    yield
    assert decoy.connections == 0  # nothing reached the app's configured database


@pytest.fixture(scope="module")
def server() -> Iterator[PostgreSQLTestIsolator]:
    isolator = PostgreSQLTestIsolator(Settings.load())
    yield isolator
    isolator.close()


@pytest.fixture
def scratch(server: PostgreSQLTestIsolator) -> Iterator[list[str]]:
    """Two databases of this test's own on the server (not the tool's): the targets."""
    names = [f"route_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    with server.server.connect() as conn:
        for name in names:
            conn.execute(f'CREATE DATABASE "{name}"')
    yield names
    with server.server.connect() as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def databases(server: PostgreSQLTestIsolator) -> set[str]:
    with server.server.connect() as conn:
        return {name for (name,) in conn.execute("SELECT datname FROM pg_database")}


@pytest.mark.parametrize("driver", ["psycopg", "psycopg2"])
def test_during_a_build_every_sync_engine_lands_on_the_template(
    server: PostgreSQLTestIsolator, scratch: list[str], decoy: Any, driver: str
) -> None:
    before = create_engine(decoy.url(driver))  # made before the build, as at import time
    with routing.building(server.server.url(scratch[0]), "template"):
        after = create_engine(decoy.url(driver))
        from_config = engine_from_config({"sqlalchemy.url": decoy.url(driver)})
        for engine in (before, after, from_config):
            with engine.connect() as conn:
                assert conn.scalar(CURRENT) == scratch[0]
            engine.dispose()


def test_during_a_build_an_async_engine_lands_on_the_template(
    server: PostgreSQLTestIsolator, scratch: list[str], decoy: Any
) -> None:
    async def where() -> str:
        engine = create_async_engine(decoy.url("asyncpg"))
        try:
            async with engine.connect() as conn:
                return str(await conn.scalar(CURRENT))
        finally:
            await engine.dispose()

    with routing.building(server.server.url(scratch[0]), "template"):
        assert asyncio.run(where()) == scratch[0]


def test_sqlalchemy_utils_creates_and_drops_nothing(
    server: PostgreSQLTestIsolator, scratch: list[str], decoy: Any
) -> None:
    sqlalchemy_utils = pytest.importorskip("sqlalchemy_utils")
    url = decoy.url(database="shop_dev")
    with routing.building(server.server.url(scratch[0]), "template"):
        if not sqlalchemy_utils.database_exists(url):
            sqlalchemy_utils.create_database(url)
        sqlalchemy_utils.drop_database(url)
    # the database the app names *is* the template: nothing made, the template not dropped
    found = databases(server)
    assert "shop_dev" not in found
    assert scratch[0] in found


def test_a_pooled_connection_follows_when_the_target_changes(
    server: PostgreSQLTestIsolator, scratch: list[str], decoy: Any
) -> None:
    engine = create_engine(decoy.url(), poolclass=QueuePool)
    first, second = (server.server.url(name) for name in scratch)
    with routing.test_target(routing.Target(first, "netra:test")), engine.connect() as conn:
        assert conn.scalar(CURRENT) == scratch[0]
    # the pooled connection went to the first: replaced
    with routing.test_target(routing.Target(second, "netra:test")), engine.connect() as conn:
        assert conn.scalar(CURRENT) == scratch[1]
    engine.dispose()


def test_a_connection_a_test_opened_is_replaced_once_the_test_ends(
    server: PostgreSQLTestIsolator, scratch: list[str], decoy: Any, request: pytest.FixtureRequest
) -> None:
    """Before the next checkout pings it (its database may be dropped, its loop gone), even
    when the next test's target is the same; one a wider fixture opened is kept."""
    engine = create_engine(decoy.url(), poolclass=QueuePool, pool_size=2, pool_pre_ping=True)
    target = routing.Target(server.server.url(scratch[0]), "netra:test")
    pid = text("SELECT pg_backend_pid()")
    try:
        with routing.test_target(target):
            routing.enter_shared(1)  # a module fixture's setup opens one
            shared = engine.connect()
            routing.enter_shared(-1)
            with engine.connect() as conn:  # the test's own
                tests = conn.scalar(pid)
            routing.enter_test("tests/test_next.py::test_next")  # the test ended
            with engine.connect() as conn:
                assert conn.scalar(pid) != tests  # a new connection, where the test is
                assert conn.scalar(CURRENT) == scratch[0]
            fixtures = shared.scalar(pid)
            shared.close()
            routing.enter_shared(1)  # the fixture's teardown: its connection is still pooled
            try:
                with engine.connect() as conn, engine.connect() as other:
                    assert fixtures in {conn.scalar(pid), other.scalar(pid)}
            finally:
                routing.enter_shared(-1)
    finally:
        routing.enter_test(request.node.nodeid)
        engine.dispose()


def test_a_refusal_lets_through_only_what_is_already_there(
    server: PostgreSQLTestIsolator, scratch: list[str], decoy: Any
) -> None:
    there = server.server.url(scratch[0])
    with routing.test_target(routing.Target(there, refusal="use level='database'")):
        engine = create_engine(there, poolclass=NullPool)  # the test's database by its URL
        with engine.connect() as conn:
            assert conn.scalar(CURRENT) == scratch[0]
        elsewhere = create_engine(decoy.url(), poolclass=NullPool)
        with pytest.raises(ConfigurationError, match="refused: use level='database'"):
            elsewhere.connect()


def test_a_connection_it_cannot_redirect_is_refused_before_use(
    server: PostgreSQLTestIsolator, scratch: list[str]
) -> None:
    """An engine made with creator= bypasses the redirect: where it landed is checked before
    SQLAlchemy runs anything on it, and it is closed."""
    other = server.server.url(scratch[1])
    dsn = other.set(drivername="postgresql").render_as_string(hide_password=False)
    made: list[psycopg.Connection] = []

    def creator() -> psycopg.Connection:
        made.append(psycopg.connect(dsn))
        return made[-1]

    engine = create_engine("postgresql+psycopg://", creator=creator, poolclass=NullPool)
    refused = pytest.raises(ConfigurationError, match=f"creator=.*{scratch[1]}.*template x")
    with routing.building(server.server.url(scratch[0]), "template x"), refused:
        engine.connect()
    assert made and made[0].closed


def test_outside_any_routing_connections_go_where_they_say(
    server: PostgreSQLTestIsolator, scratch: list[str]
) -> None:
    """The library outside pytest (no provider) and outside a context manager: as ever."""
    previous = routing.set_provider(None)
    try:
        engine = create_engine(server.server.url(scratch[1]), poolclass=NullPool)
        with engine.connect() as conn:
            assert conn.scalar(CURRENT) == scratch[1]
    finally:
        routing.set_provider(previous)
