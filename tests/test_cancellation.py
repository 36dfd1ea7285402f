"""A watcher that is stopped (cancelled, as on shutdown or a kill) stops at once.

On Python 3.11, `asyncio.wait_for` returns the result instead of raising when the cancel of
the waiting task lands in the same loop step as the awaited work finishing (the work is
done, the cancel is lost). `App.run` then never ended: a test cancelled it while an alert
was being sent, and it hung until pytest-timeout. These tests make exactly that timing
happen, with no sleeps: the work finishes and the cancel lands in the same step.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connectors.common import until_stopped, wait_or_stop
from detectors.codes import build_detectors
from playbooks.runner import PlaybookRunner
from tests.conftest import Clock
from watcher.core.config import load
from watcher.core.models import Event
from watcher.core.store import Store
from watcher.engine.engine import Engine
from watcher.supervision import failsafe

CODE_USE = Event(platform="telegram", person="sam", kind="message", id="c/1",
                 at=datetime(2026, 11, 22, 14, 2, tzinfo=UTC),
                 text="the network went down at work", link="https://t.me/c/1")


class AnsweringChannel:
    """Its first send waits for the test to answer it (as Telegram answering); the others
    are delivered at once (so a runner that did not stop would simply go on)."""

    name = "console"

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.sent = 0

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        self.sent += 1
        if self.sent > 1:
            return f"msg-{self.sent}"
        self.entered.set()
        return await self.answer


async def finished(task: asyncio.Task[Any]) -> asyncio.Task[Any]:
    await asyncio.wait({task})  # never raises: the outcome is read from the task
    return task


async def test_a_cancel_that_lands_as_an_alert_is_delivered_stops_the_runner(
        config_path: Path, tmp_path: Path) -> None:
    config = load(config_path, environ={})
    clock = Clock()
    store = Store(tmp_path / "w.db")
    try:
        engine = Engine(config, store, build_detectors(config)[0], clock)
        await engine.ingest(CODE_USE)
        channel = AnsweringChannel()
        runner = PlaybookRunner(config, store, {"console": channel}, clock)
        task = asyncio.create_task(runner.tick())
        await channel.entered.wait()
        # In one step: the answer arrives and the watcher is cancelled.
        channel.answer.set_result("msg-1")
        task.cancel()
        await finished(task)
        # Before the fix the cancel was swallowed: tick went on to the next alert and
        # returned normally, and App.run looped on instead of stopping.
        assert task.cancelled()
        assert channel.sent == 1  # stopped after the one message in flight
    finally:
        store.close()


async def test_wait_or_stop_keeps_a_cancel_that_lands_with_the_stop() -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(wait_or_stop(stop, 3600))
    await asyncio.sleep(0)  # one step: the task is now waiting on `stop`
    # In one step: the stop wakes the inner wait, the cancel the outer one.
    stop.set()
    task.cancel()
    assert (await finished(task)).cancelled()


async def test_probing_the_database_keeps_a_cancel_that_lands_with_the_stop(
        tmp_path: Path) -> None:
    store = Store(tmp_path / "w.db")
    try:
        stop = asyncio.Event()
        task = asyncio.create_task(failsafe.wait_until_writable(store, stop, Clock(), 3600))
        await asyncio.sleep(0)
        stop.set()
        task.cancel()
        assert (await finished(task)).cancelled()
    finally:
        store.close()


async def test_until_stopped_keeps_a_cancel_that_lands_while_the_work_winds_down() -> None:
    stop, winding_down, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            winding_down.set()
            await done.wait()  # e.g. closing a socket
            raise

    task = asyncio.create_task(until_stopped(work(), stop))
    stop.set()
    await winding_down.wait()
    task.cancel()  # the watcher is stopped while the work is still winding down
    done.set()
    assert (await finished(task)).cancelled()
