"""The pytest11 entry point: options, marker, the run's manager (the `netra_manager`
fixture), report header, error reports, validation gate, xdist wiring, summary.

The fixtures live in `fixtures` and reach the manager through `netra_manager`; this module
wires them in.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import sysconfig
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Generator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pytest

from netra_isolation.errors import (
    FAILED_AT_ONCE,
    FAILED_TEMPLATE,
    NetraIsolationError,
    TemplateBuildError,
)
from netra_isolation.fixtures import (
    CONFIGS,
    REPORTS,
    isolated_clickhouse,
    isolated_clickhouse_sync,
    isolated_full_stack,
    isolated_postgres,
    isolated_postgres_sync,
    netra_database_url,
    performance_test_config,
)
from netra_isolation.handle import set_default_manager
from netra_isolation.metrics import Metrics
from netra_isolation.naming import Owner, running_test, set_running_test
from netra_isolation.settings import LEVELS, Settings

# Importing the plugin stays light: the manager (and with it the drivers, Alembic and
# factory-boy) is imported when a test first asks for a database.
if TYPE_CHECKING:
    from netra_isolation.test_database_manager import TestDatabaseManager

__all__ = [
    "isolated_clickhouse",
    "isolated_clickhouse_sync",
    "isolated_full_stack",
    "isolated_postgres",
    "isolated_postgres_sync",
    "netra_database_url",
    "netra_manager",
    "performance_test_config",
]

MANAGER = pytest.StashKey["TestDatabaseManager"]()
SETTINGS = pytest.StashKey[Settings]()
METRICS = pytest.StashKey[Metrics]()
SAID = pytest.StashKey[dict[str, str]]()  # an error's message -> the test that showed it
# A report's attribute (it crosses from xdist workers): on the test a template's failed build
# was shown in, the template; on each later test that failed at once, what its line says.
SHOWN = "netra_build_failed"
AS_FIRST = "netra_as_first"
AT_ONCE = "failed at once"  # the stats category of the later tests: one count, not a line each

OPTIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "level": ("--netra-level", {"choices": LEVELS, "help": "default isolation level"}),
    "schema": ("--netra-schema", {"help": "default PostgreSQL schema type (branch label)"}),
    "scenario": ("--netra-scenario", {"help": "default seed scenario"}),
    "cache_dir": ("--netra-cache-dir", {"help": "where throwaway servers keep their state"}),
    "performance_scale": (
        "--netra-performance-scale",
        {"type": int, "help": "scale factor of performance_test_config (default 5)"},
    ),
    "validate": (
        "--netra-validate",
        {
            "action": "store_true",
            "default": None,
            "help": "validate every test's databases after it; a failed check fails the test",
        },
    ),
    "keep_failed": (
        "--netra-keep-failed",
        {"action": "store_true", "default": None, "help": "keep a failed test's databases"},
    ),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netra-isolation", "per-test PostgreSQL/ClickHouse databases")
    for name, (flag, kwargs) in OPTIONS.items():
        group.addoption(flag, dest=f"netra_{name}", **kwargs)
    group.addoption(
        "--netra-metrics-json",
        dest="netra_metrics_json",
        default=None,
        help="write the run's raw timings and counters to this JSON file",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "isolation(level='database'|'transaction', schema='basic', scenario=None, "
        "clickhouse_schema='basic', scale=None, validate=False): "
        "how a test's databases are isolated, migrated and seeded",
    )
    # None when registered late (through isolated_test_config), after options were parsed
    overrides = {name: config.getoption(f"netra_{name}", None) for name in OPTIONS}
    settings = config.stash[SETTINGS] = Settings.load(overrides, root=config.rootpath)
    if settings.uses("clickhouse") and config.pluginmanager.hasplugin("pytester"):
        # A suite that runs pytest in-process (pytester) and uses ClickHouse loads its
        # drivers now, before any test: imported later inside a test that snapshots
        # sys.modules (pytester's in-process runs), the drivers' modules would be dropped
        # while SQLAlchemy keeps their dialect, and `requests` then fails with "You can only
        # merge into CookieJar". Other runs load them when a test first uses ClickHouse.
        from netra_isolation import compat

        compat.apply()
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_XdistController(config), "netra_isolation_xdist")
    config.pluginmanager.register(_ToolErrorReports(), "netra_isolation_reports")
    if settings.uses("postgres"):
        # from now on no connection of the app's reaches where its configuration points
        from netra_isolation import routing

        previous = routing.set_provider(lambda nodeid: manager_for(config).app_target(nodeid))
        config.pluginmanager.register(_Routing(config, previous), "netra_isolation_routing")


class _Routing:
    """Tells `routing` which test runs and when a fixture of a wider scope than a test's
    sets up or tears down: what it connects to is the worker's database, not the test's."""

    def __init__(self, config: pytest.Config, previous: Any) -> None:
        self.config = config
        self.previous = previous  # the provider of a run this one runs inside (pytester's)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        from netra_isolation import routing

        routing.enter_test(item.nodeid)
        try:
            return (yield)
        finally:
            routing.enter_test(None)
            if MANAGER in self.config.stash:
                self.config.stash[MANAGER].end_test(item.nodeid)

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        if fixturedef.scope == "function":
            return (yield)
        from netra_isolation import routing

        entered = [False]

        def enter() -> None:
            entered[0] = True
            routing.enter_shared(1)

        def leave() -> None:
            if entered[0]:
                entered[0] = False
                routing.enter_shared(-1)

        fixturedef.addfinalizer(leave)  # finalizers run last-in first: after its teardown
        enter()
        try:
            result = yield
        finally:
            leave()
        fixturedef.addfinalizer(enter)  # before its teardown
        return result

    def pytest_unconfigure(self) -> None:
        from netra_isolation import routing

        routing.set_provider(self.previous)


def manager_for(config: pytest.Config) -> TestDatabaseManager:
    """The worker's manager, made on first use so runs that need no database start no server."""
    if MANAGER not in config.stash:
        from netra_isolation.test_database_manager import TestDatabaseManager

        # Without this plugin's hooks (only isolated_test_config loaded) there are no options.
        settings = config.stash.get(SETTINGS, None) or Settings.load(root=config.rootpath)
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        owner = Owner.new_run(
            worker=workerinput["workerid"] if workerinput else "main",
            run=workerinput["testrunuid"][:12] if workerinput else uuid.uuid4().hex[:12],
        )
        manager = TestDatabaseManager(settings, owner=owner, metrics=metrics_for(config))
        manager.progress = progress_writer(config, workerinput)
        config.stash[MANAGER] = manager
        set_default_manager(manager)
    return config.stash[MANAGER]


