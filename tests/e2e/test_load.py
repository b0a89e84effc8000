"""Load: 2,000 tests under `-n 4` (more workers than this machine has cores), both levels and
both backends, every test writing the same row as every other (a unique email, a fixed id):
all pass, nothing is left on the servers, and the setup time of the first and the last few
hundred tests is printed side by side (a flat line; printed, never asserted).

The heaviest test of the suite (about a minute here); `make test` runs it."""

from __future__ import annotations

import json
import statistics
import uuid
from pathlib import Path

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]
EACH = 500  # tests of each kind: four kinds

TESTS = f"""
import pytest
from sqlalchemy import text

INSERT = text("INSERT INTO test_users (email, full_name) VALUES ('same@example.com', 'S')")
COUNT = text("SELECT count(*) FROM test_users WHERE email = 'same@example.com'")


LEVELS = [
    pytest.param(level, n, marks=pytest.mark.isolation(level=level), id=f"{{level}}-{{n}}")
    for level in ("database", "transaction")
    for n in range({EACH})
]


@pytest.mark.parametrize("level, n", LEVELS)
def test_postgres(isolated_postgres_sync, level, n):
    session, config = isolated_postgres_sync
    assert config.level == level
    session.execute(INSERT)
    session.commit()
    assert session.execute(COUNT).scalar() == 1


@pytest.mark.isolation(level="transaction")
@pytest.mark.parametrize("n", range({EACH}))
async def test_transaction_level_async(isolated_postgres, n):
    session, _ = isolated_postgres
    await session.execute(INSERT)
    await session.commit()
    assert (await session.execute(COUNT)).scalar() == 1


@pytest.mark.parametrize("n", range({EACH}))
def test_clickhouse(isolated_clickhouse_sync, n):
    client, _, _ = isolated_clickhouse_sync
    client.insert("test_records", [{{"id": 1, "name": "same"}}])
    assert client.count("test_records") == 1
"""


def medians(setups: list[float], size: int) -> tuple[float, float]:
    return statistics.median(setups[:size]) * 1000, statistics.median(setups[-size:]) * 1000


def test_2000_colliding_tests_under_4_workers_pass_and_leave_nothing(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = f"load{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", prefix)
    project.makepyfile(test_load=TESTS)
    metrics = project.path / "metrics.json"
    result = project.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "4", "-q", f"--netra-metrics-json={metrics}", timeout=900
    )
    result.assert_outcomes(passed=4 * EACH)
    settings = Settings.load(root=ROOT).with_overrides(prefix=prefix)
    for kind in (PostgreSQLTestIsolator, ClickHouseTestIsolator):
        isolator = kind(settings)
        isolator.clean_on_start = False  # look, do not clean
        assert isolator.owned() == []  # no test database of the run is left
        for name in isolator.templates():
            isolator.drop_template(name)
        isolator.close()
    tests = json.loads(metrics.read_text())["tests"]
    kinds = {
        "database level": "test_postgres[database-{}]",
        "transaction level": "test_postgres[transaction-{}]",
        "transaction level, async": "test_transaction_level_async[{}]",
        "clickhouse": "test_clickhouse[{}]",
    }
    for kind, test in kinds.items():
        nodeids = [f"test_load.py::{test.format(n)}" for n in range(EACH)]
        setups = [tests[i]["setup_s"] for i in nodeids if "setup_s" in tests.get(i, {})]
        first, last = medians(setups, 150)
        print(f"{kind:<26} setup median, first 150: {first:7.2f} ms, last 150: {last:7.2f} ms")
