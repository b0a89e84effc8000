"""State validation and state diffs on real databases: passing on a fresh clone, failing with
a named check after each kind of damage, and diffs that list exactly what a test changed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from factories import UserFactory
from netra_isolation import (
    ClickHouseTestIsolator,
    PostgreSQLTestIsolator,
    Settings,
    TestDatabaseManager,
    scenario,
    with_database_snapshots,
    with_isolated_clickhouse,
    with_isolated_postgres,
)
from netra_isolation.backends.clickhouse.isolator import OWNER_TABLE, SEALED_TABLE, quote
from netra_isolation.backends.clickhouse.server import EphemeralClickHouse
from netra_isolation.backends.postgres.server import EphemeralPostgres
from netra_isolation.checks import DISABLED, MIN_FREE_SLOTS, CheckResult
from netra_isolation.database_state_validator import DatabaseStateValidator, db_state_validator

ROOT = Path(__file__).resolve().parents[2]


def _event(user_id: int) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "user_id": user_id,
        "event_type": "x",
        "properties": "{}",
        "timestamp": datetime(2025, 2, 2),
    }


# Scenarios of this module's own, each used by one test, whose templates it drops afterwards.
# One whose seed makes fewer rows than it declares:
SHORT_SEED = "seeds_fewer_than_it_declares"
DECLARED = {"users": 4, "events": 6}
SEEDED = {"users": 3, "events": 5}


@scenario(
    SHORT_SEED,
    seed=5,
    counts=DECLARED,
    clickhouse=lambda ids: {"events": [_event(ids[0]) for _ in range(SEEDED["events"])]},
)
def _short_seed(session: Any) -> list[Any]:
    return list(UserFactory.create_batch(SEEDED["users"]))


# One whose templates the sealed-template test unseals:
UNSEALED = "unsealed_by_a_test"


@scenario(UNSEALED, seed=6, counts={"users": 2})
def _unsealed(session: Any) -> list[Any]:
    return list(UserFactory.create_batch(2))


def failing(results: dict[str, Any]) -> set[str]:
    return {
        f"{section}:{check['category']}.{check['name']}"
        for section, body in results.items()
        for check in body["checks"]
        if check["status"] == "failed"
    }


def check_named(results: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(c for c in results[section]["checks"] if c["name"] == name)
    return found


def manager_with(**settings: Any) -> TestDatabaseManager:
    """A manager of its own on this project's settings and servers, with `settings` changed
    (the suite's settings set the performance limit out of reach: pyproject.toml)."""
    return TestDatabaseManager(Settings.load(root=ROOT).with_overrides(**settings))


async def test_fresh_clone_passes_every_check() -> None:
    async with with_database_snapshots("test_valid", scenario="analytics") as env:
        results = await env["config"].validate_database_state()
        assert results["postgres"]["status"] == "passed"
        assert results["clickhouse"]["status"] == "passed"
        assert results["cross_database"]["status"] == "passed"
        categories = {c["category"] for c in results["postgres"]["checks"]}
        assert categories == {"connection", "schema", "data", "performance", "isolation"}
        report = db_state_validator.generate_validation_report(results)
        assert report.startswith("Database state validation: PASSED")
        assert "isolation.sealed_template" in report
        parsed = json.loads(db_state_validator.generate_validation_report(results, format="json"))
        assert parsed["postgres"]["status"] == "passed"


async def test_orphan_row_fails_referential_integrity() -> None:
    async with with_isolated_postgres("test_orphan", "thread_messages", "minimal") as (s, config):
        await s.execute(text("SET session_replication_role = replica"))  # constraints off
        await s.execute(
            text("INSERT INTO messages (thread_id, user_id, content) VALUES (999, 1, 'x')")
        )
        await s.commit()
        results = await config.validate_database_state()
        assert failing(results) == {"postgres:data.referential_integrity"}
        check = next(
            c for c in results["postgres"]["checks"] if c["name"] == "referential_integrity"
        )
        assert check["details"] == {"orphan_rows": {"messages(thread_id) -> threads": 1}}


async def test_dropped_column_fails_the_schema_checks() -> None:
    async with with_isolated_postgres("test_dropped", "user_management") as (session, config):
        await session.execute(text("ALTER TABLE api_keys DROP COLUMN revoked_at"))
        await session.commit()
        results = await config.validate_database_state()
        assert {
            "postgres:schema.matches_template",
            "postgres:schema.models_match",
        } <= failing(results)
        report = db_state_validator.generate_validation_report(results)
        assert "revoked_at" in report and report.startswith("Database state validation: FAILED")


async def test_event_with_unknown_user_fails_cross_database() -> None:
    async with with_database_snapshots("test_cross", scenario="analytics") as env:
        await env["clickhouse_client"].insert(
            "events",
            [
                {
                    "event_id": uuid.uuid4(),
                    "user_id": 4242,
                    "event_type": "x",
                    "properties": "{}",
                    "timestamp": datetime(2025, 2, 2),
                }
            ],
        )
        results = await env["config"].validate_database_state()
        assert failing(results) == {"cross_database:cross_database.relations"}
        details = results["cross_database"]["checks"][0]["details"]
        assert details == {"events.user_id -> users.id": {"missing": [4242], "count": 1}}


async def test_custom_checks_and_report_of_a_list() -> None:
    validator = DatabaseStateValidator()
    validator.register_check(
        "has_three_users",
        lambda ctx: ctx.handle.execute(text("SELECT count(*) FROM users")).scalar() == 3,
        category="business",
    )
    async with with_isolated_postgres("test_custom", "thread_messages", "minimal") as (_, config):
        results = await validator.validate(config)
        custom = next(c for c in results["postgres"]["checks"] if c["category"] == "business")
        assert custom["status"] == "passed"
    report = db_state_validator.generate_validation_report(
        [CheckResult("mine", "custom", "failed", "details here")]
    )
    assert "[ failed] custom.mine" in report and "FAILED" in report


async def wait_for_mutations(client: Any, seconds: float = 10) -> None:
    """ClickHouse 18.16 applies ALTER UPDATE in the background (no mutations_sync)."""
    pending = (
        f"SELECT count() FROM system.mutations WHERE database = '{client.database}' AND NOT is_done"
    )
    deadline = time.monotonic() + seconds
    while await client.scalar(pending):
        assert time.monotonic() < deadline, "mutation not applied in time"
        await asyncio.sleep(0.05)


async def test_diff_lists_exactly_what_the_test_changed() -> None:
    async with with_database_snapshots("test_diff", scenario="minimal") as env:
        session, client, config = env["postgres_session"], env["clickhouse_client"], env["config"]
        old_name = await session.scalar(text("SELECT full_name FROM users WHERE id = 1"))
        await session.execute(text("INSERT INTO organizations (name, slug) VALUES ('N', 'n')"))
        await session.execute(text("DELETE FROM messages WHERE id = 5"))
        await session.execute(text("UPDATE users SET full_name = 'Renamed' WHERE id = 1"))
        await session.commit()
        event = {
            "event_id": uuid.uuid4(),
            "user_id": 1,
            "event_type": "x",
            "properties": "{}",
            "timestamp": datetime(2025, 2, 2),
        }
        await client.insert("events", [event])
        diff = await config.diff_state()
        changed = {(t.backend, t.table) for t in diff.tables if not t.is_empty}
        assert changed == {
            ("postgres", "organizations"),
            ("postgres", "messages"),
            ("postgres", "users"),
            ("clickhouse", "events"),
        }
        orgs = diff.table("postgres", "organizations")
        assert [r["slug"] for r in orgs.added] == ["n"] and not orgs.removed and not orgs.changed
        assert [r["id"] for r in diff.table("postgres", "messages").removed] == [5]
        users = diff.table("postgres", "users")
        assert old_name and old_name != "Renamed"
        assert users.changed == [
            {"key": {"id": 1}, "changes": {"full_name": (old_name, "Renamed")}}
        ]
        events = diff.table("clickhouse", "events")
        assert [r["event_id"] for r in events.added] == [event["event_id"]] and not events.removed
        # An updated ClickHouse row is a change, keyed by the model's (here unique) key.
        snapshot_ch = await config.create_snapshot("clickhouse", "with_event")
        props = '{"v": 2}'
        await client.execute(
            f"ALTER TABLE events UPDATE properties = '{props}' "
            f"WHERE event_id = '{event['event_id']}'"
        )
        await wait_for_mutations(client)
        events = (await config.diff_state(snapshot_ch)).table("clickhouse", "events")
        assert events.key == ["event_id"] and not events.added and not events.removed
        assert events.changed == [
            {"key": {"event_id": event["event_id"]}, "changes": {"properties": ("{}", props)}}
        ]
        snapshot = await config.create_snapshot("postgres", "after")
        assert (await config.diff_state(snapshot)).is_empty
        assert f"~ {{'id': 1}}: full_name: {old_name!r} -> 'Renamed'" in diff.render()


async def test_transaction_level_checks_see_the_tests_uncommitted_work() -> None:
    """At `transaction` level only the test's own connection sees its work: validation and
    diffs read through it (in SAVEPOINTs), and the test's transaction is left as it was."""
    async with with_isolated_postgres(
        "test_tx_view", "thread_messages", "minimal", level="transaction"
    ) as (session, config):
        await session.execute(text("INSERT INTO organizations (name, slug) VALUES ('T', 't')"))
        await session.commit()  # a SAVEPOINT: still uncommitted for everyone else
        diff = await config.diff_state()
        assert [r["slug"] for r in diff.table("postgres", "organizations").added] == ["t"]
        assert failing(await config.validate_database_state()) == set()

        await session.execute(text("SET session_replication_role = replica"))
        await session.execute(text("DELETE FROM threads WHERE id = 1"))
        results = await config.validate_database_state()
        assert failing(results) == {"postgres:data.referential_integrity"}
        # the checks' SAVEPOINTs are gone; the test's own work is intact
        assert await session.scalar(text("SELECT count(*) FROM organizations WHERE slug = 't'"))
    async with with_isolated_postgres(
        "test_tx_after", "thread_messages", "minimal", level="transaction"
    ) as (session, config):
        assert await session.scalar(text("SELECT count(*) FROM threads WHERE id = 1")) == 1
        assert (await config.diff_state()).is_empty


async def test_another_tests_connection_fails_the_isolation_check() -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    async with with_isolated_postgres("test_watched", "user_management") as (session, config):
        isolator = config.isolator("postgres")
        own = make_url(isolator.database_url(config.test_id, "psycopg"))
        other = own.update_query_dict({"application_name": isolator.application_name("test_b")})
        engines = [create_engine(url, poolclass=NullPool) for url in (own, other)]
        try:
            with engines[0].connect():  # this test's own
                assert failing(await config.validate_database_state()) == set()
                with engines[1].connect():  # and one of test_b's
                    results = await config.validate_database_state()
            assert failing(results) == {"postgres:isolation.no_foreign_sessions"}
            check = next(
                c for c in results["postgres"]["checks"] if c["name"] == "no_foreign_sessions"
            )
            tag = isolator.application_name("test_b")
            assert check["details"] == {"sessions_of_other_tests": [tag]}
        finally:
            for engine in engines:
                engine.dispose()


@pytest.mark.isolation(level="transaction", scenario="analytics")
async def test_full_stack_at_transaction_level_checks_what_the_test_sees(isolated_full_stack):
    """PostgreSQL through the test's connection (its uncommitted delete), ClickHouse alongside:
    the cross-database check finds events whose user the test deleted."""
    session, config = isolated_full_stack["postgres_session"], isolated_full_stack["config"]
    await session.execute(text("SET session_replication_role = replica"))
    await session.execute(text("DELETE FROM users WHERE id = 1"))
    results = await config.validate_database_state()
    assert list(results) == ["postgres", "clickhouse", "cross_database"]
    assert "cross_database:cross_database.relations" in failing(results)
    assert results["clickhouse"]["status"] == "passed"
    diff = await config.diff_state()
    assert [r["id"] for r in diff.table("postgres", "users").removed] == [1]
    assert diff.table("clickhouse", "events").is_empty


@pytest.mark.parametrize(("limit_ms", "fails"), [(0.0, True), (1e9, False)])
async def test_performance_check_fails_any_query_over_the_limit(
    limit_ms: float, fails: bool
) -> None:
    """`validation_query_limit_ms`: 0 makes every representative query too slow, a limit out
    of reach none; every table's count is timed, on both backends."""
    manager = manager_with(validation_query_limit_ms=limit_ms)
    try:
        async with with_database_snapshots("test_perf", scenario="minimal", manager=manager) as env:
            results = await env["config"].validate_database_state()
            session, client = env["postgres_session"], env["clickhouse_client"]
            pg_tables = (
                await session.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                        "AND tablename <> 'alembic_version'"
                    )
                )
            ).scalars()
            ch_tables = [r[0] for r in await client.execute("SHOW TABLES")]
    finally:
        manager.finish()
    performance = {f"{b}:performance.representative_queries" for b in ("postgres", "clickhouse")}
    assert failing(results) == (performance if fails else set())
    timed = {"postgres": sorted(pg_tables), "clickhouse": sorted(ch_tables)}
    timed["clickhouse"].remove("_netra_owner")
    for backend, tables in timed.items():
        details = check_named(results, backend, "representative_queries")["details"]
        assert details["limit_ms"] == limit_ms
        assert sorted(details["ms"]) == [f"count {t}" for t in tables]
        assert details.get("slower_than_limit", []) == (sorted(details["ms"]) if fails else [])


