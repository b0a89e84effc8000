"""More than one database per test: fixtures of the project's own, from fixture factories,
each with its own template builder, beside the main fixture; at both levels, under xdist."""

from __future__ import annotations

import pytest

CONFTEST = """
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table

from netra_isolation import MetadataBuilder, SqlFilesBuilder
from netra_isolation.fixtures import clickhouse_fixture, postgres_fixture

audit = MetaData()
Table("entries", audit, Column("id", Integer, primary_key=True), Column("what", String(50)))

audit_db = postgres_fixture(MetadataBuilder(audit))
audit_db_tx = postgres_fixture(MetadataBuilder(audit), level="transaction")
audit_db_async = postgres_fixture(MetadataBuilder(audit), asynchronous=True)

(Path(__file__).parent / "hits.sql").write_text(
    "CREATE TABLE hits (id UInt64) ENGINE = MergeTree ORDER BY id;\\n"
)
hits_db = clickhouse_fixture(SqlFilesBuilder([Path(__file__).parent / "hits.sql"]))
"""

TESTS = """
import pytest
from sqlalchemy import text


def tables(session):
    return set(session.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())


@pytest.mark.parametrize("n", range(3))
@pytest.mark.parametrize("audit", ["audit_db", "audit_db_tx"])
def test_main_and_audit_databases(request, isolated_postgres_sync, audit, n):
    main, main_config = isolated_postgres_sync
    session, config = request.getfixturevalue(audit)
    assert config.level == ("transaction" if audit.endswith("_tx") else "database")
    assert "test_users" in tables(main) and "entries" not in tables(main)
    assert tables(session) == {"entries"}
    session.execute(text("INSERT INTO entries (id, what) VALUES (1, 'same id every time')"))
    session.commit()
    assert session.execute(text("SELECT count(*) FROM entries")).scalar() == 1
    assert config.databases["postgres"].name != main_config.databases["postgres"].name


async def test_async_audit(audit_db_async):
    session, config = audit_db_async
    await session.execute(text("INSERT INTO entries (id, what) VALUES (1, 'x')"))
    await session.commit()
    assert (await session.execute(text("SELECT count(*) FROM entries"))).scalar() == 1


@pytest.mark.parametrize("n", range(2))
def test_clickhouse_beside_the_main_one(hits_db, isolated_clickhouse_sync, n):
    client, name, config = hits_db
    main, main_name, _ = isolated_clickhouse_sync
    client.insert("hits", [{"id": 1}])
    assert client.count("hits") == 1 and name != main_name
    assert main.execute("EXISTS TABLE hits") == [(0,)]
"""


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_further_databases_from_fixture_factories(project, run, workers) -> None:
    project.makeconftest(CONFTEST)
    project.makepyfile(test_more=TESTS)
    result = run(*workers)
    result.assert_outcomes(passed=9)
    result.stdout.fnmatch_lines(["*left behind 0*"])
