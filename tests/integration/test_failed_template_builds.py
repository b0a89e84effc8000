"""A template whose build fails is built once a run: the test that asked gets the user's own
error; every later one, in this process or another of the same run (xdist workers share the
run id and cache_dir), a one-line TemplateBuildError naming that test, with no build, no lock
and no connection for it. Another run builds again."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import NetraIsolationError, PostgreSQLTestIsolator, Settings
from netra_isolation.errors import FAILED_TEMPLATE, TemplateBuildError
from netra_isolation.isolator import FAILED_BUILDS
from netra_isolation.naming import Owner
from netra_isolation.templates import SetupBuilder

ROOT = Path(__file__).resolve().parents[2]


class Broken:
    """A setup callable that fails, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, connection: Any) -> None:
        self.calls += 1
        raise RuntimeError("the tenant trigger needs psycopg2")


@pytest.fixture
def runs() -> Iterator[Callable[..., PostgreSQLTestIsolator]]:
    """`runs(builder, run=...)`: an isolator as a process of run `run` would have it, on a
    prefix of the test's own; what they leave (templates, memo files) goes afterwards."""
    settings = Settings.load(root=ROOT).with_overrides(prefix=f"nifail{uuid.uuid4().hex[:6]}")
    made: list[PostgreSQLTestIsolator] = []

    def make(builder: Any, run: str, worker: str = "gw0") -> PostgreSQLTestIsolator:
        owner = Owner.new_run(worker=worker, run=run)
        isolator = PostgreSQLTestIsolator(settings, builder=builder, owner=owner)
        made.append(isolator)
        return isolator

    yield make
    for isolator in made:
        for name in isolator.templates():
            isolator.drop_template(name)
        isolator.close()
        for memo in (settings.cache_dir / FAILED_BUILDS).glob(f"{isolator.owner.run}_*"):
            memo.unlink(missing_ok=True)


def test_the_users_error_once_then_one_line_naming_the_first_test(
    runs: Any, request: pytest.FixtureRequest
) -> None:
    """Named after the test pytest runs (the plugin says which), whatever the caller says."""
    setup = Broken()
    isolator = runs(SetupBuilder(setup), run=uuid.uuid4().hex[:12])
    with pytest.raises(RuntimeError, match="needs psycopg2") as first:
        isolator.create_isolated_database_sync("t1", nodeid="worker:gw0")
    assert not isinstance(first.value, NetraIsolationError)  # the user's own error, as raised
    template = getattr(first.value, FAILED_TEMPLATE)  # what the plugin shows with user frames

    # no second attempt: nothing on the server is asked for, not even the build's lock
    def no_server(*args: object) -> None:
        raise AssertionError("a template that failed in this run was looked at again")

    isolator._use_template = no_server
    isolator._build_lock = no_server
    for test_id in ("t2", "t3"):
        with pytest.raises(TemplateBuildError) as later:
            isolator.create_isolated_database_sync(test_id)
        assert later.value.first == request.node.nodeid
        assert later.value.template == template
        assert later.value.summary == "RuntimeError: the tenant trigger needs psycopg2"
        assert len(str(later.value).splitlines()) == 1
        assert str(later.value).endswith(f"in full at {request.node.nodeid}")
    assert setup.calls == 1


def test_another_process_of_the_run_does_not_build_it_again_another_run_does(
    runs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Outside pytest's tests (no test running), named after the test the caller gives."""
    monkeypatch.setattr("netra_isolation.isolator.running_test", lambda: None)
    setup = Broken()
    run = uuid.uuid4().hex[:12]
    gw0 = runs(SetupBuilder(setup), run=run, worker="gw0")
    with pytest.raises(RuntimeError):
        gw0.create_isolated_database_sync("t1", nodeid="tests/test_a.py::test_one")
    gw1 = runs(SetupBuilder(setup), run=run, worker="gw1")  # another worker of the same run
    with pytest.raises(TemplateBuildError, match=r"in full at tests/test_a\.py::test_one$"):
        gw1.create_isolated_database_sync("t2", nodeid="tests/test_a.py::test_two")
    assert setup.calls == 1
    later = runs(SetupBuilder(setup), run=uuid.uuid4().hex[:12])  # the next run tries again
    with pytest.raises(RuntimeError):
        later.create_isolated_database_sync("t1", nodeid="tests/test_a.py::test_one")
    assert setup.calls == 2


def test_a_build_that_works_after_a_fix_is_not_refused(runs: Any) -> None:
    """The memo is of a template, by its fingerprint: code changed mid-run builds again."""
    setup = Broken()
    isolator = runs(SetupBuilder(setup), run=uuid.uuid4().hex[:12])
    with pytest.raises(RuntimeError):
        isolator.create_isolated_database_sync("t1")
    isolator._builder = SetupBuilder(lambda connection: None, version="fixed")
    db = isolator.create_isolated_database_sync("t2")
    assert db.template is not None and db.template.built
    isolator.cleanup_all_sync()
