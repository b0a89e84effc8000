"""Crashes, each followed by a clean server: a run (or one of its workers, or a template
build) ended by SIGKILL or Ctrl-C, a test that leaves connections open, a server that
never answers, a run on another host killed. Each test uses a prefix of its own, so no
other process of the suite sweeps its databases, and looks at the real server afterwards:
nothing of the run is left but sealed templates.

(A whole run killed by SIGKILL mid-test is test_self_cleaning.py's.)"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from netra_isolation import PostgreSQLTestIsolator, Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg(monkeypatch: pytest.MonkeyPatch) -> Iterator[PostgreSQLTestIsolator]:
    """The suite's PostgreSQL server, seen through a prefix of the test's own, which the
    test's pytest runs use too (NETRA_ISOLATION_PREFIX); everything of that prefix is dropped
    after the test, templates included."""
    prefix = f"nicrash{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", prefix)
    isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT).with_overrides(prefix=prefix))
    isolator.clean_on_start = False  # look, do not touch
    yield isolator
    try:
        for name in databases(isolator):
            isolator.drop_template(name)  # any database: not a template any more, dropped
    finally:
        isolator.close()


def databases(isolator: PostgreSQLTestIsolator, *, sealed: bool | None = None) -> list[str]:
    """Every database of the isolator's prefix, tagged by the tool or not (a half-made copy
    or build has no tag yet); with `sealed`, only the sealed templates, or all but them."""
    with isolator.server.connect() as conn:
        rows = conn.execute(
            "SELECT datname, datistemplate AND NOT datallowconn FROM pg_database "
            "WHERE datname LIKE %s ORDER BY datname",
            (f"{isolator.settings.prefix}\\_%",),
        ).fetchall()
    return [name for name, is_sealed in rows if sealed is None or is_sealed == sealed]


def leftovers(isolator: PostgreSQLTestIsolator) -> list[str]:
    """What a run must not leave: every database of the prefix but the sealed templates."""
    return databases(isolator, sealed=False)


def wait_for(check: Callable[[], object], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"waited {timeout}s for {what}"
        time.sleep(0.05)


PYTEST = (sys.executable, "-m", "pytest")


def _as_a_terminal_job() -> None:
    """Ctrl-C and Ctrl-\\ act as in a terminal's foreground job, even when this suite runs in
    the background (`make test &`: a shell's background job ignores SIGINT and SIGQUIT, and
    so would the runs it starts, Python with them)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