@pytest.fixture(scope="session")
def netra_manager(pytestconfig: pytest.Config) -> TestDatabaseManager:
    """The session's (worker's) manager, through which every fixture reaches the databases;
    override it to use your own settings."""
    return manager_for(pytestconfig)


def progress_writer(
    config: pytest.Config, workerinput: dict[str, Any] | None
) -> Callable[[str], None]:
    """Where the progress lines of long steps go, with capturing suspended (the steps run inside
    fixtures, while pytest captures output): pytest's terminal; from an xdist worker, which has
    no terminal of its own, its stderr, which is the controller's, with the worker named."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    one_at_a_time = threading.Lock()  # PostgreSQL and ClickHouse templates build in parallel

    def write(line: str) -> None:
        suspended = capman.global_and_fixture_disabled() if capman else contextlib.nullcontext()
        with one_at_a_time, suspended:
            if workerinput is not None:
                sys.stderr.write(f"\n[{workerinput['workerid']}] {line}\n")
                sys.stderr.flush()
            elif reporter is not None:
                reporter.write_line(line)

    return write


def metrics_for(config: pytest.Config) -> Metrics:
    return config.stash.setdefault(METRICS, Metrics())


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Where each backend the project uses (Settings.backends) runs, and the level; a running
    throwaway server, what it is (PostgreSQL: its version and copy method)."""
    from netra_isolation.servers import running_summary

    settings = config.stash[SETTINGS]
    parts = []
    for backend in settings.backends():
        external = getattr(settings, backend)
        where = "throwaway local server (" if external is None else f"{external.address} (from "
        running = running_summary(settings.cache_dir, backend) if external is None else ""
        said = f": {running}" if running else ""
        parts.append(f"{backend} = {where}{settings.source(backend)}){said}; ")
    if not parts:
        parts.append(f"no Alembic section in {settings.alembic_ini}; ")
    return [
        f"netra-isolation: {''.join(parts)}level = {settings.level} "
        f"(from {settings.source('level')})"
    ]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    error = call.excinfo.value if call.excinfo is not None else None
    if report.failed and isinstance(error, TemplateBuildError):
        report.longrepr = f"{type(error).__name__}: {error}"  # one line naming the first
        setattr(report, AS_FIRST, [error.backend, error.template, error.first, error.summary])
    elif report.failed and isinstance(error, NetraIsolationError) and not hasattr(report, SHOWN):
        report.longrepr = _said_once(item.config, item.nodeid, error)
    return report