async def test_a_database_out_of_reach_fails_connectivity_and_skips_the_rest() -> None:
    """PostgreSQL refuses connections to the test's database, ClickHouse's is gone: each
    backend's connectivity fails saying why, its other checks are skipped, not failed, and the
    cross-database check, which needs PostgreSQL, is skipped too."""
    async with with_database_snapshots("test_out_of_reach", scenario="minimal") as env:
        session, client, config = env["postgres_session"], env["clickhouse_client"], env["config"]
        before = await config.validate_database_state()
        assert failing(before) == set()
        pg_name, ch_name = (config.databases[b].name for b in ("postgres", "clickhouse"))
        await session.close()  # gives back its connection
        with config.isolator("postgres").server.connect() as admin:
            admin.execute(f'ALTER DATABASE "{pg_name}" WITH ALLOW_CONNECTIONS false')
        await client.execute(f"DROP DATABASE {ch_name}")
        results = await config.validate_database_state()
    assert failing(results) == {
        "postgres:connection.connectivity",
        "clickhouse:connection.connectivity",
    }
    for backend in ("postgres", "clickhouse"):
        connectivity, *rest = results[backend]["checks"]
        assert connectivity["name"] == "connectivity"
        assert [c["name"] for c in rest] == [c["name"] for c in before[backend]["checks"][1:]]
        assert {c["status"] for c in rest} == {"skipped"}
    pg_error = check_named(results, "postgres", "connectivity")["details"]
    assert f'database "{pg_name}" is not currently accepting connections' in pg_error
    ch_error = check_named(results, "clickhouse", "connectivity")["details"]
    assert ch_error == f"no database {ch_name} on the server"
    assert check_named(results, "cross_database", "relations")["status"] == "skipped"


