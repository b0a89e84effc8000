"""A project whose code makes its own engines (settings `engines`, `postgres_driver`,
`process_setup`): `ledger`, written here, builds a psycopg2 `Engine` and an asyncpg
`AsyncEngine` at import time from an environment variable that names a database that does
not exist, on the running server; its services commit on them and catch
`psycopg2.errors.UniqueViolation`. Run by pytester in a subprocess, serially and with
`-n 2`, at both levels."""

from __future__ import annotations

from pathlib import Path

import pytest

from netra_isolation import PostgreSQLTestIsolator

ROOT = Path(__file__).resolve().parents[2]
ABSENT = "ledger_dev_absent"  # the database the app's own URL names: it does not exist

FILES = {
    "pyproject.toml": """
[project]
name = "ledger"
version = "1.0"

[tool.pytest.ini_options]
pythonpath = ["."]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"

[tool.netra_isolation]
postgres_metadata = "ledger.models:metadata"
engines = ["ledger.db:engine", "ledger.db:async_engine"]
sessions = ["ledger.db:Session", "ledger.db:Scoped"]
process_setup = "ledger.plugins:register"
""",
    "ledger/__init__.py": "",
    "ledger/models.py": """
from sqlalchemy import Column, Integer, MetaData, Table, Text

metadata = MetaData()
accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("balance", Integer, nullable=False, default=0),
)
""",
    "ledger/db.py": """
import os

from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import scoped_session, sessionmaker

# made at import time, as apps do, from the environment
engine = create_engine(os.environ["LEDGER_DATABASE_URL"])
async_engine = create_async_engine(
    os.environ["LEDGER_DATABASE_URL"].replace("+psycopg2", "+asyncpg")
)
Session = sessionmaker(engine)
Scoped = scoped_session(sessionmaker(engine))  # a registry, as web frameworks keep
""",
    "ledger/plugins.py": """
import os

REGISTERED = []  # what the app's setup registers, in-process


def register():
    REGISTERED.append(os.getpid())
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.environ["LEDGER_SETUP_LOG"], "a") as log:
        log.write(f"{worker} {os.getpid()}\\n")
""",
    "ledger/services.py": """
import psycopg2.errors
from sqlalchemy import func, insert, select

from ledger.db import Session, async_engine, engine
from ledger.models import accounts


class DuplicateAccount(Exception):
    pass


def open_account(name, balance=0):
    \"\"\"Commits on the app's own engine.\"\"\"
    with engine.begin() as connection:
        connection.execute(insert(accounts).values(name=name, balance=balance))


def open_account_in_session(name):
    with Session() as session:
        session.execute(insert(accounts).values(name=name, balance=0))
        session.commit()


def add_account(session, name):
    \"\"\"The app's own handler of a duplicate, on the driver's cursor of `session`.\"\"\"
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute("SAVEPOINT add_account")
        cursor.execute("INSERT INTO accounts (name, balance) VALUES (%s, 0)", (name,))
    except psycopg2.errors.UniqueViolation as exc:
        cursor.execute("ROLLBACK TO SAVEPOINT add_account")
        raise DuplicateAccount(name) from exc


def names():
    with engine.connect() as connection:
        return connection.execute(select(accounts.c.name).order_by(accounts.c.name)).scalars().all()


async def count_async():
    async with async_engine.connect() as connection:
        return await connection.scalar(select(func.count()).select_from(accounts))
""",
    "tests/test_ledger.py": """
import os

import psycopg2
import pytest
from sqlalchemy import func, insert, select, text

import netra_isolation
from ledger import db, plugins, services
from ledger.models import accounts

database = pytest.mark.isolation(level="database")
transaction = pytest.mark.isolation(level="transaction")


def database_of(connection):
    return connection.scalar(text("SELECT current_database()"))


@database
@pytest.mark.parametrize("n", range(3))
def test_the_services_writes_land_in_the_tests_own_database(isolated_postgres_sync, n):
    session, config = isolated_postgres_sync
    assert plugins.REGISTERED == [os.getpid()]  # the app's setup ran, once, before
    services.open_account(f"account{n}", 10)  # committed on the app's engine
    services.open_account_in_session(f"session{n}")  # and on its own sessionmaker
    # only this test's rows: the earlier tests' are in databases of their own
    assert services.names() == [f"account{n}", f"session{n}"]
    assert session.execute(select(accounts.c.name)).scalars().all() == [
        f"account{n}",
        f"session{n}",
    ]
    with db.engine.connect() as connection:
        assert database_of(connection) == config.databases["postgres"].name
    with db.Session() as bound:  # bound by the setting `sessions`, with the app's driver
        assert bound.connection().dialect.driver == "psycopg2"
        assert database_of(bound) == config.databases["postgres"].name


@database
def test_the_apps_bound_sessions_keep_a_connection_and_outlive_a_restore(isolated_postgres_sync):
    session, config = isolated_postgres_sync
    with db.Session() as bound:
        pid = bound.scalar(text("SELECT pg_backend_pid()"))
        bound.execute(insert(accounts).values(name="kept", balance=0))
        bound.commit()
    with db.Session() as bound:  # the connection went back to a pool, not closed
        assert bound.scalar(text("SELECT pg_backend_pid()")) == pid
    # the app's scoped session left in a transaction (a read autobegins one), across both
    assert db.Scoped.execute(select(accounts.c.name)).scalars().all() == ["kept"]
    snapshot = config.create_snapshot_sync("postgres", "kept")
    services.open_account_in_session("gone")
    assert db.Scoped.execute(select(func.count()).select_from(accounts)).scalar() == 2
    config.restore_snapshot_sync(snapshot)  # ends the pooled connection; the next is new
    with db.Session() as bound:
        assert bound.execute(select(accounts.c.name)).scalars().all() == ["kept"]
    assert db.Scoped.execute(select(accounts.c.name)).scalars().all() == ["kept"]


@database
async def test_the_async_engine_follows_too(isolated_postgres):
    session, config = isolated_postgres
    await session.execute(insert(accounts).values(name="async", balance=1))
    await session.commit()
    assert await services.count_async() == 1
    async with db.async_engine.connect() as connection:
        assert await connection.scalar(text("SELECT current_database()")) == (
            config.databases["postgres"].name
        )


@transaction
def test_at_transaction_level_the_engine_refuses(isolated_postgres_sync):
    with pytest.raises(netra_isolation.ConfigurationError) as refused:
        services.open_account("nowhere")
    message = str(refused.value)
    assert "ledger.db:engine" in message
    assert "level='database'" in message


@transaction
@pytest.mark.parametrize("n", range(2))
def test_at_transaction_level_the_apps_session_is_rolled_back(isolated_postgres_sync, n):
    session, config = isolated_postgres_sync
    services.open_account_in_session(f"rolled_back{n}")  # a SAVEPOINT of the test's
    assert session.execute(select(accounts.c.name)).scalars().all() == [f"rolled_back{n}"]


@pytest.mark.parametrize(
    "level",
    [pytest.param("database", marks=database), pytest.param("transaction", marks=transaction)],
)
def test_the_apps_handler_of_a_duplicate_catches_the_tools_session(isolated_postgres_sync, level):
    session, config = isolated_postgres_sync
    assert config.level == level
    dbapi = session.connection().connection.driver_connection
    assert isinstance(dbapi, psycopg2.extensions.connection)  # the app's driver
    session.execute(insert(accounts).values(name="twice", balance=0))
    with pytest.raises(services.DuplicateAccount):
        services.add_account(session, "twice")
    services.add_account(session, "once")  # the session goes on after the handler
    assert sorted(session.execute(select(accounts.c.name)).scalars()) == ["once", "twice"]


def test_z_a_test_without_a_database_gets_one_of_its_own_not_the_apps():
    # no database fixture: never the engine's own URL (a database that does not exist),
    # nor a pooled connection to another test's database
    services.open_account("mine")
    with db.engine.connect() as connection:
        name = database_of(connection)
    assert name != "ledger_dev_absent"
    assert name.startswith(os.environ["NETRA_ISOLATION_PREFIX"] + "_")
    assert services.names() == ["mine"]
""",
}


