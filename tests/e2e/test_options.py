"""How a user's suite configures the plugin: external servers, the report header, options,
`[tool.netra_isolation]`, and templates shared by xdist workers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]
Run = Callable[..., pytest.RunResult]

FULL_STACK = """
import pytest
from sqlalchemy import text

@pytest.mark.isolation(scenario="minimal")
async def test_both(isolated_full_stack):
    env = isolated_full_stack
    users = await env["postgres_session"].scalar(text("SELECT count(*) FROM users"))
    name = await env["postgres_session"].scalar(text("SELECT current_database()"))
    assert users == 3 and env["config"].test_id in name
    assert env["config"].test_id in env["clickhouse_database"]
"""


def test_external_servers_from_the_environment(
    project: pytest.Pytester, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CI service container, say: the TEST_* variables point at servers the tool did not
    start (here, the throwaway ones, reached as any external server is)."""
    settings = Settings.load(root=ROOT)
    pg, ch = PostgreSQLTestIsolator(settings), ClickHouseTestIsolator(settings)
    env = {
        "TEST_POSTGRES_HOST": pg.server.host,
        "TEST_POSTGRES_PORT": str(pg.server.port),
        "TEST_POSTGRES_USER": pg.server.user,
        "TEST_POSTGRES_PASSWORD": pg.server.password,
        "TEST_CLICKHOUSE_HOST": ch.server.host,
        "TEST_CLICKHOUSE_PORT": str(ch.server.http_port),
        "TEST_CLICKHOUSE_NATIVE_PORT": str(ch.server.native_port),
        "TEST_CLICKHOUSE_USER": ch.server.user,
        "TEST_CLICKHOUSE_PASSWORD": ch.server.password,
    }
    pg.close()
    ch.close()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    project.makepyfile(test_external=FULL_STACK)
    result = run()
    result.assert_outcomes(passed=1)
    host, port, http = (
        env["TEST_POSTGRES_HOST"],
        env["TEST_POSTGRES_PORT"],
        env["TEST_CLICKHOUSE_PORT"],
    )
    result.stdout.fnmatch_lines(
        [
            f"netra-isolation: postgres = {host}:{port} (from TEST_POSTGRES_HOST); "
            f"clickhouse = {host}:{http} (from TEST_CLICKHOUSE_HOST); level = database*",
            "*left behind 0*",
        ]
    )
    assert env["TEST_POSTGRES_PASSWORD"] not in result.stdout.str()


