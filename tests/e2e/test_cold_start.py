"""Every fixture kind from a cold start: a project whose templates do not exist yet on the
servers (a prefix of its own), under two workers, at both levels. The first test of each
template builds it while the other worker may be building the same or another one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings

# also on the machine's PostgreSQL 15 (scripts/test.sh): every fixture kind, both levels
pytestmark = pytest.mark.both_servers

ROOT = Path(__file__).resolve().parents[2]

EVERY_FIXTURE = """
import pytest
from sqlalchemy import text

# the original design's counts, written here, not read from the seeding code
USERS = {"minimal": 3, "analytics": 50, "performance": 100}


def pg_count(session, table):
    return session.execute(text(f"SELECT count(*) FROM {table}")).scalar()


@pytest.mark.parametrize("level", ["database", "transaction"])
@pytest.mark.parametrize("scenario", ["minimal", "analytics"])
def test_postgres_sync(request, scenario, level):
    request.node.add_marker(pytest.mark.isolation(
        schema="thread_messages", scenario=scenario, level=level))
    session, config = request.getfixturevalue("isolated_postgres_sync")
    assert pg_count(session, "users") == USERS[scenario]


@pytest.mark.isolation(schema="thread_messages", scenario="minimal", level="transaction")
async def test_postgres_async_transaction(isolated_postgres):
    session, config = isolated_postgres
    users = (await session.execute(text("SELECT count(*) FROM users"))).scalar()
    assert users == USERS["minimal"]


@pytest.mark.isolation(schema="thread_messages", scenario="analytics")
async def test_postgres_async(isolated_postgres):
    session, config = isolated_postgres
    assert (await session.execute(text("SELECT count(*) FROM users"))).scalar() == 50


@pytest.mark.isolation(clickhouse_schema="events", scenario="analytics")
async def test_clickhouse_async(isolated_clickhouse):
    client, name, config = isolated_clickhouse
    assert await client.count("events") == 2000


@pytest.mark.isolation(clickhouse_schema="events", scenario="analytics")
def test_clickhouse_sync(isolated_clickhouse_sync):
    client, name, config = isolated_clickhouse_sync
    assert client.count("events") == 2000


@pytest.mark.isolation(scenario="analytics")
async def test_full_stack(isolated_full_stack):
    env = isolated_full_stack
    users = (await env["postgres_session"].execute(text("SELECT count(*) FROM users"))).scalar()
    assert (users, await env["clickhouse_client"].count("events")) == (50, 2000)


@pytest.mark.isolation(scale=1)
async def test_performance(performance_test_config):
    env = performance_test_config
    users = (await env["postgres_session"].execute(text("SELECT count(*) FROM users"))).scalar()
    assert (users, await env["clickhouse_client"].count("events")) == (100, 500)
"""


@pytest.fixture
def cold_prefix() -> Iterator[str]:
    """A prefix no template on the servers has yet; its templates are dropped afterwards."""
    prefix = f"nicold{uuid4().hex[:6]}"
    yield prefix
    settings = Settings.load(root=ROOT).with_overrides(prefix=prefix)
    for kind in (PostgreSQLTestIsolator, ClickHouseTestIsolator):
        isolator = kind(settings)
        try:
            for name in isolator.templates():
                isolator.drop_template(name)
        finally:
            isolator.close()


def test_every_fixture_kind_from_a_cold_start(
    project: pytest.Pytester, tool_options, run, cold_prefix: str
) -> None:
    tool_options(f'prefix = "{cold_prefix}"')
    project.makepyfile(test_cold=EVERY_FIXTURE)
    result = run("-n", "2")
    result.assert_outcomes(passed=10)
    # five templates (PostgreSQL minimal, analytics, performance; ClickHouse analytics,
    # performance), each built here once, whichever worker asked first
    result.stdout.fnmatch_lines(["templates built 5, reused *; * left behind 0"])
