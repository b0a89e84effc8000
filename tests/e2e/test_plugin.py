"""The plugin as a user meets it: a separate pytest run over a small suite."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SAME_EMAIL = """
from sqlalchemy import text

async def test_{name}(isolated_postgres):
    session, config = isolated_postgres
    await session.execute(text(
        "INSERT INTO test_users (email, full_name) VALUES ('same@example.com', '{name}')"))
    await session.commit()
    rows = (await session.execute(text("SELECT full_name FROM test_users"))).scalars().all()
    assert rows == ["{name}"]
"""


@pytest.mark.parametrize("order", [("first", "second"), ("second", "first")])
def test_same_unique_email_in_two_tests_both_pass(
    project: pytest.Pytester, run, order: tuple[str, str]
) -> None:
    project.makepyfile(test_emails="\n".join(SAME_EMAIL.format(name=name) for name in order))
    run().assert_outcomes(passed=2)


def test_same_unique_email_under_xdist(project: pytest.Pytester, run) -> None:
    project.makepyfile(test_emails="\n".join(SAME_EMAIL.format(name=f"w{i}") for i in range(6)))
    result = run("-n", "2")
    result.assert_outcomes(passed=6)
    # the controller sums the workers' numbers: six clones, none left behind
    result.stdout.fnmatch_lines(["*databases created 6, dropped 6, kept 0, left behind 0*"])


@pytest.mark.both_servers
def test_transaction_level_rolls_back_between_tests(project: pytest.Pytester, run) -> None:
    project.makepyfile(
        test_tx="""
        import pytest
        from sqlalchemy import text

        pytestmark = pytest.mark.isolation(level="transaction")

        @pytest.mark.parametrize("n", range(4))
        async def test_insert(isolated_postgres, n):
            session, config = isolated_postgres
            await session.execute(text(
                "INSERT INTO test_users (email, full_name) VALUES ('t@example.com', 'T')"))
            await session.commit()
            assert (await session.execute(text("SELECT count(*) FROM test_users"))).scalar() == 1

        def test_sync_too(isolated_postgres_sync):
            session, config = isolated_postgres_sync
            session.execute(text(
                "INSERT INTO test_users (email, full_name) VALUES ('t@example.com', 'T')"))
            session.commit()
            assert session.execute(text("SELECT count(*) FROM test_users")).scalar() == 1
        """
    )
    result = run("-n", "2")
    result.assert_outcomes(passed=5)
    # one clone per worker, not one per test
    result.stdout.fnmatch_lines(["*databases created 2,*left behind 0*"])


def test_marker_typo_fails_clearly(project: pytest.Pytester, run) -> None:
    project.makepyfile(
        test_typo="""
        import pytest

        @pytest.mark.isolation(levle="transaction")
        def test_a(isolated_postgres_sync):
            pass

        @pytest.mark.isolation(level="table")
        def test_b(isolated_postgres_sync):
            pass

        @pytest.mark.isolation(schema="user_managment")
        def test_c(isolated_postgres_sync):
            pass
        """
    )
    result = run()
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*bad @pytest.mark.isolation on test_typo.py::test_a*unexpected keyword*levle*",
            "*bad @pytest.mark.isolation on test_typo.py::test_b*level='table'*",
            "*unknown postgres schema type 'user_managment'*'thread_messages'*",
        ]
    )
    out = result.stdout.str()  # the message alone, not the TypeError it replaces
    assert "During handling of the above exception" not in out
    assert "TypeError: isolation()" not in out


def test_failed_test_database_is_kept_when_asked(project: pytest.Pytester, run) -> None:
    project.makepyfile(
        test_fail="""
        def test_broken(isolated_postgres_sync):
            assert False
        """
    )
    result = run("--netra-keep-failed")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*kept 1*", "kept for test_fail.py::test_broken: postgresql+psycopg://*"]
    )
    line = next(line for line in result.outlines if line.startswith("kept for"))
    assert "***" in line  # the password is masked
    from netra_isolation import PostgreSQLTestIsolator, Settings

    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    kept = [db for db in isolator.owned() if db.owner.test == "test_fail.py::test_broken"]
    assert len(kept) == 1 and kept[0].owner.kept  # tagged: no later run's cleanup takes it
    for db in kept:
        isolator.drop(db)
    isolator.close()


def test_keep_failed_keeps_only_the_failed_tests_databases(project: pytest.Pytester, run) -> None:
    """One run, a failing and a passing test on each backend: only the failing ones' databases
    outlive the run."""
    import json
    import uuid

    from netra_isolation import ClickHouseTestIsolator, PostgreSQLTestIsolator, Settings

    module = f"test_keep_{uuid.uuid4().hex[:8]}"  # its nodeids are this run's alone
    project.makepyfile(
        **{
            module: """
            import json
            from pathlib import Path

            def record(test, backend, name):
                with Path(__file__).with_name("names.jsonl").open("a") as out:
                    out.write(json.dumps([test, backend, name]) + "\\n")

            def test_pg_fails(isolated_postgres_sync):
                config = isolated_postgres_sync[1]
                record("test_pg_fails", "postgres", config.databases["postgres"].name)
                assert False

            def test_pg_passes(isolated_postgres_sync):
                config = isolated_postgres_sync[1]
                record("test_pg_passes", "postgres", config.databases["postgres"].name)

            def test_ch_fails(isolated_clickhouse_sync):
                record("test_ch_fails", "clickhouse", isolated_clickhouse_sync[1])
                assert False

            def test_ch_passes(isolated_clickhouse_sync):
                record("test_ch_passes", "clickhouse", isolated_clickhouse_sync[1])
            """
        }
    )
    settings = Settings.load(root=ROOT)
    isolators = {
        "postgres": PostgreSQLTestIsolator(settings),
        "clickhouse": ClickHouseTestIsolator(settings),
    }
    try:
        result = run("--netra-keep-failed")
        result.assert_outcomes(failed=2, passed=2)
        result.stdout.fnmatch_lines(["*databases created 4, dropped 2, kept 2, left behind 0*"])
        kept_lines = sorted(line for line in result.outlines if line.startswith("kept for"))
        assert [line.split(": ", 1)[0] for line in kept_lines] == [
            f"kept for {module}.py::test_ch_fails",
            f"kept for {module}.py::test_pg_fails",
        ]
        names = {}
        for line in (project.path / "names.jsonl").read_text().splitlines():
            test, backend, name = json.loads(line)
            names[test] = (backend, name)
        assert len(names) == 4
        owned = {
            backend: {db.name: db for db in isolator.owned()}
            for backend, isolator in isolators.items()
        }
        for test, (backend, name) in sorted(names.items()):
            if test.endswith("_fails"):
                assert owned[backend][name].owner.test == f"{module}.py::{test}"
            else:
                assert name not in owned[backend]
                assert isolators[backend].owner_of(name) is None  # gone, not just untagged
    finally:  # the kept ones (all of them, were passing tests' kept too)
        for isolator in isolators.values():
            for db in isolator.owned():
                if db.owner.test.startswith(f"{module}.py::"):
                    isolator.drop(db)
            isolator.close()


@pytest.mark.parametrize("server", ["closed", "silent"])
def test_unreachable_external_server_fails_fast_naming_the_variable(
    project: pytest.Pytester, run, tool_options, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody listening: refused at once, whatever the connect timeout (the default 5 s here).
    A server that accepts and never answers: only the connect timeout ends the wait, so the
    test sets it short, and the error shows that it was that deadline which ended it."""
    project.makepyfile(
        test_down="""
        def test_needs_db(isolated_postgres_sync):
            pass
        """
    )
    import socket

    deadline = "5" if server == "closed" else "2"  # libpq waits 2 s at least
    if server == "silent":
        tool_options(f"connect_timeout = {deadline}")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        if server == "silent":
            sock.listen(8)  # the kernel completes the handshake; nothing ever replies
        else:
            sock.close()
        monkeypatch.setenv("TEST_POSTGRES_HOST", "127.0.0.1")
        monkeypatch.setenv("TEST_POSTGRES_PORT", str(port))
        result = run()
    result.assert_outcomes(errors=1)
    cause = "connection timeout expired" if server == "silent" else "*Connection refused"
    result.stdout.fnmatch_lines(
        [
            f"*PostgreSQL at 127.0.0.1:{port} did not answer within {deadline}s ({cause})"
            "*TEST_POSTGRES_HOST*"
        ]
    )


