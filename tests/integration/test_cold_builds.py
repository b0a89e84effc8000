"""Cold starts: templates built from nothing, alone, together and in parallel, give the
same rows. Each build here uses a prefix of its own, so the servers hold no template of it
and every build is a first build (as on a fresh CI machine); the templates are dropped after."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import text

from netra_isolation import IsolatedTestConfig, Settings, TestDatabaseManager
from netra_isolation.isolated_test_config import with_database_snapshots

ROOT = Path(__file__).resolve().parents[2]
PG_TABLES = ["organizations", "users", "memberships", "threads", "thread_participants", "messages"]

Rows = dict[str, list[tuple[Any, ...]]]


@pytest.fixture
def cold() -> Iterator[Any]:
    """`cold()`: a manager whose templates do not exist yet on either server."""
    managers: list[TestDatabaseManager] = []

    def make() -> TestDatabaseManager:
        prefix = f"nicold{uuid4().hex[:6]}"
        manager = TestDatabaseManager(Settings.load(root=ROOT).with_overrides(prefix=prefix))
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        templates = {b: manager.isolator(b).templates() for b in ("postgres", "clickhouse")}
        assert manager.finish() == 0
        for backend, names in templates.items():
            isolator = manager.isolator(backend)
            for name in names:
                isolator.drop_template(name)
            isolator.close()


def pg_rows(config: IsolatedTestConfig) -> Rows:
    with config.postgres_session_sync() as session:
        return {
            t: [tuple(r) for r in session.execute(text(f"SELECT * FROM {t} ORDER BY 1, 2"))]
            for t in PG_TABLES
        }


def ch_rows(config: IsolatedTestConfig) -> Rows:
    client = config.clickhouse_client_sync()
    return {"events": sorted(client.execute("SELECT * FROM events"), key=repr)}


def built(config: IsolatedTestConfig) -> dict[str, bool]:
    return {b: config.databases[b].template.built for b in ("postgres", "clickhouse")}


def serial(manager: TestDatabaseManager, scenario: str) -> Rows:
    """The scenario's templates built one after the other, in this thread."""
    config = IsolatedTestConfig(f"serial_{scenario}", manager=manager)
    try:
        config.setup_sync("postgres", "thread_messages", scenario)
        config.setup_sync("clickhouse", "events", scenario)
        assert built(config) == {"postgres": True, "clickhouse": True}
        return {**pg_rows(config), **ch_rows(config)}
    finally:
        config.cleanup_databases_sync()


async def full_stack(manager: TestDatabaseManager, scenario: str) -> Rows:
    """The scenario's two templates built at once, as `isolated_full_stack` builds them."""
    async with with_database_snapshots(
        f"together_{scenario}", "thread_messages", "events", scenario, manager=manager
    ) as env:
        config = env["config"]
        assert built(config) == {"postgres": True, "clickhouse": True}
        return await asyncio.to_thread(lambda: {**pg_rows(config), **ch_rows(config)})


@pytest.mark.both_servers
def test_full_stack_templates_built_together_match_a_serial_build(cold: Any) -> None:
    expected = serial(cold(), "analytics")
    assert len(expected["users"]) == 50 and len(expected["events"]) == 2000
    for _ in range(3):
        assert asyncio.run(full_stack(cold(), "analytics")) == expected


def test_two_scenarios_built_at_once_match_their_serial_builds(cold: Any) -> None:
    expected = {name: serial(cold(), name) for name in ("analytics", "multi_user")}

    async def both() -> list[Rows]:
        manager = cold()
        return list(await asyncio.gather(*(full_stack(manager, n) for n in expected)))

    assert dict(zip(expected, asyncio.run(both()), strict=True)) == expected