def test_header_names_where_the_level_came_from(
    project: pytest.Pytester, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    run().stdout.fnmatch_lines(
        [
            "*postgres = throwaway local server (TEST_POSTGRES_HOST not set)*"
            "level = database (from default)"
        ]
    )
    run("--netra-level", "transaction").stdout.fnmatch_lines(
        ["*level = transaction (from command line)"]
    )
    monkeypatch.setenv("NETRA_ISOLATION_LEVEL", "transaction")
    run().stdout.fnmatch_lines(["*level = transaction (from NETRA_ISOLATION_LEVEL)"])


def test_performance_scale_from_marker_and_option_at_both_levels(
    project: pytest.Pytester, run: Run
) -> None:
    project.makepyfile(
        test_scaled="""
        import pytest
        from sqlalchemy import text

        async def users(env):
            return await env["postgres_session"].scalar(text("SELECT count(*) FROM users"))

        @pytest.mark.parametrize("level", ["database", "transaction"])
        async def test_from_option(performance_test_config, level):
            assert performance_test_config["scale_factor"] == 2
            assert await users(performance_test_config) == 200

        @pytest.mark.isolation(level="transaction", scale=5)
        async def test_marker_wins(performance_test_config):
            assert await users(performance_test_config) == 500

        @pytest.mark.isolation(level="transaction", scale=2)
        async def test_same_worker_other_scale(performance_test_config):
            assert await users(performance_test_config) == 200
        """
    )
    run("--netra-performance-scale", "2").assert_outcomes(passed=4)


def test_scenarios_from_modules_named_in_pyproject(
    project: pytest.Pytester, run: Run, tool_options: Callable[[str], None]
) -> None:
    """`scenario_modules` imports a project's scenarios: a test names one it never imports."""
    tool_options('scenario_modules = ["factories.scenarios", "shop_scenarios"]')
    project.makepyfile(
        shop_scenarios="""
        from factories import UserFactory
        from netra_isolation import scenario

        @scenario("shop_owners", seed=11, counts={"users": 4})
        def shop_owners(session):
            UserFactory.create_batch(4)
        """,
        test_shop="""
        import pytest
        from sqlalchemy import text

        @pytest.mark.isolation(schema="user_management", scenario="shop_owners")
        def test_owners(isolated_postgres_sync):
            session, config = isolated_postgres_sync
            assert session.scalar(text("SELECT count(*) FROM users")) == 4
        """,
    )
    project.syspathinsert()
    run().assert_outcomes(passed=1)


def test_xdist_workers_build_a_template_once(
    project: pytest.Pytester, run: Run, tmp_path: Path, throwaway_templates: Any
) -> None:
    marker = uuid.uuid4().hex[:8]  # a template no run has built yet
    project.makepyfile(
        test_shared=f"""
        import time

        import pytest
        from factories import UserFactory
        from netra_isolation import scenario

        @scenario("s_{marker}", seed=5)
        def shared(session):
            time.sleep(0.5)  # both workers ask for it while it is being built
            UserFactory.create_batch(2)

        @pytest.mark.parametrize("n", range(6))
        @pytest.mark.isolation(schema="user_management", scenario="s_{marker}")
        def test_uses_it(isolated_postgres_sync, n):
            pass
        """
    )
    metrics = tmp_path / "metrics.json"
    settings = Settings.load(root=ROOT)
    lister = PostgreSQLTestIsolator(settings)
    try:
        run("-n", "2", "--netra-metrics-json", str(metrics)).assert_outcomes(passed=6)
    finally:
        built = [t for t in lister.templates() if marker in t]
        lister.close()
        throwaway_templates(PostgreSQLTestIsolator, settings, *built)
    assert len(built) == 1
    counters = json.loads(metrics.read_text())["counters"]
    assert counters["templates_built"] == 1
    assert counters["templates_reused"] == 1  # the other worker waited, then cloned it
    assert counters["databases_created"] == 6


def test_passwords_stay_out_of_every_output(
    project: pytest.Pytester, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The header, the summary, a kept database's line, a failed validation's report and diff,
    the metrics file, and the error of a wrong password never show a password."""
    settings = Settings.load(root=ROOT)
    pg = PostgreSQLTestIsolator(settings)
    password = pg.server.password
    env = {
        "TEST_POSTGRES_HOST": pg.server.host,
        "TEST_POSTGRES_PORT": str(pg.server.port),
        "TEST_POSTGRES_USER": pg.server.user,
        "TEST_POSTGRES_PASSWORD": password,
    }
    pg.close()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    project.makepyfile(
        test_secret="""
        import pytest
        from sqlalchemy import text

        def test_fails_and_is_kept(isolated_postgres_sync):
            session, config = isolated_postgres_sync
            assert "***" in str(config.get_database_info())
            assert False

        @pytest.mark.isolation(validate=True)
        def test_fails_validation(isolated_postgres_sync):
            session, config = isolated_postgres_sync
            session.execute(text("DROP TABLE test_users"))
            session.commit()
        """
    )
    metrics = tmp_path / "metrics.json"
    result = run("--netra-keep-failed", f"--netra-metrics-json={metrics}")
    result.assert_outcomes(failed=2)
    out = result.stdout.str() + result.stderr.str() + metrics.read_text()
    assert "kept for test_secret.py::test_fails_and_is_kept" in out
    assert "database state validation failed" in out
    assert password not in out
    kept = PostgreSQLTestIsolator(settings)
    for db in kept.owned():
        if db.owner.test.startswith("test_secret.py::"):
            kept.remove(db)
    kept.close()

    monkeypatch.setenv("TEST_POSTGRES_PASSWORD", password[::-1])
    wrong = run()
    wrong.assert_outcomes(errors=2)
    out = wrong.stdout.str() + wrong.stderr.str()
    assert "password authentication failed" in out
    assert password not in out and password[::-1] not in out
