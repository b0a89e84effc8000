"""Snapshots and reset-to-clean on both backends: rows, sequences and schema come back exactly,
and the session and client the test holds keep working."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from netra_isolation import (
    with_database_snapshots,
    with_isolated_clickhouse,
    with_isolated_postgres,
    with_isolated_postgres_sync,
)
from netra_isolation.errors import SnapshotError

# also on the machine's PostgreSQL 15 (scripts/test.sh): clones, snapshots, restores
pytestmark = pytest.mark.both_servers


async def state(session: Any) -> dict[str, Any]:
    rows = (
        await session.execute(text("SELECT id, email, full_name FROM test_users ORDER BY id"))
    ).all()
    columns = (
        (
            await session.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'test_users' ORDER BY ordinal_position"
                )
            )
        )
        .scalars()
        .all()
    )
    return {"rows": [tuple(r) for r in rows], "columns": list(columns)}


async def test_postgres_snapshot_restores_rows_sequences_and_schema() -> None:
    async with with_isolated_postgres("test_pg_snapshot") as (session, config):
        for i in range(3):
            await session.execute(
                text("INSERT INTO test_users (email, full_name) VALUES (:e, 'U')"),
                {"e": f"{i}@x.io"},
            )
        await session.commit()
        before = await state(session)
        snapshot_id = await config.create_snapshot("postgres", "after_setup")
        assert snapshot_id == "postgres:after_setup"
        # change everything: rows, the sequence, the schema
        await session.execute(text("DELETE FROM test_users WHERE email = '0@x.io'"))
        await session.execute(text("UPDATE test_users SET full_name = 'changed'"))
        await session.execute(
            text("INSERT INTO test_users (email, full_name) VALUES ('n@x.io', 'N')")
        )
        await session.execute(text("ALTER TABLE test_users ADD COLUMN extra int"))
        await session.commit()
        assert await state(session) != before
        await config.restore_snapshot(snapshot_id)
        assert await state(session) == before  # the same session object works afterwards
        new_id = (
            await session.execute(
                text(
                    "INSERT INTO test_users (email, full_name) VALUES ('z@x.io', 'Z') RETURNING id"
                )
            )
        ).scalar()
        assert new_id == 4  # the sequence is back where it was at the snapshot
        await session.commit()
        names = [config.snapshots.get(i).database for i in config.snapshots.ids()]
        admin = config.isolator("postgres").server.connect()
    left = admin.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (names,))
    assert left.fetchall() == []  # snapshots belong to the test and go with it
    admin.close()


async def test_clickhouse_snapshot_restores_rows_and_tables() -> None:
    async with with_isolated_clickhouse("test_ch_snapshot", "metrics") as (client, db, config):
        row = {"metric_name": "m", "value": 1.0, "tags": ["a=b"], "timestamp": datetime(2025, 5, 1)}
        await client.insert("metrics", [row, {**row, "value": 2.0}])
        snapshot_id = await config.create_snapshot("clickhouse", "two_rows")
        await client.insert("metrics", [{**row, "value": 3.0, "timestamp": datetime(2025, 6, 1)}])
        await client.execute("DROP TABLE metrics_hourly")
        await config.restore_snapshot(snapshot_id)
        assert await client.execute("SELECT value FROM metrics ORDER BY value") == [(1.0,), (2.0,)]
        assert await client.scalar("SELECT sum(samples) FROM metrics_hourly") == 2
        await client.insert("metrics", [{**row, "value": 9.0}])  # the client still works
        assert await client.count("metrics") == 3


async def test_reset_to_clean_state_after_heavy_changes() -> None:
    async with with_database_snapshots("test_reset", scenario="minimal") as env:
        session, client = env["postgres_session"], env["clickhouse_client"]
        await session.execute(text("DELETE FROM messages"))
        await session.execute(text("DROP TABLE thread_participants"))
        await session.execute(text("INSERT INTO organizations (name, slug) VALUES ('x', 'x')"))
        await session.commit()
        await client.insert(
            "events",
            [
                {
                    "event_id": uuid.uuid4(),
                    "user_id": 1,
                    "event_type": "t",
                    "properties": "{}",
                    "timestamp": datetime(2025, 1, 1),
                }
            ],
        )
        await env["reset_to_clean_state"]()
        counts = {
            t: (await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar()
            for t in ("users", "threads", "messages", "thread_participants", "organizations")
        }
        assert counts == {
            "users": 3,
            "threads": 2,
            "messages": 5,
            "thread_participants": 2,
            "organizations": 1,
        }
        assert await client.count("events") == 0  # minimal has no events


async def test_unknown_snapshot_lists_the_tests_snapshots() -> None:
    async with with_isolated_postgres("test_unknown_snapshot") as (session, config):
        await config.create_snapshot("postgres", "one")
        with pytest.raises(SnapshotError, match=r"no snapshot 'postgres:two'.*postgres:one"):
            await config.restore_snapshot("postgres:two")


async def test_snapshots_need_a_database_of_the_tests_own() -> None:
    """Refused at `transaction` level, before anything happens: no snapshot, and the test's
    uncommitted work is still in its session (giving back its connection would lose it)."""
    added = text("SELECT count(*) FROM test_users WHERE email = 'tx@x.io'")
    async with with_isolated_postgres("test_tx_snapshot", level="transaction") as (session, config):
        await session.execute(
            text("INSERT INTO test_users (email, full_name) VALUES ('tx@x.io', 'T')")
        )
        with pytest.raises(SnapshotError, match="level='database'"):
            await config.create_snapshot("postgres", "x")
        with pytest.raises(SnapshotError, match="level='database'"):
            await config.reset_to_clean_state()
        with pytest.raises(SnapshotError, match=r"no snapshot 'postgres:x'.*none yet"):
            await config.restore_snapshot("postgres:x")
        assert config.snapshots.ids() == []
        assert await session.scalar(added) == 1
    with with_isolated_postgres_sync("test_tx_snapshot_sync", level="transaction") as (
        sync_session,
        sync_config,
    ):
        sync_session.execute(
            text("INSERT INTO test_users (email, full_name) VALUES ('tx@x.io', 'T')")
        )
        with pytest.raises(SnapshotError, match="level='database'"):
            sync_config.create_snapshot_sync("postgres", "x")
        with pytest.raises(SnapshotError, match="level='database'"):
            sync_config.reset_to_clean_state_sync()
        assert sync_config.snapshots.ids() == []
        assert sync_session.scalar(added) == 1