class Started:
    """A pytest run over the project in a subprocess of its own session (a process group,
    as a terminal's foreground job is), its output in a file, to be signalled mid-way."""

    def __init__(
        self, project: pytest.Pytester, *args: str, pytest_command: Sequence[str] = PYTEST
    ) -> None:
        self.log = project.path / f"run-{uuid.uuid4().hex[:6]}.log"
        with self.log.open("w") as out:
            self.process = project.popen(
                [*pytest_command, "-p", "no:cacheprovider", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_as_a_terminal_job,
            )

    def signal_group(self, signum: int) -> None:
        """What a key press in the terminal does: the signal to every process of the job."""
        os.killpg(self.process.pid, signum)

    def wait(self, timeout: float = 60) -> str:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal_group(signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"the run did not end within {timeout}s:\n{self.output}") from None
        return self.output

    @property
    def output(self) -> str:
        return self.log.read_text()


# -- 1. one xdist worker killed --------------------------------------------------------------

WORKER_KILLED = """
import os, signal, time
from pathlib import Path

import pytest
from sqlalchemy import text

HERE = Path(__file__).parent
WORKER = os.environ["PYTEST_XDIST_WORKER"]


def dead(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # gone, or only its exit status waits for the controller


def wait(check):
    deadline = time.monotonic() + 60
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize("n", range(4))
def test_t(request, n):
    if WORKER not in ("gw0", "gw1"):
        return  # the worker that replaces the dead one makes no database of its own
    session, config = request.getfixturevalue("isolated_postgres_sync")
    session.execute(text("INSERT INTO test_users (email, full_name) VALUES ('s@x.org', 'S')"))
    session.commit()
    assert session.scalar(text("SELECT count(*) FROM test_users")) == 1
    if WORKER == "gw0":
        # the victim, once the other worker has its database (and so has cleaned up at
        # its start)
        wait((HERE / "gw1.ready").exists)
        (HERE / "victim.pid.tmp").write_text(str(os.getpid()))
        (HERE / "victim.pid.tmp").rename(HERE / "victim.pid")
        os.kill(os.getpid(), signal.SIGKILL)  # as an OOM kill of one worker would
    (HERE / "gw1.ready").touch()
    pid = HERE / "victim.pid"
    wait(lambda: pid.exists() and dead(int(pid.read_text())))
"""


def test_a_killed_worker_leaves_nothing_and_the_other_finishes(
    project: pytest.Pytester, run: Callable[..., pytest.RunResult], pg: PostgreSQLTestIsolator
) -> None:
    """One xdist worker dies by SIGKILL mid-test, after the other worker's start-of-session
    cleanup: the other worker's tests pass (and the worker xdist starts in its place runs
    what was left of its share, with no database), and the end of that same run removes
    the dead worker's databases: its lease on the server ended with it."""
    project.makepyfile(test_worker_killed=WORKER_KILLED)
    result = run("-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["*worker 'gw0' crashed while running*test_t*"])
    assert leftovers(pg) == []


# -- a run killed while a copy made ahead is being created -------------------------------------

BEHIND_A_LOCK = """
import time
from pathlib import Path

HERE = Path(__file__).parent


def wait(name):
    deadline = time.monotonic() + 60
    while not (HERE / name).exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_first(isolated_postgres_sync):
    (HERE / "first.done").touch()
    wait("locked")  # the test harness holds its lock now


def test_second(isolated_postgres_sync):
    (HERE / "second.started").touch()
    time.sleep(120)  # killed or interrupted here, or earlier
"""


def ready_copy(pg: PostgreSQLTestIsolator) -> str | None:
    """The copy of the template made ahead for the next test, once it is made and tagged."""
    ready = [db.name for db in pg.owned() if db.owner.test == "ready:"]
    return ready[0] if ready else None


@contextmanager
def lock_held_on(pg: PostgreSQLTestIsolator, database: str) -> Iterator[None]:
    """For the block, a lock on `database` (an uncommitted `COMMENT ON DATABASE` holds one)
    that makes copying it (`CREATE DATABASE .. TEMPLATE`) and renaming it wait."""
    with pg.server.connect() as conn:
        conn.execute("BEGIN")
        conn.execute(f'COMMENT ON DATABASE "{database}" IS NULL')
        try:
            yield
        finally:
            conn.execute("ROLLBACK")


def blocked(pg: PostgreSQLTestIsolator, statement: str, name: str) -> bool:
    """Whether a statement starting with `statement` and naming `name` waits for a lock."""
    with pg.server.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE %s AND position(%s in query) > 0",
            (f"{statement}%", name),
        ).fetchone()
    return bool(row and row[0])


def killed_while_copying(
    project: pytest.Pytester, pg: PostgreSQLTestIsolator, *, made_ahead: bool
) -> list[str]:
    """Run BEHIND_A_LOCK and SIGKILL it while its next copy of the template (`CREATE
    DATABASE`, held open by a lock this test takes on the template) is being made: a copy
    made ahead, or the second test's own clone. Returns the untagged databases the server
    is left with once it has finished that copy after the process is gone."""
    project.makepyfile(test_behind_a_lock=BEHIND_A_LOCK)
    started = Started(project)
    wait_for((project.path / "first.done").exists, "the first test")
    if made_ahead:
        wait_for(lambda: ready_copy(pg), "the copy made ahead")
    [template] = databases(pg, sealed=True)
    with lock_held_on(pg, template):  # until the process is gone
        (project.path / "locked").touch()
        wait_for(lambda: blocked(pg, "CREATE DATABASE", template), "the next copy to wait")
        started.signal_group(signal.SIGKILL)
        started.wait()
    untagged = lambda: [name for name in leftovers(pg) if pg.owner_of(name) is None]  # noqa: E731
    wait_for(untagged, "the server to finish the copy")
    (project.path / "test_behind_a_lock.py").unlink()
    project.makepyfile(test_next="def test_next(isolated_postgres_sync):\n    pass\n")
    return untagged()


def test_a_copy_being_made_when_the_run_is_killed_is_removed_by_the_next_run(
    project: pytest.Pytester, run: Callable[..., pytest.RunResult], pg: PostgreSQLTestIsolator
) -> None:
    """The process is killed while it makes the copy of the template for its next test: the
    server finishes that copy after the process is gone, without the tag naming its owner.
    The next ordinary run still tells it is the dead run's, by its name, and removes it."""
    untagged = killed_while_copying(project, pg, made_ahead=True)
    # and the second test's own (the first's too, if its drop in the background had not
    # run yet when the process was killed)
    assert len(untagged) == 1 and len(leftovers(pg)) in (2, 3)
    result = run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["removed [23] databases left by runs that are over"])
    assert leftovers(pg) == []


