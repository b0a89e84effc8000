"""The original design's module name for the ClickHouse isolator and clients, which live with
the rest of their backend in `netra_isolation.backends.clickhouse`."""

from netra_isolation.backends.clickhouse.isolator import (
    AsyncClickHouseClient,
    ClickHouseClient,
    ClickHouseTestIsolator,
)

__all__ = ["AsyncClickHouseClient", "ClickHouseClient", "ClickHouseTestIsolator"]