async def test_a_server_short_of_connections_fails_pool_health(tmp_path: Path) -> None:
    """On a server of the test's own with max_connections = 20, other clients take all but
    MIN_FREE_SLOTS - 1 of the connections the check finds free (its own is one of them)."""
    server = EphemeralPostgres(tmp_path, "disk")
    held: list[Any] = []
    try:
        with server.ensure_running().connect() as admin:
            admin.execute("ALTER SYSTEM SET max_connections = 20")
        server.stop()
        info = server.ensure_running()
        manager = manager_with(cache_dir=tmp_path, server_data="disk", prefetch=0)
        try:
            async with with_isolated_postgres(
                "test_pg_pool", "user_management", manager=manager
            ) as (_, config):
                before = await config.validate_database_state()
                held.append(info.connect())
                free = (
                    held[0]
                    .execute(
                        "SELECT current_setting('max_connections')::int - count(*) "
                        "FROM pg_stat_activity WHERE backend_type = 'client backend'"
                    )
                    .fetchone()[0]
                )
                held += [info.connect() for _ in range(free - MIN_FREE_SLOTS)]
                results = await config.validate_database_state()
        finally:
            for connection in held:
                connection.close()
            manager.finish()
    finally:
        server.stop(purge=True)
    assert failing(before) == set()
    assert check_named(before, "postgres", "pool_health")["details"]["free"] >= MIN_FREE_SLOTS
    assert failing(results) == {"postgres:connection.pool_health"}
    details = check_named(results, "postgres", "pool_health")["details"]
    assert (details["max_connections"], details["free"]) == (20, MIN_FREE_SLOTS - 1)
    assert details["in_use"] == 20 - details["free"] and details["to_this_database"] == 1