def test_a_database_being_cloned_when_the_run_is_killed_is_removed_by_the_next_run(
    project: pytest.Pytester,
    run: Callable[..., pytest.RunResult],
    pg: PostgreSQLTestIsolator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No copies made ahead (`prefetch = 0`): the process is killed while it clones the
    template for its second test. The clone is made under a name that says whose it is and
    renamed once tagged, so the copy the server finishes after the process is gone is still
    told to be the dead run's by the next ordinary run, which removes it."""
    monkeypatch.setenv("NETRA_ISOLATION_PREFETCH", "0")
    untagged = killed_while_copying(project, pg, made_ahead=False)
    assert [f"{pg.settings.prefix}_new_" in name for name in untagged] == [True]
    result = run()
    result.assert_outcomes(passed=1)
    assert leftovers(pg) == []


# -- 2. Ctrl-C ----------------------------------------------------------------------------------

INTERRUPTED = """
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parametrize("n", range(4))
def test_waits(isolated_postgres_sync, n):
    (HERE / f"started.{n}").touch()
    if n == 1:
        time.sleep(120)  # interrupted here
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one process", "xdist"])
def test_ctrl_c_mid_test_leaves_nothing(
    project: pytest.Pytester,
    run: Callable[..., pytest.RunResult],
    pg: PostgreSQLTestIsolator,
    workers: list[str],
) -> None:
    """Ctrl-C (SIGINT to the run's process group, workers included) while a test runs: the
    run ends as pytest ends an interrupted run, with no traceback through the tool. One
    process tears the test's fixtures down, then the tool finishes: nothing is left. Under
    xdist, the signal may reach a worker anywhere, even in its own end-of-session cleanup:
    whatever that left, the next ordinary run's start removes."""
    project.makepyfile(test_interrupted=INTERRUPTED)
    started = Started(project, *workers)
    wait_for((project.path / "started.1").exists, "the test to start")
    started.signal_group(signal.SIGINT)
    output = started.wait()
    assert "KeyboardInterrupt" in output and "netra_isolation/" not in output, output
    if not workers:
        # (xdist's controller may be interrupted anywhere, even in a gc callback it shows)
        assert "Traceback" not in output, output
        assert "databases created 2, dropped 2, kept 0, left behind 0" in output, output
        assert leftovers(pg) == []
        return
    (project.path / "test_interrupted.py").unlink()
    project.makepyfile(test_next="def test_next(isolated_postgres_sync):\n    pass\n")
    run().assert_outcomes(passed=1)
    assert leftovers(pg) == []


def test_ctrl_c_while_a_test_database_is_made_leaves_nothing(
    project: pytest.Pytester, pg: PostgreSQLTestIsolator
) -> None:
    """Ctrl-C while the tool makes a test's database (its copy made ahead, being renamed for
    the test, waits for a lock this test holds): the database is neither the test's yet nor
    a copy in waiting, and the end of the same run still drops it."""
    project.makepyfile(test_behind_a_lock=BEHIND_A_LOCK)
    started = Started(project)
    wait_for((project.path / "first.done").exists, "the first test")
    wait_for(lambda: ready_copy(pg), "the copy made ahead")
    copy = ready_copy(pg)
    assert copy is not None
    with lock_held_on(pg, copy):  # until the interrupt is in
        (project.path / "locked").touch()
        wait_for(lambda: blocked(pg, "ALTER DATABASE", copy), "the rename to wait")
        started.signal_group(signal.SIGINT)
        time.sleep(0.5)  # the interrupt cancels the rename before the lock goes
    output = started.wait()
    assert "KeyboardInterrupt" in output and "Traceback" not in output, output
    assert not (project.path / "second.started").exists()
    assert leftovers(pg) == []


# -- 3, 4. a template build interrupted or killed half-way --------------------------------------

SLOW_BUILD = """
import os, time
from pathlib import Path

from factories import UserFactory
from netra_isolation import scenario

HERE = Path(__file__).parent


@scenario("slow", seed=3)
def slow(session):
    UserFactory.create_batch(2)
    session.flush()
    if (HERE / "slow").exists():  # a file, not code: the template's fingerprint stays
        (HERE / "building").touch()
        time.sleep(120)  # interrupted or killed here, half-way through the build
"""

SEEDED = """
import pytest
from sqlalchemy import text

import slow_build


@pytest.mark.parametrize("n", range(2))
@pytest.mark.isolation(schema="user_management", scenario="slow")
def test_seeded(isolated_postgres_sync, n):
    session, config = isolated_postgres_sync
    assert session.scalar(text("SELECT count(*) FROM users")) == 2
    assert session.scalar(text("SELECT to_regclass('half_built')")) is None
"""


@pytest.fixture
def slow_build(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., pytest.RunResult]:
    """A project whose one template takes as long as the test wants to build (while the file
    `slow` exists); `rebuild()` runs it again without the wait, the deadline for waiting on
    another process's build at 20 s (instead of 600): a lock left by a dead process would
    fail it, not hang it. Returns `rebuild`."""
    project.makepyfile(slow_build=SLOW_BUILD, test_seeded=SEEDED)
    (project.path / "slow").touch()

    def rebuild() -> pytest.RunResult:
        (project.path / "slow").unlink(missing_ok=True)
        monkeypatch.setenv("NETRA_ISOLATION_TEMPLATE_BUILD_TIMEOUT", "20")
        result = project.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", timeout=120)
        monkeypatch.delenv("NETRA_ISOLATION_TEMPLATE_BUILD_TIMEOUT")
        return result

    return rebuild


def waiting_for_the_build(pg: PostgreSQLTestIsolator) -> bool:
    """Whether a process waits for another's template build (the build's advisory lock)."""
    with pg.server.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query LIKE 'SELECT pg_advisory_lock(%'"
            "AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


def test_ctrl_c_during_a_template_build_then_the_next_run_builds_it(
    project: pytest.Pytester,
    pg: PostgreSQLTestIsolator,
    slow_build: Callable[..., pytest.RunResult],
) -> None:
    """Ctrl-C while one xdist worker builds the template and the other waits for it: both
    stop; the half-built database and the lock go with the build. The next run builds the
    same template again at once and its tests see the seeded rows."""
    started = Started(project, "-n", "2")
    wait_for((project.path / "building").exists, "the build to start")
    wait_for(lambda: waiting_for_the_build(pg), "the other worker to wait for it")
    started.signal_group(signal.SIGINT)
    output = started.wait()
    assert "KeyboardInterrupt" in output, output
    assert databases(pg) == []  # no template, sealed or half-built, no test database

    result = slow_build()  # a lock left held would fail it at the 20 s build timeout
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["templates built 1, reused 1; *left behind 0"])
    assert leftovers(pg) == [] and len(databases(pg, sealed=True)) == 1


def test_a_template_build_killed_half_way_is_never_used(
    project: pytest.Pytester,
    pg: PostgreSQLTestIsolator,
    slow_build: Callable[..., pytest.RunResult],
) -> None:
    """SIGKILL half-way through a template build leaves the database being built (untagged,
    unsealed); a kill between its rename and its seal would leave it under the template's
    own name, unsealed, which this test adds (with a table that marks it). The next run
    takes the build's lock at once (its holder is gone), uses neither, builds the template
    again and seals it: its tests see the seeded rows and no mark. Nothing else is left."""
    started = Started(project)
    wait_for((project.path / "building").exists, "the build to start")
    started.signal_group(signal.SIGKILL)
    started.wait()
    [half_built] = leftovers(pg)
    assert half_built.endswith("_b") and pg.owner_of(half_built) is None
    assert databases(pg, sealed=True) == []
    template = half_built.removesuffix("_b")
    with pg.server.connect() as admin:
        admin.execute(f'CREATE DATABASE "{template}"')
    with pg.connect_to(template) as conn:
        conn.exec_driver_sql("CREATE TABLE half_built (id int)")

    result = slow_build()  # a lock left held would fail it at the 20 s build timeout
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["templates built 1, reused 1; *left behind 0"])
    assert leftovers(pg) == [] and databases(pg, sealed=True) == [template]


