from __future__ import annotations

import functools
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]

Run = Callable[[str], list[tuple[Any, ...]]]


@functools.cache
def suite_postgres() -> tuple[str, int]:
    """The version of the PostgreSQL this suite runs on, ("15.18", 15): the one its settings
    and environment choose (scripts/test.sh runs it on the [server] extra's 18, then the
    `both_servers` tests on the machine's 15), asked of the server itself."""
    from netra_isolation import PostgreSQLTestIsolator, Settings

    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
    try:
        with isolator.server.connect() as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), current_setting('server_version_num')"
            ).fetchone()
    finally:
        isolator.close()
    assert row is not None
    return row[0].split()[0], int(row[1]) // 10000


@pytest.fixture
def postgres_version() -> tuple[str, int]:
    """The suite's PostgreSQL: ("15.18", 15)."""
    return suite_postgres()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The README's examples (tests/examples, word for word as the README shows them, so
    without a mark of their own) run on both servers."""
    examples = ROOT / "tests" / "examples"
    for item in items:
        if item.path.is_relative_to(examples):
            item.add_marker(pytest.mark.both_servers)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.postgres_major(min=18, reason=...)` (or max=): skipped, saying why, on a
    suite server of another major version."""
    for mark in item.iter_markers("postgres_major"):
        version, major = suite_postgres()
        low, high = mark.kwargs.get("min", 0), mark.kwargs.get("max")
        if major < low or (high is not None and major > high):
            pytest.skip(f"the suite runs on PostgreSQL {version}: {mark.kwargs['reason']}")


@pytest.fixture
def materialized_view_case() -> Callable[[Any, Run, str], None]:
    """The same check on every ClickHouse engine: copying a database keeps the rows of a
    materialized view's inner table and of a `TO` target once each, and both views go on
    working in the copy without touching the source."""

    def check(isolator: Any, run: Run, prefix: str) -> None:
        src, dst = f"{prefix}_mv_src", f"{prefix}_mv_dst"
        for db in (src, dst):
            run(f"DROP DATABASE IF EXISTS {db}")
            run(f"CREATE DATABASE {db}")
        run(
            f"CREATE TABLE {src}.e (u UInt64, d Date) ENGINE = MergeTree "
            "PARTITION BY toYYYYMM(d) ORDER BY u"
        )
        run(
            f"CREATE MATERIALIZED VIEW {src}.per_user ENGINE = SummingMergeTree ORDER BY u "
            f"AS SELECT u, count() AS c FROM {src}.e GROUP BY u"
        )
        run(f"CREATE TABLE {src}.totals (u UInt64, c UInt64) ENGINE = SummingMergeTree ORDER BY u")
        run(
            f"CREATE MATERIALIZED VIEW {src}.to_totals TO {src}.totals "
            f"AS SELECT u, count() AS c FROM {src}.e GROUP BY u"
        )
        run(f"INSERT INTO {src}.e SELECT number % 5, toDate('2025-01-01') FROM numbers(100)")

        def total(db: str, table: str) -> int:
            return int(run(f"SELECT sum(c) FROM {db}.{table}")[0][0])

        try:
            isolator.copy_tables(src, dst)
            assert (total(dst, "per_user"), total(dst, "totals")) == (100, 100)
            run(f"INSERT INTO {dst}.e SELECT 1, toDate('2025-01-02')")
            assert (total(dst, "per_user"), total(dst, "totals")) == (101, 101)
            assert (total(src, "per_user"), total(src, "totals")) == (100, 100)
        finally:
            for db in (src, dst):
                run(f"DROP DATABASE IF EXISTS {db}")

    return check


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """chdb's in-process engine takes one data path per process: every test shares it."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture
def throwaway_templates() -> Iterator[Callable[..., None]]:
    """`throwaway_templates(IsolatorClass, settings, *names)`: templates a test built from
    content of its own (unique per run) are dropped after it, so runs do not pile them up on
    the shared throwaway server. Names that do not exist are skipped."""
    made: list[tuple[type, Any, str]] = []
    yield lambda kind, settings, *names: made.extend((kind, settings, n) for n in names)
    for kind, settings, name in made:
        isolator = kind(settings)
        try:
            if name in isolator.templates():
                isolator.drop_template(name)
        finally:
            isolator.close()


@pytest.fixture(autouse=True)
def _pytest_runs_as_off_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytest runs tests start (pytester) print what they print on a developer's machine:
    with CI set, pytest's short summary repeats each error message in full, which would change
    what tests counting the tool's messages see."""
    for name in ("CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)


class Decoy:
    """A server where an app's configuration points (its developer's database): it accepts
    TCP connections, counts them and closes them. No connection may ever reach it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, driver: str = "psycopg", database: str = "app_dev") -> str:
        return f"postgresql+{driver}://dev:dev@127.0.0.1:{self.port}/{database}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def decoy() -> Iterator[Decoy]:
    """`decoy.url()`: where the app's configuration points; `decoy.connections` must stay 0."""
    server = Decoy()
    yield server
    server.close()
