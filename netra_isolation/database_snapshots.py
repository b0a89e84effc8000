"""Named snapshots of a test's databases, on top of the isolators.

PostgreSQL: `CREATE DATABASE <snapshot> TEMPLATE <test db>`; restoring drops the test's
database and makes it again from the snapshot under the same name. ClickHouse: a database of
hard-linked table clones; restoring swaps the test database's tables for the snapshot's.
Either way the session and client the test holds keep working: their database keeps its name
(a PostgreSQL session's connection is re-opened on its next use).
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from netra_isolation.errors import SnapshotError
from netra_isolation.naming import database_name
from netra_isolation.threads import to_thread

if TYPE_CHECKING:
    from netra_isolation.handle import IsolatedTestConfig

CLEAN = "clean"


@dataclass(frozen=True)
class SnapshotRef:
    id: str
    backend: str
    label: str
    database: str  # the snapshot's own database
    source: str  # the test database it was taken of
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class DatabaseSnapshots:
    """One test's snapshots; they belong to the test and are dropped with it."""

    def __init__(self, config: IsolatedTestConfig) -> None:
        self.config = config
        self._snapshots: dict[str, SnapshotRef] = {}
        self._counter = itertools.count(1)

    def ids(self) -> list[str]:
        return list(self._snapshots)

    def get(self, snapshot_id: str) -> SnapshotRef:
        try:
            return self._snapshots[snapshot_id]
        except KeyError:
            known = ", ".join(self._snapshots) or "none yet"
            raise SnapshotError(
                f"no snapshot {snapshot_id!r} in test {self.config.test_id!r}; its snapshots: "
                f"{known}. Take one with `await config.create_snapshot(backend, label)`."
            ) from None

    def _database(self, backend: str) -> Any:
        if backend not in self.config.databases:
            raise SnapshotError(
                f"test {self.config.test_id!r} has no {backend} database to snapshot; it has: "
                f"{', '.join(self.config.databases) or 'none'}"
            )
        if self.config.shares_database(backend):
            raise SnapshotError(
                "snapshots need a database of the test's own: use level='database' (at "
                "level='transaction' the worker's database is shared and rolled back instead)"
            )
        return self.config.databases[backend]

    def create_sync(self, backend: str, label: str) -> str:
        with self.config.manager.metrics.timed_for(self.config.nodeid, "snapshot"):
            return self._create(backend, label)

    def _create(self, backend: str, label: str) -> str:
        db = self._database(backend)
        isolator = self.config.isolator(backend)
        snapshot_id = f"{backend}:{label}"
        if snapshot_id in self._snapshots:
            snapshot_id = f"{snapshot_id}:{next(self._counter)}"
        name = database_name(
            self.config.manager.settings.prefix,
            f"{db.test_id}_s_{label}",
            db.name,
            snapshot_id,
            max_length=isolator.name_length,
        )
        isolator.snapshot(db, name)
        self._snapshots[snapshot_id] = SnapshotRef(snapshot_id, backend, label, name, db.name)
        self.config.manager.metrics.count("snapshots_created")
        return snapshot_id

    def restore_sync(self, snapshot_id: str) -> None:
        with self.config.manager.metrics.timed_for(self.config.nodeid, "restore"):
            self._restore(snapshot_id)

    def _restore(self, snapshot_id: str) -> None:
        snapshot = self.get(snapshot_id)
        db = self._database(snapshot.backend)
        self.config.isolator(snapshot.backend).restore(snapshot.database, db)
        self.config.manager.metrics.count("snapshots_restored")

    def reset_to_clean_state_sync(self, backends: list[str] | None = None) -> None:
        """Back to the state right after migration and seeding: restore from the template."""
        for backend in backends or list(self.config.databases):
            db = self._database(backend)
            if db.template is None:
                raise SnapshotError(f"the {backend} database {db.name} has no template")
            self.config.isolator(backend).restore(db.template.name, db)

    def check(self, backends: list[str] | None = None, snapshot_id: str | None = None) -> None:
        """Refuse what cannot be done (no such snapshot, a database not the test's own) before
        the test's sessions give back their connections, which loses their uncommitted work."""
        if snapshot_id is not None:
            backends = [self.get(snapshot_id).backend]
        for backend in backends if backends is not None else list(self.config.databases):
            self._database(backend)

    async def create(self, backend: str, label: str) -> str:
        self.check([backend])
        await self.config.release_sessions()
        return await to_thread(self.create_sync, backend, label)

    async def restore(self, snapshot_id: str) -> None:
        self.check(snapshot_id=snapshot_id)
        await self.config.release_sessions()
        await to_thread(self.restore_sync, snapshot_id)

    async def reset_to_clean_state(self, backends: list[str] | None = None) -> None:
        self.check(backends)
        await self.config.release_sessions()
        await to_thread(self.reset_to_clean_state_sync, backends)

    def drop_all_sync(self) -> None:
        for snapshot in self._snapshots.values():
            self.config.isolator(snapshot.backend).drop_database(snapshot.database)
        self._snapshots.clear()


