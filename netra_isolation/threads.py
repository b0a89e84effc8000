"""Async APIs over the synchronous core: a blocking call run in a worker thread, written once."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


def in_thread(function: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`function`'s awaitable form (a method's too): the same call, off the event loop."""

    @functools.wraps(function)
    async def awaitable(*args: P.args, **kwargs: P.kwargs) -> R:
        return await asyncio.to_thread(function, *args, **kwargs)

    return awaitable