async def test_a_server_short_of_query_slots_fails_the_pool_check(tmp_path: Path) -> None:
    """ClickHouse's pool is its query slots: on a server of the test's own that runs 7
    queries at once per user, two long queries of other clients leave the check (itself a
    running query) fewer than MIN_FREE_SLOTS."""
    from clickhouse_driver import Client

    server = EphemeralClickHouse(tmp_path, "disk", max_queries=7)
    info = server.ensure_running()
    manager = manager_with(cache_dir=tmp_path, server_data="disk")
    clients: list[Any] = []
    running: list[Any] = []
    try:
        async with with_isolated_clickhouse("test_ch_pool", "events", manager=manager) as (
            _,
            _db,
            config,
        ):
            before = await config.validate_database_state()
            for _ in range(2):
                clients.append(
                    Client(info.host, info.native_port, user=info.user, password=info.password)
                )
                rows = clients[-1].execute_iter(
                    "SELECT sleepEachRow(0.1) FROM numbers(100000)", settings={"max_block_size": 1}
                )
                next(rows)  # it runs on the server now, and goes on until cancelled
                running.append(rows)
            results = await config.validate_database_state()
    finally:
        for client in clients:
            client.disconnect()
        manager.finish()
        server.stop(purge=True)
    assert failing(before) == set()
    assert check_named(before, "clickhouse", "server_connections")["details"]["free"] == 6
    assert failing(results) == {"clickhouse:connection.server_connections"}
    details = check_named(results, "clickhouse", "server_connections")["details"]
    assert details["max_concurrent_queries_for_user"] == 7
    assert (details["of_this_user"], details["free"]) == (3, 4)


