"""ClickHouse: templates cloned table by table as hard links, a database per test (it has no
transactions), a throwaway server run by an unprivileged user."""

from netra_isolation.backends import Parts
from netra_isolation.backends.clickhouse.checks import CHECKS
from netra_isolation.backends.clickhouse.isolator import ClickHouseTestIsolator
from netra_isolation.backends.clickhouse.server import EphemeralClickHouse

PARTS = Parts(
    isolator=ClickHouseTestIsolator,
    server=lambda settings: EphemeralClickHouse(settings.cache_dir, settings.server_data),
    checks=CHECKS,
)
