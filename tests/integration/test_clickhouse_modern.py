"""The isolator's clone, snapshot and drop statements on a modern ClickHouse (26.x, in-process
through chdb), so the paths chosen for new servers are known to work: `CLONE AS`, Atomic
databases dropped with SYNC, and the REPLACE PARTITION path the 18.16 server takes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from netra_isolation import ClickHouseTestIsolator, Settings, TemplateRef, TemplateSpec
from netra_isolation.backends.clickhouse.isolator import OWNER_TABLE, literal, quote
from netra_isolation.naming import Owner

chdb = pytest.importorskip("chdb")
ROOT = Path(__file__).resolve().parents[2]


class ChdbExecutor:
    """The executor seam over chdb's in-process engine: sync SQL in, rows out."""

    def __init__(self, path: Path) -> None:
        from chdb import session

        self.session = session.Session(str(path))
        major, minor, *_ = self.execute("SELECT version()")[0][0].split(".")
        self.version = (int(major), int(minor))

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        result = str(self.session.query(sql, "JSONCompact")).strip()
        return [tuple(row) for row in json.loads(result)["data"]] if result else []

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        def value(v: Any) -> str:
            return str(v) if isinstance(v, int | float) else literal(str(v))

        values = ", ".join("(" + ", ".join(value(v) for v in row) + ")" for row in rows)
        cols = ", ".join(quote(c) for c in columns)
        self.execute(f"INSERT INTO {table} ({cols}) VALUES {values}")


@pytest.fixture(scope="module")
def engine(chdb_path: Path) -> ChdbExecutor:
    executor = ChdbExecutor(chdb_path)
    executor.execute("CREATE DATABASE tpl ENGINE = Atomic")
    executor.execute(
        "CREATE TABLE tpl.events (user_id UInt64, ts DateTime) ENGINE = MergeTree "
        "PARTITION BY toYYYYMM(ts) ORDER BY user_id"
    )
    executor.execute(
        "INSERT INTO tpl.events SELECT number % 50, toDateTime('2025-01-01 00:00:00') "
        "+ number * 3600 FROM numbers(5000)"
    )
    executor.execute("CREATE TABLE tpl.log (m String) ENGINE = Log")
    executor.execute("INSERT INTO tpl.log VALUES ('a'), ('b')")
    executor.execute(
        "CREATE VIEW tpl.per_user AS SELECT user_id, count() c FROM tpl.events GROUP BY user_id"
    )
    return executor


def make(engine: ChdbExecutor, version: tuple[int, int] | None = None) -> ClickHouseTestIsolator:
    if version is not None:
        engine.version = version
    return ClickHouseTestIsolator(Settings.load(root=ROOT), executor=engine)


TEMPLATE = TemplateRef("clickhouse", "tpl", "f" * 64, TemplateSpec("events"), built=False)


@pytest.mark.parametrize("version", [None, (23, 8)], ids=["clone-as", "replace-partition"])
def test_clone_then_write_leaves_the_template_alone(engine: ChdbExecutor, version: Any) -> None:
    real = engine.version
    isolator = make(engine, version)
    name = f"ni_clone_{'legacy' if version else 'modern'}"
    owner = Owner.new_run().for_test("tests/m.py::test_x")
    try:
        db = isolator.clone(TEMPLATE, name, owner)
        assert engine.execute(f"SELECT count() FROM {name}.events") == [(5000,)]
        assert engine.execute(f"SELECT count() FROM {name}.log") == [(2,)]
        assert engine.execute(f"SELECT count() FROM {name}.per_user") == [(50,)]
        engine.execute(f"INSERT INTO {name}.events VALUES (999, '2025-02-01 00:00:00')")
        engine.execute(
            f"ALTER TABLE {name}.events DELETE WHERE user_id = 1 SETTINGS mutations_sync = 1"
        )
        assert engine.execute(f"SELECT count() FROM {name}.per_user WHERE user_id = 999") == [(1,)]
        assert engine.execute("SELECT count() FROM tpl.events") == [(5000,)]
        assert engine.execute("SELECT count() FROM tpl.events WHERE user_id = 1") == [(100,)]
        tag = engine.execute(f"SELECT value FROM {name}.{OWNER_TABLE}")[0][0]
        assert Owner.parse(tag) == owner
        isolator.drop(db)
        assert engine.execute(f"SELECT count() FROM system.databases WHERE name = '{name}'") == [
            (0,)
        ]
    finally:
        engine.version = real