# -- 5. connections a test leaves open -----------------------------------------------------------

LEAVES_CONNECTIONS = """
import psycopg
import pytest
from sqlalchemy import create_engine, make_url, text

OPEN = []  # never closed: they live as long as the process


def leave_open(url):
    engine = create_engine(url)  # its pool keeps the connection, never disposed
    connection = engine.connect()
    connection.execute(text("SELECT * FROM test_users FOR UPDATE"))  # a transaction, open
    raw = psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    raw.execute("LOCK TABLE test_users IN ROW SHARE MODE")  # another, holding a lock
    OPEN.extend([connection, raw])


def test_database_level(netra_database_url):
    leave_open(netra_database_url)


@pytest.mark.isolation(level="transaction")
def test_transaction_level(netra_database_url):
    leave_open(netra_database_url)  # the worker's database, dropped at the end of the run


def test_they_were_ended(isolated_postgres_sync, netra_manager):
    netra_manager.wait_for_drops()  # the first test's database is dropped by now
    connection, raw = OPEN[:2]
    with pytest.raises(psycopg.OperationalError, match="terminating connection"):
        raw.execute("SELECT 1")
"""


def test_connections_a_test_leaves_open_do_not_keep_its_database(
    project: pytest.Pytester, run: Callable[..., pytest.RunResult], pg: PostgreSQLTestIsolator
) -> None:
    """Tests that leave connections to their databases open, in transactions holding locks
    (a raw psycopg connection, an engine never disposed): the tool ends those connections
    and drops the databases anyway, a test's own after the test and the worker's (at
    `transaction` level) at the end of the run."""
    project.makepyfile(test_leaves_connections=LEAVES_CONNECTIONS)
    result = run()
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*databases created 3, dropped 3, kept 0, left behind 0*"])
    assert leftovers(pg) == []