async def test_a_template_short_of_its_scenario_fails_scenario_counts(
    throwaway_templates: Any,
) -> None:
    """The template holds fewer rows than the scenario declares: the seed is wrong, whatever
    the test does, on both backends."""
    async with with_database_snapshots(
        "test_short_seed", "user_management", scenario=SHORT_SEED
    ) as env:
        config = env["config"]
        settings = config.manager.settings
        for kind, backend in (
            (PostgreSQLTestIsolator, "postgres"),
            (ClickHouseTestIsolator, "clickhouse"),
        ):
            throwaway_templates(kind, settings, config.databases[backend].template.name)
        results = await config.validate_database_state()
    assert failing(results) == {"postgres:data.scenario_counts", "clickhouse:data.scenario_counts"}
    for backend, table in (("postgres", "users"), ("clickhouse", "events")):
        assert check_named(results, backend, "scenario_counts")["details"] == {
            "template_declared_vs_seeded": {table: (DECLARED[table], SEEDED[table])}
        }


async def test_rows_the_test_changed_only_warn_in_scenario_counts() -> None:
    async with with_isolated_postgres("test_more_users", "thread_messages", "minimal") as (
        session,
        config,
    ):
        before = check_named(await config.validate_database_state(), "postgres", "scenario_counts")
        await session.execute(
            text("INSERT INTO users (email, full_name) VALUES ('extra@example.com', 'Extra')")
        )
        await session.commit()
        results = await config.validate_database_state()
    assert failing(results) == set()
    check = check_named(results, "postgres", "scenario_counts")
    assert (before["status"], check["status"]) == ("passed", "warning")
    users = before["details"]["users"]
    assert check["details"]["expected"] == before["details"]
    assert check["details"]["actual"] == before["details"] | {"users": users + 1}