class Statements:
    """The engine, recording each statement; `refuse` makes it reject some as a server
    without them would, with its syntax error."""

    def __init__(self, engine: ChdbExecutor, refuse: str | None = None) -> None:
        self.engine, self.refuse, self.seen = engine, refuse, list[str]()
        self.version = engine.version

    def execute(self, sql: str) -> list[tuple[Any, ...]]:
        self.seen.append(sql)
        if self.refuse and self.refuse in sql:
            raise RuntimeError(f"Code: 62. DB::Exception: Syntax error: failed at {sql!r}")
        return self.engine.execute(sql)

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.engine.insert(table, columns, rows)


@pytest.mark.parametrize("has_clone_as", [True, False])
def test_clone_as_is_used_where_the_server_has_it(engine: ChdbExecutor, has_clone_as: bool) -> None:
    """CLONE AS came during 24.x: a 24.x server without it falls back to REPLACE PARTITION
    after one refused statement, and the clone is the same."""
    statements = Statements(engine, refuse=None if has_clone_as else "CLONE AS")
    isolator = ClickHouseTestIsolator(Settings.load(root=ROOT), executor=statements)
    for name in ("ni_clone_as_a", "ni_clone_as_b"):
        db = isolator.clone(TEMPLATE, name, Owner.new_run())
        assert engine.execute(f"SELECT count() FROM {name}.events") == [(5000,)]
        isolator.drop(db)
    clone_as = [s for s in statements.seen if "CLONE AS" in s]
    replace = [s for s in statements.seen if "REPLACE PARTITION" in s]
    if has_clone_as:
        assert len(clone_as) == 2 and not replace
    else:
        assert len(clone_as) == 1 and replace  # tried once, then remembered
        # each clone moves all of a table's partitions in one ALTER
        ((partitions,),) = engine.execute(
            "SELECT count(DISTINCT partition_id) FROM system.parts "
            "WHERE database = 'tpl' AND table = 'events' AND active"
        )
        assert partitions > 1
        assert [s.count("REPLACE PARTITION") for s in replace] == [partitions] * 2


def test_snapshot_statements_copy_a_changed_database(engine: ChdbExecutor) -> None:
    """A snapshot is a copy of the test's database at a moment; restore copies it back."""
    isolator = make(engine)
    db = isolator.clone(TEMPLATE, "ni_snap_src", Owner.new_run())
    engine.execute("INSERT INTO ni_snap_src.events VALUES (777, '2025-03-01 00:00:00')")
    engine.execute("CREATE DATABASE ni_snap_copy ENGINE = Atomic")
    isolator.copy_tables("ni_snap_src", "ni_snap_copy")
    engine.execute("TRUNCATE TABLE ni_snap_src.events")
    assert engine.execute("SELECT count() FROM ni_snap_copy.events") == [(5001,)]
    engine.execute("DROP DATABASE ni_snap_src SYNC")
    engine.execute("CREATE DATABASE ni_snap_src ENGINE = Atomic")
    isolator.copy_tables("ni_snap_copy", "ni_snap_src")
    assert engine.execute("SELECT count() FROM ni_snap_src.events WHERE user_id = 777") == [(1,)]
    isolator.drop(db)
    isolator.drop_database("ni_snap_copy")


def test_view_ddl_is_retargeted_only_at_qualifiers() -> None:
    from netra_isolation.backends.clickhouse.isolator import _retarget

    ddl = "CREATE VIEW tpl.v AS SELECT tpl_x FROM tpl.events JOIN `tpl`.users USING (id)"
    assert _retarget(ddl, "tpl", "new") == (
        "CREATE VIEW `new`.v AS SELECT tpl_x FROM `new`.events JOIN `new`.users USING (id)"
    )


def test_materialized_views_keep_their_rows_in_a_copy(
    engine: ChdbExecutor, materialized_view_case: Any
) -> None:
    materialized_view_case(make(engine), engine.execute, "ni_modern")


def test_a_modern_servers_templates_are_not_an_old_ones(engine: ChdbExecutor) -> None:
    """The server's major version is in the fingerprint: the same migrations on 18.16 and on a
    modern server make different templates (engines, defaults and on-disk formats differ)."""
    settings = Settings.load(root=ROOT)
    old, modern = ClickHouseTestIsolator(settings), make(engine)
    try:
        assert old.executor.version[0] != engine.version[0]
        assert modern.server_identity()[0] == str(engine.version[0])
        spec = TemplateSpec("events", "analytics")
        old.validate(spec)  # loads the scenarios
        assert modern.fingerprint(spec) != old.fingerprint(spec)
    finally:
        old.close()
