"""Per-test database setup, side by side in one run, on the same throwaway server.

    .venv/bin/python -m benchmarks.run [--tests 20] [--scenario basic_workflow]

Each approach gives N "tests" a database migrated to `thread_messages` and seeded with the
scenario, then takes it away; we time setup + teardown per test and the session start (what
happens before the first test: template builds). The alternatives are pytest-postgresql's
DatabaseJanitor, loading per test (its default) and from a per-session template (its fast
path). Numbers are wall-clock on a shared machine: compare within one run, not across runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pytest_postgresql.janitor import DatabaseJanitor
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from netra_isolation import PostgreSQLTestIsolator, Settings, TemplateSpec
from netra_isolation.migrations import alembic_config, upgrade
from netra_isolation.seed_data_manager import registry
from netra_isolation.test_database_manager import TestDatabaseManager

ROOT = Path(__file__).resolve().parents[1]
Approach = tuple[Callable[[], None], Callable[[int], None]]
SCHEMA = "thread_messages"


def migrate_and_seed(isolator: PostgreSQLTestIsolator, database: str, scenario: str) -> None:
    """What a suite without templates does for every test: Alembic, then the factories."""
    cfg = alembic_config(isolator.settings.alembic_ini, "postgres")
    engine = create_engine(isolator.server.url(database), poolclass=NullPool)
    with engine.begin() as connection:
        upgrade(cfg, connection, SCHEMA)
        with Session(bind=connection) as session:
            registry.seed_postgres(scenario, session)
    engine.dispose()


def touch(isolator: PostgreSQLTestIsolator, database: str) -> None:
    """The test itself: one query, so every approach hands over a usable database."""
    engine = create_engine(isolator.server.url(database), poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT count(*) FROM messages")).scalar()
    engine.dispose()


@contextmanager
def janitor(isolator: PostgreSQLTestIsolator, name: str, template: str | None) -> Iterator[None]:
    server = isolator.server
    database = DatabaseJanitor(
        user=server.user,
        host=server.host,
        port=server.port,
        password=server.password,
        dbname=name,
        template_dbname=template,
    )
    database.init()
    try:
        yield
    finally:
        database.drop()


def pytest_postgresql_per_test(
    isolator: PostgreSQLTestIsolator, scenario: str
) -> Callable[[int], None]:
    def test(i: int) -> None:
        name = f"bench_ppg_{uuid.uuid4().hex[:10]}"
        with janitor(isolator, name, None):
            migrate_and_seed(isolator, name, scenario)
            touch(isolator, name)

    return test


def pytest_postgresql_template(isolator: PostgreSQLTestIsolator, scenario: str) -> Approach:
    template = f"bench_ppg_tpl_{uuid.uuid4().hex[:10]}"
    holder: dict[str, DatabaseJanitor] = {}

    def start() -> None:  # pytest-postgresql builds its template once per session
        server = isolator.server
        holder["t"] = DatabaseJanitor(
            user=server.user,
            host=server.host,
            port=server.port,
            password=server.password,
            dbname=template,
            as_template=True,
        )
        holder["t"].init()
        migrate_and_seed(isolator, template, scenario)
        admin = server.connect()
        admin.execute(f'ALTER DATABASE "{template}" WITH ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (template,),
        )
        admin.close()

    def test(i: int) -> None:
        name = f"bench_ppgt_{uuid.uuid4().hex[:10]}"
        with janitor(isolator, name, template):
            touch(isolator, name)

    return start, test


def netra_database(manager: TestDatabaseManager, scenario: str) -> Approach:
    isolator = manager.postgres

    def start() -> None:
        isolator.ensure_template(TemplateSpec(SCHEMA, scenario))

    def test(i: int) -> None:
        test_id = f"bench_{i}"
        db = isolator.create_isolated_database_sync(test_id, SCHEMA, scenario)
        touch(isolator, db.name)
        manager.release("postgres", test_id)  # as the plugin does: dropped off the test's clock

    return start, test


def netra_transaction(manager: TestDatabaseManager, scenario: str) -> Approach:
    isolator = manager.postgres

    def start() -> None:
        isolator.create_isolated_database_sync("bench_worker", SCHEMA, scenario)

    def test(i: int) -> None:
        with isolator.rollback_test_context_sync("bench_worker") as session:
            session.execute(text("SELECT count(*) FROM messages")).scalar()

    return start, test


def measure(
    start: Callable[[], None] | None,
    test: Callable[[int], None],
    n: int,
    finish: Callable[[], object] = lambda: None,
) -> dict[str, float]:
    began = time.perf_counter()
    if start is not None:
        start()
    session_start = time.perf_counter() - began
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        test(i)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    finish()  # the session end: what is still being dropped
    session_end = time.perf_counter() - t0
    ordered = sorted(times)
    return {
        "session start ms": session_start * 1000,
        "median ms": statistics.median(ordered) * 1000,
        "p95 ms": ordered[min(n - 1, round(0.95 * (n - 1)))] * 1000,
        "total s": (session_start + sum(times) + session_end),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=20)
    parser.add_argument("--scenario", default="basic_workflow")
    args = parser.parse_args()
    registry.load(("factories.scenarios",))
    settings = Settings.load(root=ROOT)

    rows: list[tuple[str, dict[str, float]]] = []
    fresh = PostgreSQLTestIsolator(settings)
    rows.append(
        (
            "pytest-postgresql, migrate + seed per test",
            measure(None, pytest_postgresql_per_test(fresh, args.scenario), args.tests),
        )
    )
    rows.append(
        (
            "pytest-postgresql, template per session",
            measure(*pytest_postgresql_template(fresh, args.scenario), args.tests),
        )
    )
    # a new isolator: what a second `pytest` run sees (the template was built by an earlier run)
    fresh.ensure_template(TemplateSpec(SCHEMA, args.scenario))
    for label, approach in (
        ("netra_isolation, level=database", netra_database),
        ("netra_isolation, level=transaction", netra_transaction),
    ):
        manager = TestDatabaseManager(settings)
        rows.append((label, measure(*approach(manager, args.scenario), args.tests, manager.finish)))
    fresh.close()

    columns = ["session start ms", "median ms", "p95 ms", "total s"]
    print(f"\n{args.tests} tests, schema {SCHEMA}, scenario {args.scenario}\n")
    print(f"{'approach':<44}" + "".join(f"{c:>18}" for c in columns))
    for label, row in rows:
        print(f"{label:<44}" + "".join(f"{row[c]:>18.1f}" for c in columns))


if __name__ == "__main__":
    main()
