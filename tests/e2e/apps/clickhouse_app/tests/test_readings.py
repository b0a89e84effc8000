"""The metrics app's own tests: a ClickHouse database of each test's own, migrated by the
app's Alembic tree, and a scenario of the app's seeded into its template."""

import pytest
from metrics_app import readings

import netra_isolation


def three_readings(user_ids):
    rows = [{"id": i, "sensor": "seed", "value": i / 2} for i in range(1, 4)]
    return {"readings": rows, "audit_log": [{"message": "seeded"}]}


@netra_isolation.scenario("three_readings", seed=5, clickhouse=three_readings)
def three_readings_postgres(session):
    """ClickHouse only: nothing for PostgreSQL."""


@pytest.mark.parametrize("n", range(3))
def test_sync_sees_only_its_own_rows(isolated_clickhouse_sync, n):
    client, db_name, config = isolated_clickhouse_sync
    assert client.scalar("SELECT currentDatabase()") == db_name
    assert client.count("readings") == 0
    readings.record(client, "mine", [1.0, 2.0, 3.5])
    assert client.count("readings") == 3
    assert client.scalar("SELECT sum(value) FROM readings") == 6.5
    assert client.execute("SELECT message FROM audit_log") == [("3 readings from mine",)]


@pytest.mark.parametrize("n", range(3))
async def test_async_sees_only_its_own_rows(isolated_clickhouse, n):
    client, db_name, config = isolated_clickhouse
    await client.insert("readings", [{"id": n, "sensor": "async", "value": 1.0}])
    await client.insert("audit_log", [{"message": "one"}])
    assert await client.count("readings") == 1
    assert await client.count("audit_log") == 1


@pytest.mark.parametrize("n", range(2))
@pytest.mark.isolation(scenario="three_readings")
def test_the_scenario_is_in_the_template(isolated_clickhouse_sync, n):
    client, _, _ = isolated_clickhouse_sync
    assert client.count("readings") == 3
    assert client.execute("SELECT sensor, count() FROM readings GROUP BY sensor") == [("seed", 3)]
    readings.record(client, "mine", [9.0])
    assert client.count("readings") == 4
    assert client.count("audit_log") == 2


def test_the_version_table_is_at_head(isolated_clickhouse_sync):
    client, _, _ = isolated_clickhouse_sync
    versions = {row[0] for row in client.execute("SELECT version_num FROM alembic_version")}
    assert versions == {"m0002"}
