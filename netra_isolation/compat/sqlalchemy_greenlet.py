"""`in_greenlet()` on SQLAlchemy releases that lack it.

SQLAlchemy 2.0.24 added `sqlalchemy.util.concurrency.in_greenlet()` (whether the running code
is inside `greenlet_spawn`, i.e. inside `AsyncSession.run_sync`, where sync IO may await).
Releases 2.0.0 to 2.0.23 have no public way to ask; their `await_only` decides the same thing
by `isinstance(getcurrent(), _AsyncIoGreenlet)`, so the fallback asks exactly that. No
upstream issue: this is a feature that arrived late, not a bug.
"""

from __future__ import annotations

from collections.abc import Callable


def fallback() -> Callable[[], bool]:
    from greenlet import getcurrent
    from sqlalchemy.util import _concurrency_py3k

    spawned = _concurrency_py3k._AsyncIoGreenlet

    def in_greenlet() -> bool:
        return isinstance(getcurrent(), spawned)

    return in_greenlet


def _resolve() -> Callable[[], bool]:
    try:
        from sqlalchemy.util.concurrency import in_greenlet as upstream
    except ImportError:  # SQLAlchemy < 2.0.24
        return fallback()
    return upstream


in_greenlet: Callable[[], bool] = _resolve()
