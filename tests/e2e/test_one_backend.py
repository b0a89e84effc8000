"""One backend is enough: a PostgreSQL-only project (the stock `alembic init` app) never needs
a ClickHouse section, server or binaries, and a ClickHouse-only project no PostgreSQL ones.
Each runs in a fresh directory, as its user would: pytest and the CLI in subprocesses, on the
suite's servers (its cache dir) under a prefix of the test's own."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]
APP = Path(__file__).parent / "apps" / "stock_app"
EXTERNAL = [
    f"TEST_{backend}_{part}"
    for backend in ("POSTGRES", "CLICKHOUSE")
    for part in ("URL", "HOST", "PORT", "NATIVE_PORT", "USER", "PASSWORD", "DB")
]
CLICKHOUSE_TEST = """
def test_wants_clickhouse(isolated_clickhouse_sync):
    pass


def test_wants_both(isolated_full_stack):
    pass
"""


@pytest.fixture
def prefix() -> str:
    return f"nione{uuid.uuid4().hex[:6]}"


@pytest.fixture
def suite_env(
    pytester: pytest.Pytester, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The suite's servers (its cache dir), a prefix of this test's own and no external
    server: what the project's subprocesses run with."""
    settings = Settings.load(root=ROOT)
    for name in EXTERNAL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", prefix)
    return dict(os.environ)


@pytest.fixture
def postgres_only(pytester: pytest.Pytester, suite_env: dict[str, str]) -> Iterator[Path]:
    """The stock app copied into a fresh directory; its templates are dropped afterwards."""
    shutil.copytree(APP, pytester.path, dirs_exist_ok=True)
    yield pytester.path
    settings = Settings.load(root=pytester.path)
    isolator = PostgreSQLTestIsolator(settings)
    try:
        for name in isolator.templates():
            isolator.drop_template(name)
    finally:
        isolator.close()


def cli(directory: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    """`netra-isolation ARGS` run in `directory`; its exit code and its whole output."""
    done = subprocess.run(
        [sys.executable, "-m", "netra_isolation.cli", *args],
        cwd=directory,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done.returncode, done.stdout + done.stderr


def run_pytest(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=180)


def test_a_postgres_only_project_runs_alone(
    pytester: pytest.Pytester, postgres_only: Path, prefix: str
) -> None:
    result = run_pytest(pytester)
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(
        [
            # the server, if it runs already: what it is ("...: PostgreSQL 18.1 (...), copy
            # method: ...")
            "netra-isolation: postgres = throwaway local server (TEST_POSTGRES_HOST not set)*; "
            "level = database (from default)",
            "*- netra-isolation -*",
            "templates built 2, reused 0; *left behind 0",  # its migrations; a MetaData
        ]
    )
    assert "clickhouse" not in ours(result)

    # the CLI in the project's directory: its templates, its one server
    for args, said in [
        (["servers", "status"], "postgres: running on "),
        (["gc"], "0 orphaned database(s)"),
        (["gc", "--dry-run"], "0 orphaned database(s)"),
        (["gc", "--templates"], "postgres: 0 template(s) dropped, 2 kept"),
        (["gc", "--all-templates", "--dry-run"], "postgres: 2 template(s) to drop, 0 kept"),
    ]:
        code, out = cli(postgres_only, *args)
        assert code == 0, out
        assert said in out
        assert "clickhouse" not in out.lower(), out
    assert len(PostgreSQLTestIsolator(Settings.load(root=postgres_only)).templates()) == 2


def test_gc_dry_run_starts_no_server(
    pytester: pytest.Pytester, postgres_only: Path, tmp_path: Path
) -> None:
    """With a fresh cache dir no throwaway server runs: a dry run says there is nothing to
    collect and starts none (no state file, no process), of either backend."""
    cache = tmp_path / "fresh-cache"
    env = dict(os.environ, NETRA_ISOLATION_CACHE_DIR=str(cache))
    for args in (["gc", "--dry-run"], ["gc", "--templates", "--dry-run"]):
        code, out = cli(postgres_only, *args, env=env)
        assert code == 0, out
        assert "postgres: throwaway server not running: nothing of it to collect" in out
        assert "clickhouse" not in out.lower(), out
    assert not cache.exists() or list(cache.rglob("*")) == []
    assert not any(str(cache) in cmdline for cmdline in _command_lines())
    code, out = cli(postgres_only, "servers", "status", env=env)
    assert code == 3 and "postgres: not running" in out and "clickhouse" not in out.lower()


def test_asking_a_postgres_only_project_for_clickhouse_says_what_to_add(
    pytester: pytest.Pytester, postgres_only: Path
) -> None:
    pytester.makepyfile(test_wants_clickhouse=CLICKHOUSE_TEST)
    result = run_pytest(pytester, "test_wants_clickhouse.py")
    result.assert_outcomes(errors=2)
    out = result.stdout.str()
    # each test's error, the full stack's too (its PostgreSQL half built fine), in the error
    # sections; the short summary repeats each message, in full when CI is set
    assert (
        out.split("short test summary info")[0].count(
            "ConfigurationError: this project does not use ClickHouse"
        )
        == 2
    )
    assert "add a [clickhouse] section with script_location" in out
    assert 'clickhouse_section = "..." in [tool.netra_isolation]' in out


def test_a_clickhouse_only_project_runs_alone(
    pytester: pytest.Pytester, suite_env: dict[str, str]
) -> None:
    (pytester.path / "alembic.ini").write_text(
        f"[clickhouse]\nscript_location = {ROOT / 'migrations' / 'clickhouse'}\n"
        # the migrations' env.py imports this repository's demo models
        f"prepend_sys_path = {ROOT}\npath_separator = os\nsqlalchemy.url =\n"
    )
    pytester.makepyprojecttoml('[tool.netra_isolation]\nclickhouse_schema = "basic"\n')
    pytester.makepyfile(
        test_events="""
        def test_events_are_its_own(isolated_clickhouse_sync):
            client, database, config = isolated_clickhouse_sync
            assert "_test_events_" in database
            client.execute("CREATE TABLE t (x UInt8) ENGINE = Memory")
            client.insert("t", [{"x": 1}])
            assert client.scalar(f"SELECT count() FROM {database}.t") == 1
        """
    )
    try:
        result = run_pytest(pytester)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            ["netra-isolation: clickhouse = throwaway local server (*); level = database*"]
        )
        assert "postgres" not in ours(result)
        code, out = cli(pytester.path, "gc", "--templates", "--dry-run")
        assert code == 0 and "clickhouse: 0 template(s) to drop, 1 kept" in out, out
        assert "postgres" not in out.lower(), out
    finally:
        isolator = ClickHouseTestIsolator(Settings.load(root=pytester.path))
        try:
            for name in isolator.templates():
                isolator.drop_template(name)
        finally:
            isolator.close()


def ours(result: pytest.RunResult) -> str:
    """What netra-isolation printed (its header line, its end-of-run summary, its progress
    and errors), lower-cased; not pytest's own lines, which name plugins and directories."""
    out = result.stdout.str()
    header = [line for line in out.splitlines() if line.startswith("netra-isolation")]
    return "\n".join([*header, out.partition(" netra-isolation ")[2]]).lower()


def _command_lines() -> list[str]:
    lines = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return lines
