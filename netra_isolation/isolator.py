"""The shape both isolators share, so the manager, snapshots and the plugin never branch on
the backend. A third backend is one more implementation of `Isolator`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from netra_isolation.naming import Owner


@dataclass(frozen=True)
class TemplateSpec:
    """What a test asks for: a schema type (Alembic branch label) and an optional scenario."""

    schema_type: str = "basic"
    scenario: str | None = None

    def labels(self) -> list[str]:
        return [self.schema_type, self.scenario or "empty"]


@dataclass(frozen=True)
class TemplateRef:
    backend: str
    name: str
    fingerprint: str
    spec: TemplateSpec
    built: bool  # built by this process (False: a sealed one was reused)


@dataclass(frozen=True)
class DatabaseRef:
    backend: str
    name: str
    test_id: str
    owner: Owner
    template: TemplateRef | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


class Isolator(Protocol):
    backend: str

    def ensure_template(self, spec: TemplateSpec) -> TemplateRef: ...

    def clone(self, template: TemplateRef, name: str, owner: Owner) -> DatabaseRef: ...

    def drop(self, db: DatabaseRef) -> None: ...

    def owned(self, run: str | None = None) -> list[DatabaseRef]: ...

    def connection_info(self, db: DatabaseRef) -> dict[str, Any]: ...
