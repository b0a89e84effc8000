"""Named snapshots of a test's databases, on top of the isolators.

PostgreSQL: `CREATE DATABASE <snapshot> TEMPLATE <test db>`; restoring drops the test's
database and makes it again from the snapshot under the same name. ClickHouse: a database of
hard-linked table clones; restoring swaps the test database's tables for the snapshot's.
Either way the session and client the test holds keep working: their database keeps its name
(a PostgreSQL session's connection is re-opened on its next use).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from netra_isolation.errors import SnapshotError
from netra_isolation.naming import database_name

if TYPE_CHECKING:
    from netra_isolation.isolated_test_config import IsolatedTestConfig

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
        if self.config._shared(backend):
            raise SnapshotError(
                "snapshots need a database of the test's own: use level='database' (at "
                "level='transaction' the worker's database is shared and rolled back instead)"
            )
        return self.config.databases[backend]

    def create_sync(self, backend: str, label: str) -> str:
        db = self._database(backend)
        isolator = self.config._isolators[backend]
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
        snapshot = self.get(snapshot_id)
        db = self._database(snapshot.backend)
        self.config._isolators[snapshot.backend].restore(snapshot.database, db)
        self.config.manager.metrics.count("snapshots_restored")

    def reset_to_clean_state_sync(self, backends: list[str] | None = None) -> None:
        """Back to the state right after migration and seeding: restore from the template."""
        for backend in backends or list(self.config.databases):
            db = self._database(backend)
            if db.template is None:
                raise SnapshotError(f"the {backend} database {db.name} has no template")
            self.config._isolators[backend].restore(db.template.name, db)

    async def create(self, backend: str, label: str) -> str:
        await self.config.release_sessions()
        return await asyncio.to_thread(self.create_sync, backend, label)

    async def restore(self, snapshot_id: str) -> None:
        await self.config.release_sessions()
        await asyncio.to_thread(self.restore_sync, snapshot_id)

    async def reset_to_clean_state(self, backends: list[str] | None = None) -> None:
        await self.config.release_sessions()
        await asyncio.to_thread(self.reset_to_clean_state_sync, backends)

    def drop_all_sync(self) -> None:
        for snapshot in self._snapshots.values():
            self.config._isolators[snapshot.backend]._drop_name(snapshot.database)
        self._snapshots.clear()