class _ToolErrorReports:
    """The report of a test the tool's own error failed, made without formatting the error's
    traceback (through the tool and the driver, with the source of each frame's file), which
    `pytest_runtest_makereport` above replaces by the message anyway: for a failure every test
    meets (a server that does not answer) that formatting took longer than the test."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> pytest.TestReport | None:
        error = call.excinfo.value if call.excinfo is not None else None
        if error is not None and getattr(error, FAILED_TEMPLATE, None) is not None:
            if getattr(error, SHOWN, None) is None:
                report = _failed_build_report(item, call, error)
                if report is not None:
                    setattr(error, SHOWN, item.nodeid)
                    return report
            else:  # shown already: raised again for each test of a wider fixture's
                at_once: TemplateBuildError = getattr(error, FAILED_AT_ONCE)
                report = _plain_report(item, call, f"{type(at_once).__name__}: {at_once}")
                first = [at_once.backend, at_once.template, at_once.first, at_once.summary]
                setattr(report, AS_FIRST, first)
                return report
        if not isinstance(error, NetraIsolationError):
            return None
        return _plain_report(item, call, f"{type(error).__name__}: {error}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Generator[None, object, object]:
        outer = running_test()  # a run inside a test (pytester's) gives the test back
        set_running_test(item.nodeid)  # the test a template build that fails is named after
        try:
            return (yield)
        finally:
            set_running_test(outer)
            # the test's handles and reports are not kept for the rest of the run (its
            # items are): fewer objects for every later garbage collection to go over
            if CONFIGS in item.stash:
                del item.stash[CONFIGS]
            if REPORTS in item.stash:
                del item.stash[REPORTS]

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        """A test that failed at once on a template this run could not build is counted, not
        listed: its one line is in its report (and -v, junitxml), the error once in full."""
        if report.failed and getattr(report, AS_FIRST, None):
            if report.when == "call":
                return AT_ONCE, "F", "FAILED AT ONCE"
            return AT_ONCE, "E", "ERROR AT ONCE"
        return None

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        failed = Counter(
            tuple(getattr(report, AS_FIRST)) for report in terminalreporter.stats.get(AT_ONCE, [])
        )
        if not failed:
            return
        tr = terminalreporter
        tr.write_sep("-", "netra-isolation: templates that could not be built", red=True)
        for (backend, template, first, summary), count in failed.items():
            tests = "test" if count == 1 else "tests"
            tr.write_line(
                f"{count} {tests} failed at once needing the {backend} template {template}: "
                f"{summary} (in full at {first})",
                red=True,
            )


# Where code is: the tool's, a library's (the standard library, site-packages: Alembic,
# SQLAlchemy, pytest, a driver) or the user's.
_TOOL = str(Path(__file__).resolve().parent) + os.sep
_LIBRARIES = tuple(
    {
        str(Path(path).resolve()) + os.sep
        for key in ("stdlib", "platstdlib", "purelib", "platlib")
        if (path := sysconfig.get_paths().get(key))
    }
)


def _whose(filename: str) -> str:
    if filename.startswith("<"):  # <frozen importlib._bootstrap>, code made from a string
        return "library"
    path = os.path.realpath(filename)
    if path.startswith(_TOOL):
        return "tool"
    parts = Path(path).parts
    if path.startswith(_LIBRARIES) or "site-packages" in parts or "dist-packages" in parts:
        return "library"
    return "user"


def _users_frames(tb: TracebackType | None) -> TracebackType | None:
    """`tb` with the user's frames only, and after the last of them what it called outside the
    tool (where a library raised); None when none is the user's. A module's top level above
    another of the user's frames goes too (env.py run by Alembic: its source up to the call)."""
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    whose = [_whose(entry.tb_frame.f_code.co_filename) for entry in entries]
    users = [i for i, who in enumerate(whose) if who == "user"]
    if not users:
        return None
    kept = [
        entry
        for i, entry in enumerate(entries)
        if (i == users[-1])
        or (whose[i] == "user" and entry.tb_frame.f_code.co_name != "<module>")
        or (i > users[-1] and whose[i] != "tool")
    ]
    rebuilt = None
    for entry in reversed(kept):
        rebuilt = TracebackType(rebuilt, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return rebuilt


def _failed_build_report(
    item: pytest.Item, call: pytest.CallInfo[None], error: BaseException
) -> pytest.TestReport | None:
    """The report of the test a template's build failed in: the user's error with the user's
    frames, the tool's and its libraries' between them folded away (--fulltrace shows them);
    a tool's error that wraps the user's (MigrationError, SeedError) is said under it. None:
    the error has none of the user's frames, and is reported as the tool's errors are."""
    template = getattr(error, FAILED_TEMPLATE)
    shown, notes = error, []
    if isinstance(error, NetraIsolationError):
        cause = error.__cause__
        if cause is None or _users_frames(cause.__traceback__) is None:
            return None
        shown, notes = cause, [f"{type(error).__name__}: {error}"]
    traceback = shown.__traceback__
    if not item.config.getoption("fulltrace", False):
        traceback = _users_frames(traceback) or traceback
        seen, link = {id(shown)}, _next_link(shown)
        while link is not None and id(link) not in seen:  # what it was raised from, too
            seen.add(id(link))
            link.with_traceback(_users_frames(link.__traceback__) or link.__traceback__)
            link = _next_link(link)
    notes.append(
        f"netra-isolation: template {template} was not built; the other tests of this run "
        "that need it fail at once, naming this one"
    )
    if traceback is not shown.__traceback__:
        notes.append("(netra-isolation's frames and its libraries' are hidden: --fulltrace)")
    for note in notes:
        shown.add_note(note)
    assert traceback is not None  # an error that was raised
    shown_call = copy.copy(call)
    shown_call.excinfo = pytest.ExceptionInfo.from_exc_info((type(shown), shown, traceback))
    report = pytest.TestReport.from_item_and_call(item, shown_call)
    setattr(report, SHOWN, template)
    return report


def _next_link(error: BaseException) -> BaseException | None:
    if error.__cause__ is not None or error.__suppress_context__:
        return error.__cause__
    return error.__context__


def _plain_report(
    item: pytest.Item, call: pytest.CallInfo[None], message: str
) -> pytest.TestReport:
    """A failed test's report saying `message`, its traceback never formatted."""
    try:
        pytest.fail(message, pytrace=False)
    except pytest.fail.Exception:
        plain = copy.copy(call)  # the call other hooks see keeps the error itself
        plain.excinfo = pytest.ExceptionInfo.from_current()
    return pytest.TestReport.from_item_and_call(item, plain)


def _said_once(config: pytest.Config, nodeid: str, error: NetraIsolationError) -> str:
    """The tool's own error as its message, without a traceback through the tool or the
    driver (as `pytest.fail(pytrace=False)` shows it); the same error again (a server that is
    down fails every test) in one line naming the test that showed it in full."""
    said = config.stash.setdefault(SAID, {})
    message = f"{type(error).__name__}: {error}"
    first = said.setdefault(message, nodeid)
    if first == nodeid:
        return message
    return f"{type(error).__name__}: {str(error).splitlines()[0][:160]} (in full at {first})"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """With validation on, check the test's databases after it; a failed check fails the test
    with the report and what changed since the clean state."""
    # An async test's uncommitted work at `transaction` level is visible only on its own
    # connection, which lives on its event loop: its fixture checks it at teardown instead.
    configs = [c for c in item.stash.get(CONFIGS, []) if c.validate and c.databases]
    if configs:  # the validator (and Alembic) load only for a test that validates
        from sqlalchemy.ext.asyncio import AsyncSession

        from netra_isolation.database_state_validator import failed, failure_message

        configs = [c for c in configs if not isinstance(c.transaction_session(), AsyncSession)]
    try:
        result = yield
    except BaseException:
        for config in configs:  # a failing test shows what it changed
            item.add_report_section("call", "netra-isolation diff", str(config.diff_state_sync()))
        raise
    for config in configs:
        results = config.validate_database_state_sync()
        if failed(results):
            pytest.fail(failure_message(results, config.diff_state_sync()), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """After pytest's own session finish, which tears down the fixtures a Ctrl-C left set up
    (their databases are released first, then the manager finishes), even when that raised."""
    try:
        return (yield)
    finally:
        _finish_session(session)


def _finish_session(session: pytest.Session) -> None:
    config = session.config
    if MANAGER in config.stash:
        config.stash[MANAGER].finish()
        set_default_manager(None)
    workeroutput: dict[str, Any] | None = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        manager = config.stash.get(MANAGER, None)
        workeroutput["netra_metrics"] = metrics_for(config).to_dict()
        workeroutput["netra_kept"] = manager.kept if manager else []


class _XdistController:
    """Collects the workers' numbers on the controller."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.kept: list[dict[str, Any]] = []

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {}) or {}
        metrics_for(self.config).merge(output.get("netra_metrics", {}))
        self.kept.extend(output.get("netra_kept", []))


SLOWEST = 3  # tests listed by database setup time in the summary


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if getattr(config, "workerinput", None) is not None:
        return
    metrics = metrics_for(config)
    counters = metrics.counters
    if not counters and not metrics.timings:
        return
    path = config.getoption("netra_metrics_json", None)
    if path:
        Path(path).write_text(
            json.dumps(metrics.to_dict() | {"summary": metrics.summary()}, indent=2)
        )
    tr = terminalreporter
    tr.write_sep("-", "netra-isolation")
    tr.write_line(
        f"templates built {counters['templates_built']}, reused {counters['templates_reused']}; "
        f"databases created {counters['databases_created']}, dropped "
        f"{counters['databases_dropped']}, kept {counters['databases_kept']}, "
        f"left behind {counters['databases_left_behind']}"
    )
    if counters["templates_pruned"]:
        tr.write_line(
            f"dropped {counters['templates_pruned']} template(s) built from older code "
            "(keep_superseded) or left half-built"
        )
    if orphans := counters["orphans_removed"]:
        tr.write_line(
            "removed 1 database left by a run that is over"
            if orphans == 1
            else f"removed {orphans} databases left by runs that are over"
        )
    summary = metrics.summary()
    width = max([16, *(len(phase) + 2 for phase in summary)])  # the longest phase's name fits
    tr.write_line(f"{'phase':<{width}}{'count':>7}{'median ms':>12}{'p95 ms':>10}{'total ms':>11}")
    for phase, row in summary.items():
        tr.write_line(
            f"{phase:<{width}}{row['count']:>7.0f}{row['median_ms']:>12.1f}"
            f"{row['p95_ms']:>10.1f} {row['total_ms']:>10.1f}"
        )
    for backend, sizes in sorted(metrics.sizes.items()):
        ordered = sorted(sizes)
        tr.write_line(
            f"{backend} database sizes: median {ordered[len(ordered) // 2] / 1024:.0f} kB, "
            f"max {ordered[-1] / 1024:.0f} kB over {len(ordered)} databases"
        )
    slowest = sorted(
        ((entry["setup_s"], test) for test, entry in metrics.tests.items() if "setup_s" in entry),
        reverse=True,
    )[:SLOWEST]
    if slowest:
        tr.write_line("slowest database setups (all tests: --netra-metrics-json):")
        for seconds, test in slowest:
            tr.write_line(f"{seconds * 1000:>10.1f} ms  {test}")
    manager = config.stash.get(MANAGER, None)
    kept = list(manager.kept if manager else [])
    controller = config.pluginmanager.get_plugin("netra_isolation_xdist")
    if controller is not None:
        kept += controller.kept
    for entry in kept:
        tr.write_line(f"kept for {entry['test']}: {entry['url']}")
