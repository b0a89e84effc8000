"""clickhouse-sqlalchemy 0.3.2's asynch dialect (`clickhouse+asynch://`) on current SQLAlchemy
2.0.x and asynch 0.3+.

Upstream: xzkostyan/clickhouse-sqlalchemy issues 374, 385, 393 and 400. Each fix below is
applied only when the installed versions need it, and each is a no-op otherwise:

- connect (#374): since asynch 0.2.5/0.3 `asynch.connect()` returns an unopened Connection
  instead of a coroutine; the adapter awaited it (`TypeError: object Connection can't be used
  in 'await' expression`). We open it with `await conn.connect()`.
- commit/rollback (#385, #400): asynch 0.3+ raises NotSupportedError from both (ClickHouse
  has no transactions), so every SQLAlchemy `commit()` failed; they are no-ops, as in the sync
  native dialect.
- `_async_soft_close` (#393, #400): SQLAlchemy 2.0.44 awaits it on async cursors when a result
  is buffered; the adapter's cursor lacks it. Rows are fetched eagerly: nothing to close.
- parameter style (#400): asynch 0.3.1 substituted with `str.format`, breaking the dialect's
  `%(name)s` parameters; asynch 0.4 went back to `%` formatting, and this project requires
  asynch >= 0.4, so no fix is needed (see the test that checks the installed substitution).
"""

from __future__ import annotations

import inspect
from importlib import metadata
from typing import Any

APPLIED: list[str] = []


def _version(package: str) -> tuple[int, ...]:
    try:
        text = metadata.version(package)
    except metadata.PackageNotFoundError:
        return (0,)
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def patch_asynch_dialect() -> list[str]:
    """Apply the fixes the installed versions need; returns the names of those applied."""
    from clickhouse_sqlalchemy.drivers.asynch import connector

    dbapi_cls = connector.AsyncAdapt_asynch_dbapi
    connection_cls = connector.AsyncAdapt_asynch_connection
    cursor_cls = connector.AsyncAdapt_asynch_cursor

    if _version("asynch") >= (0, 3) and not getattr(dbapi_cls.connect, "_netra_fixed", False):

        def connect(self: Any, *args: Any, **kwargs: Any) -> Any:
            connection = self.asynch.connect(*args, **kwargs)
            if inspect.isawaitable(connection):  # asynch < 0.3
                connection = connector.await_only(connection)
            else:
                connector.await_only(connection.connect())
            return connection_cls(self, connection)

        connect._netra_fixed = True  # type: ignore[attr-defined]
        dbapi_cls.connect = connect
        APPLIED.append("connect")

    if _version("asynch") >= (0, 3) and not getattr(connection_cls.commit, "_netra_fixed", False):

        def no_transaction(self: Any) -> None:
            """ClickHouse has no transactions: nothing to commit or roll back."""

        no_transaction._netra_fixed = True  # type: ignore[attr-defined]
        connection_cls.commit = no_transaction
        connection_cls.rollback = no_transaction
        APPLIED.append("commit/rollback")

    if not hasattr(cursor_cls, "_async_soft_close"):

        async def _async_soft_close(self: Any) -> None:
            """Rows were fetched eagerly in execute(): nothing left to release."""

        cursor_cls._async_soft_close = _async_soft_close
        APPLIED.append("_async_soft_close")
    return list(APPLIED)
