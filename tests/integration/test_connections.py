"""What the speed of a `database` level test relies on, as behaviour: a session keeps one
connection through its commits; snapshots end that connection (and the app's pooled ones)
and everything reconnects; async setups on a fresh event loop per test reuse the process's
threads, so the admin connections (one per thread) do not grow with the number of tests."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import create_engine, text

from netra_isolation import follow_engine, with_isolated_postgres
from netra_isolation.handle import default_manager

PID = text("SELECT pg_backend_pid()")
INSERT = text("INSERT INTO test_users (email, full_name) VALUES (:e, 'U')")
COUNT = text("SELECT count(*) FROM test_users")


def test_a_sync_session_keeps_its_connection_through_commits() -> None:
    with with_isolated_postgres("test_one_connection_sync") as (session, _):
        before = session.execute(PID).scalar()
        session.execute(INSERT, {"e": "a@x.io"})
        session.commit()
        assert session.execute(PID).scalar() == before
        session.rollback()
        assert session.execute(PID).scalar() == before


async def test_an_async_session_keeps_its_connection_through_commits() -> None:
    async with with_isolated_postgres("test_one_connection_async") as (session, _):
        before = (await session.execute(PID)).scalar()
        await session.execute(INSERT, {"e": "a@x.io"})
        await session.commit()
        assert (await session.execute(PID)).scalar() == before


def test_session_and_the_apps_pooled_engine_reconnect_after_a_restore(tmp_path: Any) -> None:
    """The session's pooled connection and the app's are ended for the snapshot and the
    restore; both reconnect to the restored database without an error."""
    app_engine = follow_engine(create_engine("postgresql+psycopg://nobody@127.0.0.1:1/app"))
    try:
        with with_isolated_postgres("test_restore_pooled") as (session, config):
            session.execute(INSERT, {"e": "kept@x.io"})
            session.commit()
            with app_engine.connect() as app:  # a connection now pooled by the app's engine
                assert app.execute(COUNT).scalar() == 1
            snapshot = config.create_snapshot_sync("postgres", "one_row")
            session.execute(INSERT, {"e": "gone@x.io"})
            session.commit()
            with app_engine.connect() as app:
                assert app.execute(COUNT).scalar() == 2
            config.restore_snapshot_sync(snapshot)
            assert session.execute(COUNT).scalar() == 1
            with app_engine.connect() as app:
                assert app.execute(COUNT).scalar() == 1
    finally:
        app_engine.dispose()


def test_async_setups_on_fresh_loops_do_not_add_admin_connections() -> None:
    """pytest-asyncio gives each test a loop of its own; each loop's default executor would
    be a new thread, and each thread a new admin connection of the isolator's, left open."""

    async def one(i: int) -> None:
        async with with_isolated_postgres(f"test_fresh_loop_{i}") as (session, _):
            await session.execute(INSERT, {"e": f"{i}@x.io"})

    isolator = default_manager().postgres
    for i in range(20):
        asyncio.run(one(i))
    with isolator.server.connect() as admin:
        (held,) = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (isolator.admin_name,),
        ).fetchone()
    assert 1 <= held <= 10, held


async def test_an_async_test_may_use_the_sync_snapshot_forms() -> None:
    """The sync forms from an async test: the session's pooled connection on the test's loop
    is let go (the server ends it at the snapshot) and the session connects anew."""
    async with with_isolated_postgres("test_async_sync_snapshot") as (session, config):
        await session.execute(INSERT, {"e": "a@x.io"})
        await session.commit()  # its connection goes back to the pool, still open
        snapshot = config.create_snapshot_sync("postgres", "one")
        await session.execute(INSERT, {"e": "b@x.io"})
        await session.commit()
        config.restore_snapshot_sync(snapshot)
        assert (await session.execute(COUNT)).scalar() == 1


async def test_the_public_asyncpg_url_is_a_plain_one() -> None:
    """What `database_url` hands out connects with asyncpg itself, and carries nothing of the
    tool's own connection options (TLS off, the socket)."""
    import asyncpg

    async with with_isolated_postgres("test_public_url") as (_, config):
        url = config.isolator("postgres").database_url(config.test_id, "asyncpg")
        assert "ssl" not in url and "host=" not in url
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        try:
            assert await connection.fetchval("SELECT current_database()") == (
                config.databases["postgres"].name
            )
        finally:
            await connection.close()
