"""PostgreSQL: templates cloned with `CREATE DATABASE .. TEMPLATE`, tests at `database` or
`transaction` level, a throwaway server run by an unprivileged user."""

from netra_isolation.backends import Parts
from netra_isolation.backends.postgres.checks import CHECKS
from netra_isolation.backends.postgres.isolator import PostgreSQLTestIsolator
from netra_isolation.backends.postgres.server import EphemeralPostgres

PARTS = Parts(
    isolator=PostgreSQLTestIsolator,
    server=EphemeralPostgres.from_settings,
    checks=CHECKS,
)
