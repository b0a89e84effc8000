"""The original design's module: `IsolatedTestConfig`, the `with_isolated_*` context managers
and the fixtures, under the import paths its examples use. They live in `handle`, `contexts`
and `fixtures`; this module re-exports them.

Loadable as a plugin (`pytest_plugins = ["netra_isolation.isolated_test_config"]`, as the
original design's conftest does): it brings in the rest of the plugin.
"""

from __future__ import annotations

import pytest

from netra_isolation.contexts import (
    with_database_snapshots,
    with_isolated_clickhouse,
    with_isolated_clickhouse_sync,
    with_isolated_postgres,
    with_isolated_postgres_sync,
)
from netra_isolation.fixtures import (
    IsolationRequest,
    isolated_clickhouse,
    isolated_clickhouse_sync,
    isolated_full_stack,
    isolated_postgres,
    isolated_postgres_sync,
    isolation,
    netra_database_url,
    performance_test_config,
)
from netra_isolation.handle import IsolatedTestConfig, default_manager, set_default_manager
from netra_isolation.pytest_plugin import netra_manager

__all__ = [
    "IsolatedTestConfig",
    "IsolationRequest",
    "default_manager",
    "isolated_clickhouse",
    "isolated_clickhouse_sync",
    "isolated_full_stack",
    "isolated_postgres",
    "isolated_postgres_sync",
    "isolation",
    "netra_database_url",
    "netra_manager",
    "performance_test_config",
    "set_default_manager",
    "with_database_snapshots",
    "with_isolated_clickhouse",
    "with_isolated_clickhouse_sync",
    "with_isolated_postgres",
    "with_isolated_postgres_sync",
]


def pytest_configure(config: pytest.Config) -> None:
    """Loaded as the original design does it, on a machine where the package is importable but
    its entry point is not installed: bring in the rest of the plugin (marker, xdist wiring,
    cleanup at session end, summary), unless `-p no:netra_isolation` turned it off."""
    from netra_isolation import pytest_plugin

    manager = config.pluginmanager
    if not manager.is_registered(pytest_plugin) and not manager.is_blocked("netra_isolation"):
        manager.register(pytest_plugin, "netra_isolation")