# -- 6. a server that never answers --------------------------------------------------------------


def test_a_thousand_tests_against_a_silent_server_end_within_a_minute(
    project: pytest.Pytester, run: Callable[..., pytest.RunResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that accepts connections and never answers (a hung host, a firewall that
    swallows replies): the first test waits the connect timeout (5 s by default), every
    later one fails at once naming it; the run of 1,000 tests ends in under a minute, the
    error shown in full once and in one line for each other test."""
    project.makepyfile(
        test_silent="""
        import pytest

        @pytest.mark.parametrize("n", range(1000))
        def test_needs_db(isolated_postgres_sync, n):
            pass
        """
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel completes the handshake; nothing ever replies
        port = sock.getsockname()[1]
        monkeypatch.setenv("TEST_POSTGRES_HOST", "127.0.0.1")
        monkeypatch.setenv("TEST_POSTGRES_PORT", str(port))
        began = time.monotonic()
        result = run()
        elapsed = time.monotonic() - began
    result.assert_outcomes(errors=1000)
    assert elapsed < 60, f"{elapsed:.1f}s"
    # the error sections; the short summary repeats each message, in full when CI is set
    out = result.stdout.str().split("short test summary info")[0]
    assert out.count("did not answer within 5s (connection timeout expired)") == 1000
    assert out.count("(`netra-isolation servers status`)") == 1  # the end of the full text
    assert out.count("(in full at test_silent.py::test_needs_db[0])") == 999


# -- 7. a run on another host killed -------------------------------------------------------------


class Relay:
    """A TCP relay, listening on `host`, to the server at `target`: how a run on another
    host reaches the server (the server listens on loopback alone). A connection of a killed
    process ends on its side, and so on the server's."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server((host, 0))
        self.address = (host, self.listener.getsockname()[1])
        self.open = self.relayed = 0  # connections relayed now, and in all
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(self.target)
            with self._lock:
                self.open += 1
                self.relayed += 1
            ends = threading.Barrier(2, action=self._closed)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink, ends), daemon=True).start()

    def _closed(self) -> None:
        with self._lock:
            self.open -= 1

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket, ends: threading.Barrier) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):  # ends the other direction too
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            ends.wait()
            source.close()

    def close(self) -> None:
        self.listener.close()