# -- state diffs ---------------------------------------------------------------------------------
ROW_LIMIT = 10_000


@dataclass
class TableDiff:
    backend: str
    table: str
    key: list[str]
    added: list[dict[str, Any]] = field(default_factory=list)
    removed: list[dict[str, Any]] = field(default_factory=list)
    changed: list[dict[str, Any]] = field(default_factory=list)  # {"key": .., "changes": ..}
    truncated: bool = False

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass
class StateDiff:
    """Per table, the rows added, removed and changed since a snapshot (or the clean state)."""

    against: str
    tables: list[TableDiff]

    @property
    def is_empty(self) -> bool:
        return all(t.is_empty for t in self.tables)

    def table(self, backend: str, name: str) -> TableDiff:
        for table in self.tables:
            if (table.backend, table.table) == (backend, name):
                return table
        return TableDiff(backend, name, [])

    def to_dict(self) -> dict[str, Any]:
        return {
            "against": self.against,
            "tables": [asdict(t) for t in self.tables if not t.is_empty],
        }

    def render(self, limit: int = 20) -> str:
        if self.is_empty:
            return f"no changes since {self.against}"
        lines = [f"changes since {self.against}:"]
        for t in (t for t in self.tables if not t.is_empty):
            lines.append(
                f"  {t.backend}.{t.table}: +{len(t.added)} -{len(t.removed)} ~{len(t.changed)}"
                + (" (first rows only)" if t.truncated else "")
            )
            for sign, rows in (("+", t.added), ("-", t.removed)):
                lines += [f"    {sign} {row}" for row in rows[:limit]]
            for change in t.changed[:limit]:
                diff = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in change["changes"].items())
                lines.append(f"    ~ {change['key']}: {diff}")
        return "\n".join(lines)

    __str__ = render


def diff_rows(
    backend: str,
    table: str,
    key: list[str],
    before: list[dict[str, Any]],
    after: list[dict[str, Any]],
    truncated: bool,
) -> TableDiff:
    if key and not (_unique(key, before) and _unique(key, after)):
        key = []  # a ClickHouse sorting or model key need not be unique
    result = TableDiff(backend, table, key, truncated=truncated)
    if not key:  # no key: rows are compared whole, as multisets
        remaining = Counter(_frozen(r) for r in before)
        for row in after:
            frozen = _frozen(row)
            if remaining[frozen]:
                remaining[frozen] -= 1
            else:
                result.added.append(row)
        result.removed = [dict(r) for r, n in remaining.items() for _ in range(n)]
        return result
    old = {tuple(r[k] for k in key): r for r in before}
    new = {tuple(r[k] for k in key): r for r in after}
    result.added = [new[k] for k in new.keys() - old.keys()]
    result.removed = [old[k] for k in old.keys() - new.keys()]
    for k in sorted(old.keys() & new.keys(), key=repr):
        changes = {c: (old[k].get(c), new[k].get(c)) for c in new[k] if old[k].get(c) != new[k][c]}
        if changes:
            result.changed.append({"key": dict(zip(key, k, strict=True)), "changes": changes})
    return result


def _unique(key: list[str], rows: list[dict[str, Any]]) -> bool:
    return len({tuple(r.get(k) for k in key) for r in rows}) == len(rows)


def _frozen(row: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, repr(v)) for k, v in row.items()))


def _compare(backend: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[TableDiff]:
    diffs = []
    for name in sorted(set(before) | set(after)):
        key, old_rows, old_cut = before.get(name, ([], [], False))
        new_key, new_rows, new_cut = after.get(name, (key, [], False))
        diffs.append(
            diff_rows(backend, name, key or new_key, old_rows, new_rows, old_cut or new_cut)
        )
    return diffs


def diff_state_sync(
    config: IsolatedTestConfig,
    snapshot_id: str | None = None,
    connection: Any = None,
    backends: set[str] | None = None,
) -> StateDiff:
    """What changed in the test's databases since `snapshot_id` (default: the clean state
    right after migration and seeding). `connection`: the test's own PostgreSQL connection
    (at `transaction` level only it sees the test's uncommitted work); `backends`: only
    these."""
    snapshots = config.snapshots
    chosen = [snapshots.get(snapshot_id)] if snapshot_id else None
    wanted = [s.backend for s in chosen] if chosen else list(config.databases)
    tables: list[TableDiff] = []
    for backend in (b for b in wanted if backends is None or b in backends):
        db = config.databases[backend]
        isolator = config.isolator(backend)
        source = chosen[0].database if chosen else None
        if source is None and db.template is None:
            raise SnapshotError(f"the {backend} database {db.name} has no clean state to diff")
        with contextlib.ExitStack() as stack:
            if source is None:
                assert db.template is not None
                source = stack.enter_context(isolator.readable_state(db.template))
            before = isolator.table_rows(source, ROW_LIMIT)
            own = connection if config.shares_database(backend) else None
            after = isolator.table_rows(db.name, ROW_LIMIT, own)
        tables += _compare(backend, before, after)
    return StateDiff(snapshot_id or CLEAN, tables)
