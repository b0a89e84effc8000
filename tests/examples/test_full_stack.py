import uuid
from datetime import datetime

import pytest
from sqlalchemy import text

from netra_isolation import with_isolated_clickhouse


@pytest.mark.asyncio
@pytest.mark.isolation(scenario="analytics")
async def test_analytics_workflow(isolated_full_stack):
    env = isolated_full_stack
    pg_session = env["postgres_session"]
    ch_client = env["clickhouse_client"]
    ch_database = env["clickhouse_database"]

    # Both databases are isolated and seeded with the same scenario
    users = (await pg_session.execute(text("SELECT count(*) FROM users"))).scalar()
    events = await ch_client.count("events")
    assert (users, events) == (50, 2000)

    # Every event belongs to a PostgreSQL user
    user_ids = set((await pg_session.execute(text("SELECT id FROM users"))).scalars())
    event_users = {row[0] for row in await ch_client.execute("SELECT DISTINCT user_id FROM events")}
    assert event_users <= user_ids
    assert env["config"].test_id in ch_database


async def test_clickhouse_context_manager():
    async with with_isolated_clickhouse("test_name", "events") as (client, db_name, config):
        rows = [
            {
                "event_id": uuid.uuid4(),
                "user_id": i % 7,
                "event_type": "page_view",
                "properties": "{}",
                "timestamp": datetime(2025, 6, 1, 12, 0),
            }
            for i in range(5000)
        ]
        await client.insert("events", rows)  # one batch, not 5000 statements
        assert await client.scalar("SELECT count() FROM events") == 5000
        assert config.test_id in db_name


def test_clickhouse_in_a_sync_test(isolated_clickhouse_sync):
    client, db_name, config = isolated_clickhouse_sync
    client.insert("test_records", [{"id": 1, "name": "only mine"}])
    assert client.execute("SELECT name FROM test_records") == [("only mine",)]