ELSEWHERE = "elsewhere-" + uuid.uuid4().hex[:6]


@pytest.fixture
def another_host() -> Iterator[tuple[list[str], str]]:
    """A network namespace joined to this one by a veth pair (this side 10.213.n.1, the
    other 10.213.n.2): `(command, address)`, where `command` runs pytest in that namespace,
    with a host name of its own (its UTS namespace: ELSEWHERE, socket.gethostname() says
    so) and pids of its own (its PID namespace), and `address` is this side's."""
    if os.geteuid() != 0:
        pytest.skip("making network, UTS and PID namespaces needs root")
    ip, unshare = shutil.which("ip"), shutil.which("unshare")
    if ip is None or unshare is None:
        pytest.skip("needs iproute2's ip and util-linux's unshare")
    tag = uuid.uuid4().hex[:6]
    namespace, here, there = f"ni{tag}", f"ni{tag}a", f"ni{tag}b"
    net = f"10.213.{int(tag[:2], 16)}"
    made = subprocess.run([ip, "netns", "add", namespace], capture_output=True, text=True)
    if made.returncode:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        for command in (
            [ip, "link", "add", here, "type", "veth", "peer", "name", there],
            [ip, "link", "set", there, "netns", namespace],
            [ip, "addr", "add", f"{net}.1/30", "dev", here],
            [ip, "link", "set", here, "up"],
            [ip, "-n", namespace, "addr", "add", f"{net}.2/30", "dev", there],
            [ip, "-n", namespace, "link", "set", there, "up"],
            [ip, "-n", namespace, "link", "set", "lo", "up"],
        ):
            subprocess.run(command, check=True, capture_output=True)
        hostname_then_pytest = (
            "import os, socket, sys; socket.sethostname(sys.argv[1]); "
            "os.execv(sys.executable, [sys.executable, '-m', 'pytest', *sys.argv[2:]])"
        )
        yield (
            [
                *(ip, "netns", "exec", namespace),
                *(unshare, "--uts", "--pid", "--fork", "--mount-proc"),
                *(sys.executable, "-c", hostname_then_pytest, ELSEWHERE),
            ],
            f"{net}.1",
        )
    finally:
        subprocess.run([ip, "netns", "del", namespace], capture_output=True)  # the veth pair too


