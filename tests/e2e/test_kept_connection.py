"""At `transaction` level a worker keeps one connection per database (issue 9): each test's
outer transaction on it is rolled back and the connection reset, so nothing of one test
reaches the next: not its commits, rollbacks or integrity errors, not a failure, not a
broken connection, not its session state (SET values, search_path, temporary tables,
prepared statements, advisory locks)."""

from __future__ import annotations

import pytest

# The test bodies, sync and async alike: `q(sql)` runs a statement on the test's session and
# gives its rows; `escape()` commits the test's outer transaction, so what follows outlives it
# (as a test that commits the connection itself would); `pid()` is the backend's.
BODIES = """
import psycopg
import pytest
from sqlalchemy import exc, text

seen = {}
ROW = "INSERT INTO test_users (email, full_name) VALUES ('same@example.com', 'x')"


def test_01_commits(db, pid):
    seen["pid"] = pid
    q(db, ROW)
    commit(db)
    assert q(db, "SELECT count(*) FROM test_users") == [(1,)]


def test_02_nothing_left_and_same_connection(db, pid):
    assert pid == seen["pid"]  # the connection is the same one: reused
    assert q(db, "SELECT count(*) FROM test_users") == [(0,)]


def test_03_integrity_error(db, pid):
    q(db, ROW)
    commit(db)
    with pytest.raises(exc.IntegrityError):
        q(db, ROW)
    rollback(db)
    q(db, ROW.replace("same@", "other@"))
    commit(db)


def test_04_after_the_integrity_error(db, pid):
    assert pid == seen["pid"]
    assert q(db, "SELECT count(*) FROM test_users") == [(0,)]


def test_05_fails_after_a_commit(db, pid):
    q(db, ROW)
    commit(db)
    assert False, "this test fails on purpose"


def test_06_after_the_failure(db, pid):
    assert pid == seen["pid"]
    assert q(db, "SELECT count(*) FROM test_users") == [(0,)]


def test_07_leaves_session_state(db, pid):
    escape(db)
    q(db, "SET search_path TO pg_catalog")
    q(db, "SET statement_timeout = 4321")
    q(db, "CREATE TEMPORARY TABLE leftover (x int)")
    q(db, "PREPARE leftover_plan AS SELECT 1")
    q(db, "SELECT pg_advisory_lock(4242)")
    q(db, "INSERT INTO public.test_users (email, full_name) VALUES ('kept@x', 'x')")
    commit_connection(db)


def test_08_no_session_state_left(db, pid):
    assert pid == seen["pid"]  # still the reused connection, reset
    assert q(db, "SHOW search_path") == [('"$user", public',)]
    assert q(db, "SHOW statement_timeout") == [("0",)]
    assert q(db, "SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()") == [
        (0,)
    ]
    assert q(db, "SELECT count(*) FROM pg_prepared_statements WHERE name = 'leftover_plan'") == [
        (0,)
    ]
    assert q(
        db,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()",
    ) == [(0,)]
    # what the test committed on purpose, past its transaction, is the one thing that stays
    # (no tool can take back a commit); clean it up for the tests after
    q(db, "DELETE FROM test_users WHERE email = 'kept@x'")
    escape(db)


def test_09_terminates_its_own_connection(db, pid):
    q(db, ROW)
    commit(db)
    with pytest.raises(exc.OperationalError):
        q(db, "SELECT pg_terminate_backend(pg_backend_pid())")


def test_10_gets_a_working_connection(db, pid):
    assert pid != seen["pid"]
    seen["pid"] = pid
    assert q(db, "SELECT count(*) FROM test_users") == [(0,)]


def test_11_terminated_between_tests(netra_manager):
    # no session of its own: the kept connection is idle, and ended from outside
    server = netra_manager.postgres.server
    with server.connect() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (seen["pid"],))


def test_12_gets_a_working_connection_again(db, pid):
    assert pid != seen["pid"]
    assert q(db, "SELECT count(*) FROM test_users") == [(0,)]
"""

SYNC = (
    """
import pytest
from sqlalchemy import text

pytestmark = pytest.mark.isolation(level="transaction")


@pytest.fixture
def db(isolated_postgres_sync):
    return isolated_postgres_sync[0]


@pytest.fixture
def pid(db):
    return db.execute(text("SELECT pg_backend_pid()")).scalar()


def q(session, sql):
    result = session.execute(text(sql))
    return [tuple(r) for r in result] if result.returns_rows else []


def commit(session):
    session.commit()


def rollback(session):
    session.rollback()


def escape(session):
    session.connection().get_transaction().commit()


def commit_connection(session):
    session.connection().commit()
"""
    + BODIES
)

# the async twin: the same bodies, each statement run through the session's greenlet
ASYNC = (
    """
import pytest
import pytest_asyncio

pytestmark = pytest.mark.isolation(level="transaction")


@pytest_asyncio.fixture
async def db(isolated_postgres):
    return isolated_postgres[0]


@pytest_asyncio.fixture
async def pid(db):
    return (await db.execute(text("SELECT pg_backend_pid()"))).scalar()


def _sync(session):
    return session.sync_session


def q(session, sql):
    result = _sync(session).execute(text(sql))
    return [tuple(r) for r in result] if result.returns_rows else []


def commit(session):
    _sync(session).commit()


def rollback(session):
    _sync(session).rollback()


def escape(session):
    _sync(session).connection().get_transaction().commit()


def commit_connection(session):
    _sync(session).connection().commit()
"""
    + BODIES
)


def _greenlet(source: str) -> str:
    """Every `def test_..(db, ...)` of the async twin runs in the session's greenlet."""
    lines = []
    for line in source.splitlines():
        if line.startswith("def test_") and "(db" in line:
            name = line[4 : line.index("(")]
            params = line[line.index("(") + 1 : line.index(")")]
            lines.append(f"async def {name}({params}):")
            lines.append(f"    await db.run_sync(lambda _: _{name}({params}))")
            lines.append("")
            lines.append(f"def _{name}({params}):")
            continue
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.both_servers
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_nothing_of_a_test_reaches_the_next(project: pytest.Pytester, run, kind: str) -> None:
    source = SYNC if kind == "sync" else _greenlet(ASYNC)
    project.makepyfile(test_kept=source)
    result = run("-p", "no:randomly")
    result.assert_outcomes(passed=11, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_kept.py::test_05_fails_after_a_commit*"])
