"""netra_isolation: every test its own real PostgreSQL and ClickHouse database."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The pytest plugin imports this package first, in every run: its names are imported when first
# used (PEP 562), so a run that needs no database loads no driver, Alembic or factory-boy.
if TYPE_CHECKING:
    from netra_isolation.backends.clickhouse.isolator import (
        AsyncClickHouseClient,
        ClickHouseClient,
        ClickHouseTestIsolator,
    )
    from netra_isolation.backends.postgres.isolator import PostgreSQLTestIsolator
    from netra_isolation.binding import acreate, acreate_batch
    from netra_isolation.contexts import (
        with_database_snapshots,
        with_isolated_clickhouse,
        with_isolated_clickhouse_sync,
        with_isolated_postgres,
        with_isolated_postgres_sync,
    )
    from netra_isolation.engines import follow_engine
    from netra_isolation.errors import (
        BinariesNotFoundError,
        ClickHouseQueryError,
        ConfigurationError,
        MigrationError,
        NetraIsolationError,
        NoSessionError,
        OutOfSpaceError,
        SeedError,
        ServerError,
        ServerStartError,
        ServerUnreachableError,
        SnapshotError,
        TemplateBuildError,
        UnknownChoiceError,
        UnknownSchemaTypeError,
        ValidationFailedError,
    )
    from netra_isolation.handle import IsolatedTestConfig
    from netra_isolation.isolator import DatabaseRef, TemplateRef, TemplateSpec
    from netra_isolation.seed_data_manager import Scenario, scenario
    from netra_isolation.settings import Settings
    from netra_isolation.templates import (
        AlembicBuilder,
        MetadataBuilder,
        SetupBuilder,
        SqlFilesBuilder,
        TemplateBuilder,
    )
    from netra_isolation.test_database_manager import TestDatabaseManager

_WHERE = {
    "AlembicBuilder": "netra_isolation.templates",
    "AsyncClickHouseClient": "netra_isolation.backends.clickhouse.isolator",
    "BinariesNotFoundError": "netra_isolation.errors",
    "ClickHouseClient": "netra_isolation.backends.clickhouse.isolator",
    "ClickHouseQueryError": "netra_isolation.errors",
    "ClickHouseTestIsolator": "netra_isolation.backends.clickhouse.isolator",
    "ConfigurationError": "netra_isolation.errors",
    "DatabaseRef": "netra_isolation.isolator",
    "IsolatedTestConfig": "netra_isolation.handle",
    "MetadataBuilder": "netra_isolation.templates",
    "MigrationError": "netra_isolation.errors",
    "NetraIsolationError": "netra_isolation.errors",
    "NoSessionError": "netra_isolation.errors",
    "OutOfSpaceError": "netra_isolation.errors",
    "PostgreSQLTestIsolator": "netra_isolation.backends.postgres.isolator",
    "Scenario": "netra_isolation.seed_data_manager",
    "SeedError": "netra_isolation.errors",
    "ServerError": "netra_isolation.errors",
    "ServerStartError": "netra_isolation.errors",
    "ServerUnreachableError": "netra_isolation.errors",
    "Settings": "netra_isolation.settings",
    "SetupBuilder": "netra_isolation.templates",
    "SnapshotError": "netra_isolation.errors",
    "SqlFilesBuilder": "netra_isolation.templates",
    "TemplateBuildError": "netra_isolation.errors",
    "TemplateBuilder": "netra_isolation.templates",
    "TemplateRef": "netra_isolation.isolator",
    "TemplateSpec": "netra_isolation.isolator",
    "TestDatabaseManager": "netra_isolation.test_database_manager",
    "UnknownChoiceError": "netra_isolation.errors",
    "UnknownSchemaTypeError": "netra_isolation.errors",
    "ValidationFailedError": "netra_isolation.errors",
    "acreate": "netra_isolation.binding",
    "acreate_batch": "netra_isolation.binding",
    "follow_engine": "netra_isolation.engines",
    "scenario": "netra_isolation.seed_data_manager",
    "with_database_snapshots": "netra_isolation.contexts",
    "with_isolated_clickhouse": "netra_isolation.contexts",
    "with_isolated_clickhouse_sync": "netra_isolation.contexts",
    "with_isolated_postgres": "netra_isolation.contexts",
    "with_isolated_postgres_sync": "netra_isolation.contexts",
}

__all__ = [
    "AlembicBuilder",
    "AsyncClickHouseClient",
    "BinariesNotFoundError",
    "ClickHouseClient",
    "ClickHouseQueryError",
    "ClickHouseTestIsolator",
    "ConfigurationError",
    "DatabaseRef",
    "IsolatedTestConfig",
    "MetadataBuilder",
    "MigrationError",
    "NetraIsolationError",
    "NoSessionError",
    "OutOfSpaceError",
    "PostgreSQLTestIsolator",
    "Scenario",
    "SeedError",
    "ServerError",
    "ServerStartError",
    "ServerUnreachableError",
    "Settings",
    "SetupBuilder",
    "SnapshotError",
    "SqlFilesBuilder",
    "TemplateBuildError",
    "TemplateBuilder",
    "TemplateRef",
    "TemplateSpec",
    "TestDatabaseManager",
    "UnknownChoiceError",
    "UnknownSchemaTypeError",
    "ValidationFailedError",
    "acreate",
    "acreate_batch",
    "follow_engine",
    "scenario",
    "with_database_snapshots",
    "with_isolated_clickhouse",
    "with_isolated_clickhouse_sync",
    "with_isolated_postgres",
    "with_isolated_postgres_sync",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