@pytest.mark.parametrize(
    ("damage", "fails", "details"),
    [
        (
            "DELETE FROM alembic_version",
            "at_migration_heads",
            lambda seen: {"expected": seen["heads"], "current": []},
        ),
        (
            "CREATE VIEW stray AS SELECT 1 AS x",  # information_schema lists a view's columns
            "matches_template",
            lambda seen: {
                "missing_columns": [],
                "unexpected_columns": [("stray", "x", "integer")],
            },
        ),
        (
            "ALTER TABLE memberships DROP CONSTRAINT {check}",  # Alembic does not compare these
            "constraints_present",
            lambda seen: {"missing": [("memberships", seen["check"])]},
        ),
    ],
    ids=["version-row-deleted", "view-left-behind", "check-dropped"],
)
async def test_each_kind_of_postgres_schema_damage_fails_its_check(
    damage: str, fails: str, details: Any
) -> None:
    async with with_isolated_postgres("test_pg_damage", "user_management") as (session, config):
        before = await config.validate_database_state()
        version = text("SELECT version_num FROM alembic_version")
        check = text(
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid = 'memberships'::regclass AND contype = 'c'"
        )
        seen = {
            "heads": sorted((await session.execute(version)).scalars()),
            "check": await session.scalar(check),
        }
        await session.execute(text(damage.format(**seen)))
        await session.commit()
        results = await config.validate_database_state()
    assert failing(before) == set() and seen["heads"] and seen["check"]
    assert failing(results) == {f"postgres:schema.{fails}"}
    assert check_named(results, "postgres", fails)["details"] == details(seen)


async def test_a_column_the_models_say_is_required_fails_models_match_alone() -> None:
    """NOT NULL dropped: the columns and constraints the template checks compare are the same,
    Alembic's compare of the models sees the difference."""
    async with with_isolated_postgres("test_nullable", "user_management") as (session, config):
        before = await config.validate_database_state()
        await session.execute(text("ALTER TABLE users ALTER COLUMN full_name DROP NOT NULL"))
        await session.commit()
        results = await config.validate_database_state()
    assert failing(before) == set()
    assert failing(results) == {"postgres:schema.models_match"}
    [difference] = check_named(results, "postgres", "models_match")["details"]["differences"]
    assert "modify_nullable" in difference and "'users', 'full_name'" in difference


