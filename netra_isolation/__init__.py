"""netra_isolation: every test its own real PostgreSQL and ClickHouse database."""

from netra_isolation.binding import acreate, acreate_batch
from netra_isolation.clickhouse_isolation import (
    AsyncClickHouseClient,
    ClickHouseClient,
    ClickHouseTestIsolator,
)
from netra_isolation.engines import follow_engine
from netra_isolation.errors import (
    BinariesNotFoundError,
    ClickHouseQueryError,
    ConfigurationError,
    MigrationError,
    NetraIsolationError,
    NoSessionError,
    SeedError,
    ServerError,
    ServerStartError,
    ServerUnreachableError,
    SnapshotError,
    UnknownChoiceError,
    UnknownSchemaTypeError,
    ValidationFailedError,
)
from netra_isolation.isolated_test_config import (
    IsolatedTestConfig,
    with_database_snapshots,
    with_isolated_clickhouse,
    with_isolated_clickhouse_sync,
    with_isolated_postgres,
    with_isolated_postgres_sync,
)
from netra_isolation.isolator import DatabaseRef, TemplateRef, TemplateSpec
from netra_isolation.postgres_isolation import PostgreSQLTestIsolator
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
