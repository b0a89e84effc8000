"""A ClickHouse project (tests/e2e/apps/clickhouse_app): an alembic.ini with only a
[clickhouse] section, its own env.py and two linear revisions (a MergeTree table, then a Log
table), tests on `isolated_clickhouse_sync` and `isolated_clickhouse`, and a ClickHouse
scenario of its own seeded into the template. It imports only `netra_isolation` itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from netra_isolation import ClickHouseTestIsolator

ROOT = Path(__file__).resolve().parents[2]
APP = "clickhouse_app"
BACKEND = "clickhouse"


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_clickhouse_app_migrates_seeds_and_isolates(
    run_app: Any, app: pytest.Pytester, app_templates: ClickHouseTestIsolator, workers: list[str]
) -> None:
    result = run_app(*workers)
    result.assert_outcomes(passed=9)
    assert len(app_templates.templates()) == 2  # at head, and with the scenario