HELD = """
import os, time
from pathlib import Path


def test_held(isolated_postgres_sync):
    (Path(__file__).parent / f"started.{os.environ['PYTEST_XDIST_WORKER']}").touch()
    time.sleep(120)  # killed here
"""

NEXT_HERE = """
import json
from pathlib import Path

from sqlalchemy import text


def test_ordinary(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    left = json.loads((Path(__file__).parent / "left.json").read_text())
    databases = set(session.execute(text("SELECT datname FROM pg_database")).scalars())
    assert not databases & set(left)  # removed before this test began
"""


def test_a_run_killed_on_another_host_is_cleaned_up_by_the_next_run_here(
    project: pytest.Pytester,
    run: Callable[..., pytest.RunResult],
    pg: PostgreSQLTestIsolator,
    another_host: tuple[list[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two xdist workers on another host (a host name, pids and a network of their own,
    reaching the shared server over that network) each hold a test's database and a copy
    made ahead when the run is killed by SIGKILL: 4 databases left, tagged with the other
    host's name (and its pids, small numbers that on this host are live processes). An
    ordinary run from this host removes them at its start: their owners' locks on the server
    ended with their connections, and no process table or host name is asked."""
    pytest_elsewhere, address = another_host
    relay = Relay(address, (pg.server.host, pg.server.port))
    try:
        for name, value in {
            "TEST_POSTGRES_HOST": relay.address[0],
            "TEST_POSTGRES_PORT": str(relay.address[1]),
            "TEST_POSTGRES_USER": pg.server.user,
            "TEST_POSTGRES_PASSWORD": pg.server.password,
            "NETRA_ISOLATION_CACHE_DIR": str(project.path / "elsewhere-cache"),
        }.items():
            monkeypatch.setenv(name, value)
        monkeypatch.delenv("NETRA_ISOLATION_HOST", raising=False)  # the host's own name
        project.makepyfile(test_held=HELD)
        started = Started(project, "-n", "2", "--dist", "each", pytest_command=pytest_elsewhere)
        for worker in ("gw0", "gw1"):
            wait_for((project.path / f"started.{worker}").exists, f"{worker}'s test")
        tagged = lambda: [n for n in leftovers(pg) if pg.owner_of(n) is not None]  # noqa: E731
        wait_for(lambda: len(tagged()) == 4, "each worker's copy made ahead", timeout=30)
        started.signal_group(signal.SIGKILL)
        started.wait()
        wait_for(lambda: relay.open == 0, "the killed run's connections to end")
    finally:
        relay.close()
    assert relay.relayed > 0  # the killed run reached the server through the other network
    left = leftovers(pg)
    owners = [pg.owner_of(name) for name in left]
    assert len(left) == 4, started.output
    assert {owner.host for owner in owners if owner} == {ELSEWHERE} != {socket.gethostname()}

    (project.path / "test_held.py").unlink()
    (project.path / "left.json").write_text(json.dumps(left))
    project.makepyfile(test_next_here=NEXT_HERE)
    monkeypatch.setenv("TEST_POSTGRES_HOST", pg.server.host)  # the server as this host sees it
    monkeypatch.setenv("TEST_POSTGRES_PORT", str(pg.server.port))
    monkeypatch.delenv("NETRA_ISOLATION_CACHE_DIR")
    result = run()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["removed 4 databases left by runs that are over"])
    assert leftovers(pg) == []
