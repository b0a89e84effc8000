"""The original design's module name for the PostgreSQL isolator, which lives with the rest of
its backend in `netra_isolation.backends.postgres`."""

from netra_isolation.backends.postgres.isolator import PostgreSQLTestIsolator

__all__ = ["PostgreSQLTestIsolator"]
