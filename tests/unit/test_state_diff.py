"""How rows are matched in a state diff (the diff on real databases: tests/integration)."""

from __future__ import annotations

from netra_isolation.database_snapshots import diff_rows


def test_a_unique_key_turns_an_update_into_a_change() -> None:
    before = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]
    after = [{"id": 1, "v": "a"}, {"id": 2, "v": "c"}, {"id": 3, "v": "d"}]
    diff = diff_rows("postgres", "t", ["id"], before, after, truncated=False)
    assert diff.changed == [{"key": {"id": 2}, "changes": {"v": ("b", "c")}}]
    assert diff.added == [{"id": 3, "v": "d"}] and not diff.removed


def test_a_key_that_is_not_unique_compares_whole_rows_and_loses_none() -> None:
    """ClickHouse keys (sorting keys, the model's primary key) may repeat: rows that share a
    key must not collapse into one."""
    before = [{"name": "cpu", "v": 1.0}, {"name": "cpu", "v": 2.0}]
    after = [{"name": "cpu", "v": 1.0}, {"name": "cpu", "v": 2.0}, {"name": "cpu", "v": 2.0}]
    diff = diff_rows("clickhouse", "metrics", ["name"], before, after, truncated=False)
    assert diff.key == [] and not diff.changed and not diff.removed
    assert diff.added == [{"name": "cpu", "v": 2.0}]
