"""After a run is killed, the next ordinary run cleans up what it left: no gc by hand."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]

KILLED = """
import os, signal

def test_killed_mid_test(isolated_postgres_sync, isolated_clickhouse_sync):
    os.kill(os.getpid(), signal.SIGKILL)  # as a CI job timeout or an OOM kill would
"""

NEXT = """
def test_ordinary(isolated_postgres_sync):
    pass
"""


def test_the_next_run_removes_what_a_killed_run_left(
    project: pytest.Pytester, run, tool_options
) -> None:
    prefix = f"nikill{uuid.uuid4().hex[:6]}"
    tool_options(f'prefix = "{prefix}"\nlease_seconds = 2')
    settings = Settings.load(root=ROOT).with_overrides(prefix=prefix, lease_seconds=2.0)
    isolators = [PostgreSQLTestIsolator(settings), ClickHouseTestIsolator(settings)]
    isolators[0].clean_on_start = isolators[1].clean_on_start = False  # look, do not touch
    try:
        project.makepyfile(test_killed=KILLED)
        run()  # the process dies mid-test: no teardown, no session end
        left = [[db.name for db in isolator.owned()] for isolator in isolators]
        assert [len(names) > 0 for names in left] == [True, True]  # on each backend
        time.sleep(3)  # the killed run's ClickHouse lease lapses (its PostgreSQL one at once)
        (project.path / "test_killed.py").unlink()
        project.makepyfile(test_next=NEXT)
        result = run()
        result.assert_outcomes(passed=1)
        # the test's database, and a copy made ahead for the next test
        removed = len(left[0])
        result.stdout.fnmatch_lines([f"removed {removed} database* left by * over"])
        assert [db.name for db in isolators[0].owned()] == []
        ch = ClickHouseTestIsolator(settings)  # the next run to use ClickHouse cleans there
        ch.create_isolated_database_sync("t_next")
        assert [db.name for db in ch.owned()] == [ch.database("t_next").name]
        ch.cleanup_all_sync()
        ch.close()
    finally:
        for isolator in isolators:
            for name in isolator.templates():
                isolator.drop_template(name)
            for db in isolator.owned():
                isolator.remove(db)
            isolator.close()