@pytest.fixture
def app(
    pytester: pytest.Pytester,
    app_templates: PostgreSQLTestIsolator,
    monkeypatch: pytest.MonkeyPatch,
) -> pytest.Pytester:
    for name, text in FILES.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.lstrip())
    settings = app_templates.settings
    url = app_templates.server.url(ABSENT, "psycopg2").render_as_string(hide_password=False)
    monkeypatch.setenv("NETRA_ISOLATION_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("NETRA_ISOLATION_PREFIX", settings.prefix)
    monkeypatch.setenv("LEDGER_DATABASE_URL", url)
    monkeypatch.setenv("LEDGER_SETUP_LOG", str(pytester.path / "setup.log"))
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # this suite's own
    return pytester


def run(app: pytest.Pytester, *args: str) -> pytest.RunResult:
    return app.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=240)


def setup_log(app: pytest.Pytester) -> list[list[str]]:
    path = app.path / "setup.log"
    lines = path.read_text().splitlines() if path.exists() else []
    path.unlink(missing_ok=True)
    return [line.split() for line in lines]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_the_apps_engines_follow_each_test_at_both_levels(
    app: pytest.Pytester, workers: list[str]
) -> None:
    result = run(app, *workers)
    result.assert_outcomes(passed=11)
    log = setup_log(app)
    expected = {"gw0", "gw1"} if workers else {"main"}
    assert sorted(worker for worker, _ in log) == sorted(expected)  # once per process


def test_the_process_setup_runs_in_each_worker_when_the_template_is_reused(
    app: pytest.Pytester,
) -> None:
    first = run(app, "-n", "2")
    first.assert_outcomes(passed=11)
    first.stdout.fnmatch_lines(["templates built 1, reused *"])
    assert len(setup_log(app)) == 2
    again = run(app, "-n", "2")
    again.assert_outcomes(passed=11)
    again.stdout.fnmatch_lines(["templates built 0, reused *"])  # nothing was built
    log = setup_log(app)
    assert sorted(worker for worker, _ in log) == ["gw0", "gw1"]
    assert len({pid for _, pid in log}) == 2


def test_a_misspelt_engine_is_named_with_its_setting(app: pytest.Pytester) -> None:
    pyproject = app.path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace("ledger.db:engine", "ledger.db:engin"))
    result = run(app, "-k", "land_in and 0")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*'ledger.db:engin' of the setting 'engines'*has no 'engin'*"])
