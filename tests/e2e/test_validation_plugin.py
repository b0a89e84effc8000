"""Validation as a gate, the run summary and its raw numbers, as a user's suite sees them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., pytest.RunResult]
SLOWEST = "slowest database setups (all tests: --netra-metrics-json):"


@pytest.mark.parametrize("switch", ["marker", "option"])
def test_validation_fails_the_test_with_report_and_diff(
    project: pytest.Pytester, run: Run, switch: str
) -> None:
    validate = ", validate=True" if switch == "marker" else ""
    project.makepyfile(
        test_gate=f"""
        import pytest
        from sqlalchemy import text

        pytestmark = pytest.mark.isolation(schema="thread_messages", scenario="minimal"{validate})

        def test_clean(isolated_postgres_sync):
            session, config = isolated_postgres_sync
            session.execute(text("UPDATE users SET full_name = 'Ok' WHERE id = 1"))
            session.commit()

        def test_breaks_integrity(isolated_postgres_sync):
            session, config = isolated_postgres_sync
            session.execute(text("SET session_replication_role = replica"))
            session.execute(text("DELETE FROM threads WHERE id = 1"))
            session.commit()
        """
    )
    result = run("--netra-validate") if switch == "option" else run()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*database state validation failed*",
            "*[[] failed[]] data.referential_integrity*messages(thread_id) -> threads*",
            "*changes since clean:*",
            "*postgres.threads: +0 -1 ~0*",
        ]
    )


def test_summary_and_metrics_json_match_the_run(
    project: pytest.Pytester, run: Run, tmp_path: Path
) -> None:
    project.makepyfile(
        test_counted="""
        import pytest

        @pytest.mark.parametrize("n", range(4))
        def test_pg(isolated_postgres_sync, n):
            pass

        @pytest.mark.parametrize("n", range(2))
        def test_ch(isolated_clickhouse_sync, n):
            pass

        async def test_snap(isolated_postgres):
            session, config = isolated_postgres
            sid = await config.create_snapshot("postgres", "s")
            await config.restore_snapshot(sid)
            info = config.get_database_info()["postgres"]
            assert info["snapshots"] == ["postgres:s"] and info["size_bytes"] > 0
        """
    )
    metrics_file = tmp_path / "metrics.json"
    result = run("--netra-metrics-json", str(metrics_file))
    result.assert_outcomes(passed=7)
    result.stdout.fnmatch_lines(
        ["*databases created 7, dropped 7, kept 0, left behind 0*", "clone * 7 *"]
    )
    data = json.loads(metrics_file.read_text())
    assert data["counters"]["databases_created"] == 7
    assert data["counters"]["snapshots_created"] == 1
    assert len(data["timings"]["clone"]) == 7
    assert len(data["timings"]["snapshot"]) == len(data["timings"]["restore"]) == 1
    assert data["summary"]["clone"]["count"] == 7
    assert len(data["sizes"]["postgres"]) == 5 and len(data["sizes"]["clickhouse"]) == 2
    snap = data["tests"]["test_counted.py::test_snap"]
    assert {"setup_s", "snapshot_s", "restore_s", "cleanup_s", "drop_s"} <= set(snap)
    assert snap["postgres_size_bytes"] > 0
    assert len(data["tests"]) == 7
    # the summary names the three tests whose databases took longest to set up
    slowest = sorted(data["tests"], key=lambda t: data["tests"][t]["setup_s"], reverse=True)
    listed = result.outlines[result.outlines.index(SLOWEST) + 1 :][:3]
    assert [line.split("ms  ", 1)[1] for line in listed] == slowest[:3]


@pytest.mark.parametrize(
    ("progress_after", "running"),
    [("1e9", False), ("0", True)],
    ids=["never-slow", "always-slow"],
)
@pytest.mark.parametrize("workers", [None, "2"], ids=["in-process", "xdist"])
def test_template_builds_show_progress(
    project: pytest.Pytester,
    run: Run,
    tool_options: Callable[[str], None],
    workers: str | None,
    progress_after: str,
    running: bool,
    throwaway_templates: Any,
) -> None:
    """Every template build ends with one line; one that runs longer than `progress_after`
    says so while it runs too. The setting makes the outcome certain whatever the machine's
    speed: no build outlasts 1e9 seconds, and every build outlasts 0."""
    marker = uuid.uuid4().hex[:8]  # scenarios of this run's own: their templates are new
    tool_options(f"progress_after = {progress_after}")
    project.makepyfile(
        test_progress=f"""
        import pytest
        from netra_isolation import scenario
        from factories import UserFactory

        @scenario("one_{marker}", seed=3)
        def one(session):
            UserFactory.create_batch(2)

        @scenario("two_{marker}", seed=3)
        def two(session):
            UserFactory.create_batch(3)

        @pytest.mark.isolation(schema="user_management", scenario="one_{marker}")
        def test_one(isolated_postgres_sync):
            pass

        @pytest.mark.isolation(schema="user_management", scenario="two_{marker}")
        def test_two(isolated_postgres_sync):
            pass
        """
    )
    settings = Settings.load(root=ROOT)
    lister = PostgreSQLTestIsolator(settings)
    try:
        result = run("-n", workers) if workers else run()
    finally:
        built = [t for t in lister.templates() if marker in t]
        lister.close()
        throwaway_templates(PostgreSQLTestIsolator, settings, *built)
    assert len(built) == 2
    result.assert_outcomes(passed=2)
    # From a worker the lines go to stderr, tagged with the worker's name.
    lines = [line for line in result.outlines + result.errlines if "netra-isolation: " in line]
    prefix = "[[]gw[0-9][]] " if workers else ""
    template = "netra-isolation: building template ni_tpl_user_management"
    for name in ("one", "two"):
        build = [line for line in lines if f"_{name}_{marker}" in line]
        expected = [f"{prefix}{template}_{name}_*: done in *s"]
        if running:
            expected.insert(0, f"{prefix}{template}_{name}_* ...")
        pytest.LineMatcher(build).fnmatch_lines(expected)
        assert len(build) == len(expected), build
    # the server start is not announced when it ends, only while it runs
    starts = [line for line in lines if "starting PostgreSQL" in line]
    if running:
        pytest.LineMatcher(starts).fnmatch_lines(
            [
                f"{prefix}netra-isolation: starting PostgreSQL ...",
                "*starting PostgreSQL: done in *s",
            ]
        )
    else:
        assert starts == []


def test_validation_gate_at_transaction_level_sees_the_tests_work(
    project: pytest.Pytester, run: Run
) -> None:
    """The test's damage is uncommitted (rolled back afterwards), so only its own connection
    shows it: a sync test fails in its call, an async one in its fixture's teardown, before the
    rollback; clean tests pass and the next test sees none of it."""
    project.makepyfile(
        test_tx_gate="""
        import pytest
        from sqlalchemy import text

        pytestmark = pytest.mark.isolation(
            level="transaction", schema="thread_messages", scenario="minimal", validate=True
        )
        ORPHAN = "DELETE FROM threads WHERE id = 1"

        def test_sync_clean(isolated_postgres_sync):
            isolated_postgres_sync[0].execute(text("UPDATE users SET full_name = 'A'"))

        def test_sync_breaks(isolated_postgres_sync):
            session = isolated_postgres_sync[0]
            session.execute(text("SET session_replication_role = replica"))
            session.execute(text(ORPHAN))

        async def test_async_clean(isolated_postgres):
            await isolated_postgres[0].execute(text("UPDATE users SET full_name = 'B'"))

        async def test_async_breaks(isolated_postgres):
            session = isolated_postgres[0]
            await session.execute(text("SET session_replication_role = replica"))
            await session.execute(text(ORPHAN))
            await session.commit()

        def test_rolled_back(isolated_postgres_sync):
            session = isolated_postgres_sync[0]
            assert session.scalar(text("SELECT count(*) FROM threads WHERE id = 1")) == 1
        """
    )
    result = run()
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_async_breaks*",
            "*database state validation failed*",
            "*data.referential_integrity*messages(thread_id) -> threads*",
            "*postgres.threads: +0 -1 ~0*",
            "*FAILED test_tx_gate.py::test_sync_breaks*",
        ]
    )