@pytest.mark.parametrize("entry_point", ["on", "off", "not installed"])
def test_loadable_from_a_conftest_as_in_the_original_design(
    project: pytest.Pytester, run, entry_point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = ["netra_isolation.isolated_test_config"]
    if entry_point == "not installed":  # no entry points at all: pytest-asyncio by hand too
        monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        plugins.insert(0, "pytest_asyncio.plugin")
    project.makeconftest(f"pytest_plugins = {plugins!r}")
    project.makepyfile(
        test_conf="""
        import pytest
        from sqlalchemy import text

        @pytest.mark.isolation(level="transaction")
        def test_db(isolated_postgres_sync):
            session, config = isolated_postgres_sync
            name = session.execute(text("SELECT current_database()")).scalar()
            assert name == config.databases["postgres"].name  # the worker's clone
        """
    )
    if entry_point == "off":  # the rest of the plugin is turned off: only the fixtures work
        run("-p", "no:netra_isolation").assert_outcomes(passed=1)
        return
    # the whole plugin is active: the marker is known, the session ends with its summary and
    # nothing left behind (the worker's database included)
    result = run("--strict-markers")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*databases created 1, dropped 1, kept 0, left behind 0*"])


def test_300_character_parametrized_id_gets_a_valid_unique_database(
    project: pytest.Pytester,
    run,
) -> None:
    project.makepyfile(
        test_long="""
        import pytest
        from sqlalchemy import text

        NAMES = []

        @pytest.mark.parametrize("suffix", ["a", "b"])
        @pytest.mark.parametrize("value", ["x" * 300])
        def test_long(isolated_postgres_sync, value, suffix):
            session, config = isolated_postgres_sync
            name = session.execute(text("SELECT current_database()")).scalar()
            assert len(name.encode()) <= 63 and config.test_id in name
            assert name not in NAMES
            NAMES.append(name)
        """
    )
    run().assert_outcomes(passed=2)


def test_a_server_that_is_down_is_said_once_without_tracebacks(
    project: pytest.Pytester, run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool's errors are its message, not a traceback through the tool and the driver;
    the same session-wide failure is shown in full once, then named in one line."""
    import socket

    project.makepyfile(
        test_down="""
        import pytest

        @pytest.mark.parametrize("n", range(3))
        def test_needs_db(isolated_postgres_sync, n):
            pass
        """
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("TEST_POSTGRES_HOST", "127.0.0.1")
    monkeypatch.setenv("TEST_POSTGRES_PORT", str(port))
    result = run()
    result.assert_outcomes(errors=3)
    out = result.stdout.str()
    assert "Traceback" not in out and "site-packages" not in out and "netra_isolation/" not in out
    # the error sections; the short summary repeats each message, in full when CI is set
    out = out.split("short test summary info")[0]
    assert out.count(f"PostgreSQL at 127.0.0.1:{port} did not answer") == 3
    assert out.count("Start it, or point TEST_POSTGRES_HOST") == 1
    assert out.count("(in full at test_down.py::test_needs_db[0])") == 2


@pytest.mark.parametrize("trouble", ["unwritable cache directory", "corrupt state file"])
def test_a_cache_directory_the_tool_cannot_use_is_said_plainly(
    project: pytest.Pytester, run, monkeypatch: pytest.MonkeyPatch, trouble: str
) -> None:
    """The throwaway servers' state lives in cache_dir: one that cannot be written, or a state
    file that cannot be read, is said once, as a message naming what to do, no traceback;
    `servers down --purge` gets past a corrupt state file."""
    project.makepyfile(
        test_cache="""
        import pytest

        @pytest.mark.parametrize("n", range(2))
        def test_needs_db(isolated_postgres_sync, n):
            pass
        """
    )
    for name in ("TEST_POSTGRES_HOST", "TEST_POSTGRES_PORT", "TEST_POSTGRES_URL"):
        monkeypatch.delenv(name, raising=False)
    if trouble == "unwritable cache directory":
        cache = Path("/proc/netra-isolation-cache")  # not even root writes there
        expected = "cannot be written (No such file or directory): set cache_dir"
    else:
        cache = project.path / "cache"
        (cache / "postgres").mkdir(parents=True)
        (cache / "postgres" / "state.json").write_text("{not json")
        expected = "`netra-isolation servers down --purge` stops it if it runs and starts afresh"
    monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(cache))
    result = run()
    result.assert_outcomes(errors=2)
    out = result.stdout.str().split("short test summary info")[0]
    assert "Traceback" not in out and "netra_isolation/" not in out
    # in full once (the end of the message), in one line for the test after
    assert out.count(expected) == 1 and "(in full at test_cache.py::test_needs_db[0])" in out
    if trouble == "corrupt state file":
        from netra_isolation.backends.postgres.server import EphemeralPostgres

        assert EphemeralPostgres(cache).stop(purge=True) is False
        assert not (cache / "postgres" / "state.json").exists()  # the next start is afresh
