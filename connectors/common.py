"""Small pieces every connector needs: stop-aware waiting, and an image that cannot be read.

Only the core types are imported here, so any connector may use it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from watcher.core.models import ImageTooLarge

# What reading an odd item (an update, an envelope, a record) can raise while it is parsed;
# anything else (network, storage) is not the item's fault. Caught per item, so one bad item
# is "could not be checked" and the feed goes on.
MALFORMED = (TypeError, ValueError, KeyError, AttributeError, IndexError)


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when the watcher is stopping. (asyncio.timeout, never
    wait_for: on 3.11 wait_for swallows a cancel that lands as `stop` is set.)"""
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await stop.wait()


async def until_stopped(work: Coroutine[Any, Any, None], stop: asyncio.Event) -> bool:
    """Run `work` until it ends (its exception propagates) or `stop` is set (True)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        await cancel_and_wait(task)
    if task.cancelled():
        return True
    task.result()
    return False


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and wait until it has ended. Its CancelledError is ours to swallow;
    one aimed at the caller (the watcher stopping meanwhile) is not: it goes on."""
    if task.done():
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise


class UnreadImage:
    """An image that will never be readable (too big, gone): detectors report a failure,
    so the event is still stored and the problem logged instead of the event vanishing."""

    def __init__(self, name: str, problem: str, too_large: bool) -> None:
        self._name = name
        self._problem = problem
        self._too_large = too_large

    @property
    def name(self) -> str:
        return self._name

    def read(self, max_bytes: int) -> bytes:
        if self._too_large:
            raise ImageTooLarge(f"{self._name}: {self._problem}")
        raise OSError(f"{self._name}: {self._problem}")
