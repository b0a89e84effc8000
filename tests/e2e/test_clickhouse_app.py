"""A ClickHouse project (tests/e2e/apps/clickhouse_app): an alembic.ini with only a
[clickhouse] section, its own env.py and two linear revisions (a MergeTree table, then a Log
table), tests on `isolated_clickhouse_sync` and `isolated_clickhouse`, and a ClickHouse
scenario of its own seeded into the template. It imports only `netra_isolation` itself."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netra_isolation import ClickHouseTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).parent / "apps" / "clickhouse_app"


@pytest.fixture
def app_templates() -> Iterator[ClickHouseTestIsolator]:
    """The app's templates: a prefix of their own, so they are built here and dropped after."""
    settings = Settings.load(root=ROOT).with_overrides(prefix=f"nimet{uuid.uuid4().hex[:6]}")
    isolator = ClickHouseTestIsolator(settings)
    yield isolator
    try:
        for name in isolator.templates():
            isolator.drop_template(name)
    finally:
        isolator.close()


@pytest.fixture
def app(pytester: pytest.Pytester, app_templates: ClickHouseTestIsolator) -> pytest.Pytester:
    shutil.copytree(APP, pytester.path, dirs_exist_ok=True)
    settings = app_templates.settings
    pytester._monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(settings.cache_dir))
    pytester._monkeypatch.setenv("NETRA_ISOLATION_PREFIX", settings.prefix)
    return pytester


def run(app: pytest.Pytester, *args: str) -> pytest.RunResult:
    return app.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_clickhouse_app_migrates_seeds_and_isolates(
    app: pytest.Pytester, app_templates: ClickHouseTestIsolator, workers: list[str]
) -> None:
    result = run(app, *workers)
    result.assert_outcomes(passed=9)
    assert len(app_templates.templates()) == 2  # at head, and with the scenario
