"""ClickHouseTestIsolator against the real throwaway server (Debian's 18.16 here)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import ClickHouseTestIsolator, Settings, TemplateSpec, UnknownSchemaTypeError
from netra_isolation.backends.clickhouse.isolator import SEALED_TABLE, quote
from netra_isolation.errors import ServerUnreachableError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def isolator() -> Any:
    isolator = ClickHouseTestIsolator(Settings.load(root=ROOT))
    yield isolator
    isolator.cleanup_all_sync()
    isolator.close()


def event(user_id: int, month: int = 3) -> dict[str, Any]:
    return {
        "event_id": uuid.uuid4(),
        "user_id": user_id,
        "event_type": "login",
        "properties": "{}",
        "timestamp": datetime(2025, month, 1),
    }


def test_clone_of_a_seeded_template_has_its_rows_and_keeps_its_own(isolator: Any) -> None:
    db = isolator.create_isolated_database_sync("test_seeded_clone", "events", "analytics")
    template = db.template.name
    client = isolator.client("test_seeded_clone")
    assert client.count("events") == 2000
    per_partition = client.execute(
        "SELECT toYYYYMM(timestamp) m, count() FROM events GROUP BY m ORDER BY m"
    )
    source = isolator.executor.execute(
        f"SELECT toYYYYMM(timestamp) m, count() FROM {quote(template)}.events GROUP BY m ORDER BY m"
    )
    assert per_partition == source and len(source) > 1  # every partition came across
    # writes and mutations in the clone: the template's hard-linked parts are untouched
    client.insert("events", [event(1) for _ in range(10)])
    client.execute("ALTER TABLE events DELETE WHERE user_id = 2")
    deadline = time.monotonic() + 10
    while (
        client.scalar("SELECT count() FROM events WHERE user_id = 2")
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    assert client.scalar("SELECT count() FROM events WHERE user_id = 2") == 0
    assert isolator.executor.execute(f"SELECT count() FROM {quote(template)}.events") == [(2000,)]
    assert (
        isolator.executor.execute(
            f"SELECT count() FROM {quote(template)}.events WHERE user_id = 2"
        )[0][0]
        > 0
    )
    client.close()


def test_log_tables_are_copied_and_views_point_at_the_clone(isolator: Any) -> None:
    isolator.create_isolated_database_sync("test_views", "metrics")
    client = isolator.client("test_views")
    client.insert(
        "metrics",
        [
            {
                "metric_name": "latency_ms",
                "value": 5.0,
                "tags": [],
                "timestamp": datetime(2025, 1, 1),
            }
        ],
    )
    assert client.scalar("SELECT sum(samples) FROM metrics_hourly") == 1
    ddl = client.scalar("SHOW CREATE TABLE metrics_hourly")
    assert isolator.database("test_views").name in ddl
    client.close()
    isolator.create_isolated_database_sync("test_log_copy", "basic")
    log = isolator.client("test_log_copy")
    log.insert("test_log", [{"message": "mine", "logged_at": datetime(2025, 1, 1)}])
    assert log.execute("SELECT message FROM test_log") == [("mine",)]
    log.close()


def test_unchanged_fingerprint_is_not_rebuilt_and_unsealed_is(isolator: Any) -> None:
    isolator.ensure_template(TemplateSpec("metrics"))
    again = ClickHouseTestIsolator(isolator.settings)
    ref = again.ensure_template(TemplateSpec("metrics"))
    assert (ref.built, again.metrics.counters["templates_built"]) == (False, 0)
    again.executor.execute(f"DROP TABLE {quote(ref.name)}.{quote(SEALED_TABLE)}")
    third = ClickHouseTestIsolator(isolator.settings)
    rebuilt = third.ensure_template(TemplateSpec("metrics"))
    assert rebuilt.built is True and rebuilt.name == ref.name
    assert third.executor.execute(
        f"SELECT count() FROM system.tables WHERE database = '{ref.name}' "
        f"AND name = '{SEALED_TABLE}'"
    ) == [(1,)]
    again.close()
    third.close()


async def test_async_and_sync_clients_insert_and_read_back(isolator: Any) -> None:
    await isolator.create_isolated_database("test_clients", "events")
    from netra_isolation import AsyncClickHouseClient

    sync = isolator.client("test_clients")
    client = AsyncClickHouseClient(isolator.client("test_clients"))
    assert (
        await client.insert("events", [event(7, m) for m in range(1, 13) for _ in range(300)])
        == 3600
    )
    # One batch: one new part per month touched (3600 single-row INSERTs would make 3600).
    parts = (
        f"SELECT count() FROM system.parts WHERE database = '{client.database}' "
        "AND table = 'events'"
    )
    assert sync.scalar(parts) == 12
    sync.insert("events", [event(8)])
    assert await client.count("events") == 3601
    assert sync.scalar("SELECT uniqExact(toYYYYMM(timestamp)) FROM events") == 12
    assert await client.execute(
        "SELECT user_id, count() FROM events GROUP BY user_id ORDER BY user_id"
    ) == [
        (7, 3600),
        (8, 1),
    ]
    client.close()
    sync.close()


def test_unknown_table_set_names_the_valid_ones(isolator: Any) -> None:
    with pytest.raises(UnknownSchemaTypeError) as info:
        isolator.create_isolated_database_sync("test_typo", "event")
    for valid in ("basic", "events", "metrics"):
        assert repr(valid) in str(info.value)


def test_owned_lists_this_runs_databases_and_drop_removes_them(isolator: Any) -> None:
    db = isolator.create_isolated_database_sync("test_owned", nodeid="tests/x.py::test_owned")
    owned = {d.name: d for d in isolator.owned(isolator.owner.run)}
    assert owned[db.name].owner.test == "tests/x.py::test_owned"
    assert all(not name.startswith(f"{isolator.settings.prefix}_tpl") for name in owned)
    isolator.cleanup_test_database_sync("test_owned")
    assert db.name not in {d.name for d in isolator.owned(isolator.owner.run)}


@pytest.mark.parametrize("server", ["closed", "silent"])
def test_unreachable_server_fails_at_the_connect_timeout_naming_it(server: str) -> None:
    """Nobody listening (refused at once), or a server that accepts and never answers, where
    only the connect timeout, set short here, ends the wait: the error says which it was."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        if server == "silent":
            sock.listen(8)  # the kernel completes the handshake; nothing ever replies
        else:
            sock.close()
        settings = Settings.load(
            {"connect_timeout": 1},
            root=ROOT,
            environ={"TEST_CLICKHOUSE_HOST": "127.0.0.1", "TEST_CLICKHOUSE_PORT": str(port)},
        )
        isolator = ClickHouseTestIsolator(settings)
        with pytest.raises(ServerUnreachableError) as info:
            isolator.create_isolated_database_sync("test_down", "events")
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "TEST_CLICKHOUSE_HOST" in message
    if server == "silent":  # the deadline ended the wait
        assert "did not answer within 1s (timed out)" in message
    else:
        assert "did not answer within 1s (" in message and "Connection refused)" in message


def test_materialized_views_keep_their_rows_in_a_copy(
    isolator: Any, materialized_view_case: Any
) -> None:
    materialized_view_case(isolator, isolator.executor.execute, f"ni_{uuid.uuid4().hex[:8]}")
