"""Pointing a factory at "the running test's session" on factory-boy releases before 3.3.

factory-boy 3.3.0 added `Meta.sqlalchemy_session_factory`, called at every `create()`; that
is what `bind_factories` sets. factory-boy 3.2 reads only `Meta.sqlalchemy_session`, a
session object, at every `create()` (and raises "No session provided." when it is None).
There it gets a stand-in whose every attribute is looked up on the session the getter
returns at that moment, so the factory still writes to whichever test is running. No
upstream issue: a feature that arrived in 3.3, not a bug.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import factory

HAS_SESSION_FACTORY = tuple(int(p) for p in factory.__version__.split(".")[:2]) >= (3, 3)


class RunningSession:
    """Stands for the session `get()` returns at each attribute access."""

    def __init__(self, get: Callable[[], Any]) -> None:
        self._get = get

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)

    def __repr__(self) -> str:
        return f"<RunningSession of {self._get.__qualname__}>"


def point_at(factory_class: Any, get: Callable[[], Any]) -> None:
    """Make the factory use the session `get()` returns at each `create()`."""
    meta = factory_class._meta  # factory-boy's options (untyped)
    if HAS_SESSION_FACTORY:
        meta.sqlalchemy_session_factory = get
        meta.sqlalchemy_session = None
    else:
        meta.sqlalchemy_session = RunningSession(get)


def unbound(factory_class: Any, get: Callable[[], Any]) -> bool:
    """Whether the factory has no session of its own: none set, or the one `point_at` set
    for `get`."""
    meta = factory_class._meta
    if meta.model is None:  # an abstract base
        return False
    made = getattr(meta, "sqlalchemy_session_factory", None)
    session = meta.sqlalchemy_session
    if HAS_SESSION_FACTORY and made is not None:
        return made is get
    if isinstance(session, RunningSession):
        return session._get is get
    return session is None


def forget(factory_class: Any) -> None:
    """Drop the session factory-boy 3.3+ kept on the factory (the stand-in holds none)."""
    if HAS_SESSION_FACTORY:
        factory_class._meta.sqlalchemy_session = None
