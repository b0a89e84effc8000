"""The backends, each in a folder of its own, registered here by name.

A backend's folder holds everything of it: its isolator (templates, clones, drops, ownership,
snapshots, its state reader), its throwaway server and its validation checks. Code above
this package names a backend only as a string it passes on and asks the registry for its
parts; it never writes `if backend == ...`. A third backend is one more folder and one more
`register(...)` line below.

A backend's folder is imported when the backend is first used, so a PostgreSQL-only run never
loads a ClickHouse driver.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from netra_isolation.errors import ConfigurationError

if TYPE_CHECKING:
    from netra_isolation.checks import Check
    from netra_isolation.isolator import TestIsolatorBase
    from netra_isolation.servers import EphemeralServer
    from netra_isolation.settings import Settings


@dataclass(frozen=True)
class Parts:
    """What a backend's folder gives the rest of the package (its `PARTS`)."""

    isolator: type[TestIsolatorBase]
    server: Callable[[Settings], EphemeralServer[Any, Any]]  # its throwaway local server
    checks: list[tuple[str, str, Check]]  # (category, name, check), in report order


@dataclass(frozen=True)
class Backend:
    name: str
    module: str  # its folder, imported on first use
    # Tests can share one database, each in a transaction rolled back after it (`transaction`
    # level); a backend without transactions (ClickHouse) always isolates by database.
    transactional: bool

    def parts(self) -> Parts:
        parts: Parts = importlib.import_module(self.module).PARTS
        return parts


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend) -> None:
    _REGISTRY[backend.name] = backend


def get(name: str) -> Backend:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown backend {name!r}; known: {', '.join(_REGISTRY)}"
        ) from None


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


register(Backend("postgres", "netra_isolation.backends.postgres", transactional=True))
register(Backend("clickhouse", "netra_isolation.backends.clickhouse", transactional=False))
