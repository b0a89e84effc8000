"""The original design's names keep working where the house moved: its import paths, the `_sync`
context managers, and its debugging snippet."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from netra_isolation import clickhouse_isolation, postgres_isolation
from netra_isolation.isolated_test_config import (
    IsolatedTestConfig,
    with_isolated_clickhouse_sync,
    with_isolated_postgres,
    with_isolated_postgres_sync,
)


def test_the_design_module_names_are_the_backends_classes() -> None:
    from netra_isolation.backends.clickhouse.isolator import ClickHouseTestIsolator
    from netra_isolation.backends.postgres.isolator import PostgreSQLTestIsolator

    assert postgres_isolation.PostgreSQLTestIsolator is PostgreSQLTestIsolator
    assert clickhouse_isolation.ClickHouseTestIsolator is ClickHouseTestIsolator


async def test_the_designs_debugging_snippet_reads_the_same_isolator() -> None:
    async with with_isolated_postgres("snippet", "basic") as (session, config):
        assert isinstance(session, AsyncSession) and isinstance(config, IsolatedTestConfig)
        # the original design's snippet, verbatim but for the test id; the handle's public
        # `isolator(backend)` is the README's way
        info = config._isolators["postgres"].get_connection_info(config.test_id)
        assert info == config.isolator("postgres").get_connection_info(config.test_id)
        assert info["database"] == config.databases["postgres"].name


def test_the_sync_names_give_sync_sessions_and_clients_and_clean_up() -> None:
    with with_isolated_postgres_sync("sync_names", "basic") as (session, config):
        assert isinstance(session, Session)
        session.execute(text("INSERT INTO test_users (email, full_name) VALUES ('a@b.c', 'A')"))
        session.commit()
        name = config.databases["postgres"].name
        isolator = config.isolator("postgres")
    config.manager.wait_for_drops()  # dropped after the block, off the test's clock
    assert name not in [db.name for db in isolator.owned()]
    with with_isolated_clickhouse_sync("sync_names_ch", "events") as (client, db_name, config):
        assert client.count("events") == 0 and db_name == config.databases["clickhouse"].name