async def test_each_kind_of_clickhouse_schema_damage_fails_its_check() -> None:
    async with with_isolated_clickhouse("test_ch_damage", "events") as (client, db, config):
        before = await config.validate_database_state()
        heads = sorted(
            r[0] for r in await client.execute("SELECT version_num FROM alembic_version")
        )
        await client.execute("ALTER TABLE alembic_version DELETE WHERE 1")
        await wait_for_mutations(client)
        no_version = await config.validate_database_state()
        await client.execute("CREATE TABLE stray (x UInt8) ENGINE = TinyLog")  # no model has it
        stray = await config.validate_database_state()
        await client.execute("DROP TABLE stray")
        await client.execute("ALTER TABLE events ADD COLUMN extra String")
        extra_column = await config.validate_database_state()
    assert failing(before) == set() and heads
    assert failing(no_version) == {"clickhouse:schema.at_migration_heads"}
    assert check_named(no_version, "clickhouse", "at_migration_heads")["details"] == {
        "expected": heads,
        "current": [],
    }
    assert failing(stray) == {
        "clickhouse:schema.at_migration_heads",
        "clickhouse:schema.matches_template",
    }
    assert check_named(stray, "clickhouse", "matches_template")["details"] == {
        "missing_columns": [],
        "unexpected_columns": [("stray", "x", "UInt8")],
    }
    assert failing(extra_column) == {
        "clickhouse:schema.at_migration_heads",
        "clickhouse:schema.matches_template",
        "clickhouse:schema.models_match",
    }
    assert check_named(extra_column, "clickhouse", "matches_template")["details"] == {
        "missing_columns": [],
        "unexpected_columns": [("events", "extra", "String")],
    }
    assert check_named(extra_column, "clickhouse", "models_match")["details"] == {
        "columns_differ": {"events": ["extra"]}
    }


async def test_a_database_tagged_as_another_tests_fails_the_owner_check() -> None:
    async with with_database_snapshots("test_owner", scenario="minimal") as env:
        session, client, config = env["postgres_session"], env["clickhouse_client"], env["config"]
        before = await config.validate_database_state()
        owners = {b: config.databases[b].owner for b in ("postgres", "clickhouse")}
        tags = {b: dataclasses.replace(o, test="test_b").tag() for b, o in owners.items()}
        pg_tag = tags["postgres"].replace("'", "''")
        name = config.databases["postgres"].name
        await session.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{pg_tag}'"))
        await session.commit()
        await client.execute(f"DROP TABLE {OWNER_TABLE}")
        await client.execute(f"CREATE TABLE {OWNER_TABLE} (value String) ENGINE = TinyLog")
        await client.insert(OWNER_TABLE, [{"value": tags["clickhouse"]}])
        results = await config.validate_database_state()
    assert failing(before) == set()
    assert failing(results) == {"postgres:isolation.owner", "clickhouse:isolation.owner"}
    for backend, owner in owners.items():
        assert check_named(results, backend, "owner")["details"] == {
            "owner": "test_b",
            "run": owner.run,
            "expected": owner.test,
        }


async def test_a_template_no_longer_sealed_fails_the_sealed_template_check(
    throwaway_templates: Any,
) -> None:
    """The templates of a scenario only this test uses: PostgreSQL's takes connections again,
    ClickHouse's has lost its seal."""
    async with with_database_snapshots(
        "test_unsealed", "user_management", scenario=UNSEALED
    ) as env:
        config = env["config"]
        settings = config.manager.settings
        templates = {b: config.databases[b].template.name for b in ("postgres", "clickhouse")}
        throwaway_templates(PostgreSQLTestIsolator, settings, templates["postgres"])
        throwaway_templates(ClickHouseTestIsolator, settings, templates["clickhouse"])
        before = await config.validate_database_state()
        with config.isolator("postgres").server.connect() as admin:
            admin.execute(f'ALTER DATABASE "{templates["postgres"]}" WITH ALLOW_CONNECTIONS true')
        config.isolator("clickhouse").executor.execute(
            f"DROP TABLE {quote(templates['clickhouse'])}.{quote(SEALED_TABLE)}"
        )
        results = await config.validate_database_state()
    assert failing(before) == set()
    assert failing(results) == {
        "postgres:isolation.sealed_template",
        "clickhouse:isolation.sealed_template",
    }
    for backend, template in templates.items():
        assert check_named(results, backend, "sealed_template")["details"] == (
            f"template {template} is missing or not sealed"
        )


