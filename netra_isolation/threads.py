"""Async APIs over the synchronous core: a blocking call run in a worker thread, written once;
and a blocking call kept off a running event loop (`outside_loop`).

The threads are the process's own few, kept for its life, not the running loop's default
executor: pytest-asyncio gives each test a loop of its own, so a fresh executor and thread
per test, and what a thread keeps (an isolator's admin connection, opened per thread) would
be made again, and left open, for every test.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_threads: ThreadPoolExecutor


def _fresh_threads() -> None:
    """The process's pool; made anew in a forked child, which has none of its parent's
    threads."""
    global _threads
    _threads = ThreadPoolExecutor(8, thread_name_prefix="netra-io")


_fresh_threads()
os.register_at_fork(after_in_child=_fresh_threads)


async def to_thread(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """`asyncio.to_thread` on the process's threads: the call, with the caller's context
    variables, off the event loop."""
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_threads, call)


def in_thread(function: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`function`'s awaitable form (a method's too): the same call, off the event loop."""

    @functools.wraps(function)
    async def awaitable(*args: P.args, **kwargs: P.kwargs) -> R:
        return await to_thread(function, *args, **kwargs)

    return awaitable


def outside_loop(function: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """The call, in a thread where no event loop runs: this one, unless a loop runs here (the
    caller is async code blocking on a synchronous step, as an app's async engine connecting
    does), else a thread of its own, waited for. For code that may start a loop of its own
    (`asyncio.run` in an async env.py), which cannot start inside a running one."""
    if not _loop_running():  # (not inside an `except`: what the call raises would carry the
        return function(*args, **kwargs)  # check's error as its context, shown with it)
    call = functools.partial(contextvars.copy_context().run, function, *args, **kwargs)
    # a thread of its own, not the process's pool: a caller may hold one of the pool's
    with ThreadPoolExecutor(1, thread_name_prefix="netra-outside-loop") as one:
        return one.submit(call).result()


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
