"""The process's threads for async forms of sync calls."""

from __future__ import annotations

import asyncio
import contextvars
import multiprocessing
import threading

from netra_isolation.threads import to_thread

WHO = contextvars.ContextVar("who", default="nobody")


def test_a_call_runs_off_the_loop_with_the_callers_context() -> None:
    async def main() -> tuple[str, str]:
        WHO.set("caller")
        return await to_thread(lambda: (threading.current_thread().name, WHO.get()))

    name, who = asyncio.run(main())
    assert name.startswith("netra-io") and who == "caller"


def _in_child(queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    queue.put(asyncio.run(to_thread(lambda: 42)))


def test_a_forked_child_gets_threads_of_its_own() -> None:
    """The parent's threads do not exist in a child made by fork: with the parent's pool the
    child's first call would wait for ever."""
    assert asyncio.run(to_thread(lambda: 1)) == 1  # the parent's pool has a thread now
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_in_child, args=(queue,))
    child.start()
    child.join(timeout=20)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    assert queue.get(timeout=1) == 42