async def test_rows_committed_by_another_connection_fail_no_foreign_rows() -> None:
    """At `transaction` level the worker's database is shared: a row another connection
    committed there is one the next test would see."""
    async with with_isolated_postgres(
        "test_foreign_rows", "thread_messages", "minimal", level="transaction"
    ) as (session, config):
        before = await config.validate_database_state()
        isolator, name = config.isolator("postgres"), config.databases["postgres"].name
        count = text("SELECT count(*) FROM thread_participants")
        with isolator.connect_to(name) as other:  # autocommit, as another test's
            committed = other.execute(count).scalar()
            added = other.execute(
                text(
                    "INSERT INTO thread_participants (thread_id, user_id) "
                    "SELECT t.id, u.id FROM threads t CROSS JOIN users u WHERE NOT EXISTS "
                    "(SELECT 1 FROM thread_participants p "
                    " WHERE p.thread_id = t.id AND p.user_id = u.id) "
                    "ORDER BY 1, 2 LIMIT 1 RETURNING thread_id, user_id"
                )
            ).one()
        try:
            results = await config.validate_database_state()
        finally:
            with isolator.connect_to(name) as other:
                other.execute(
                    text("DELETE FROM thread_participants WHERE thread_id = :t AND user_id = :u"),
                    {"t": added[0], "u": added[1]},
                )
                assert other.execute(count).scalar() == committed
    assert failing(before) == set()
    assert failing(results) == {"postgres:isolation.no_foreign_rows"}
    assert check_named(results, "postgres", "no_foreign_rows")["details"] == {
        "committed_rows_template_vs_now": {"thread_participants": (committed, committed + 1)}
    }


def test_checks_are_disabled_by_name_and_a_wrong_name_lists_the_right_ones() -> None:
    from netra_isolation import UnknownChoiceError, with_isolated_postgres_sync
    from netra_isolation.database_state_validator import DatabaseStateValidator

    validator = DatabaseStateValidator()
    with pytest.raises(UnknownChoiceError, match=r"'schema\.models_match'"):
        validator.disable("schema.model_match")
    validator.disable("schema.models_match", "isolation.owner")
    with with_isolated_postgres_sync("t_disabled", "basic") as (session, config):
        results = validator.validate_sync(config)
    for name in ("models_match", "owner"):
        check = check_named(results, "postgres", name)
        assert (check["status"], check["details"]) == ("skipped", DISABLED)
    assert check_named(results, "postgres", "constraints_present")["status"] == "passed"


def test_without_models_the_model_check_is_skipped_and_says_what_to_set(
    tmp_path: Path,
) -> None:
    from netra_isolation import IsolatedTestConfig, SqlFilesBuilder, TemplateSpec

    schema = tmp_path / "schema.sql"
    schema.write_text(f"CREATE TABLE t_{uuid.uuid4().hex[:6]} (id int PRIMARY KEY);\n")
    manager = TestDatabaseManager(
        Settings.load(root=ROOT), builders={"postgres": SqlFilesBuilder([schema])}
    )
    config = IsolatedTestConfig("t_no_models", manager=manager)
    template = manager.postgres.ensure_template(TemplateSpec()).name  # of this test's own
    try:
        config.setup_sync("postgres")
        results = config.validate_database_state_sync()
        check = check_named(results, "postgres", "models_match")
        assert check["status"] == "skipped"
        assert 'postgres_models = "package.module:Base"' in check["details"]
        assert check_named(results, "postgres", "at_migration_heads")["status"] == "passed"
    finally:
        config.cleanup_databases_sync()
        manager.finish()
        isolator = PostgreSQLTestIsolator(Settings.load(root=ROOT))
        isolator.drop_template(template)
        isolator.close()
