"""Telegram: the watch goes on through every fault the Bot API can throw at it.

Each test runs the real App (real PTB, real HTTP) against the Bot API stand-in through a
scripted run of 1,000 messages from Sam in a watched group, 50 of them uses of the phrase
code, injected in 20 bursts of 50. The fault is injected before bursts 5, 10 and 15 (three
times, in the middle of the run, while earlier alerts may still be in flight). Then: every
code use opened exactly one incident, every alert reached Alex at the stand-in, and at most
one duplicate alert per fault (tests/reliability/harness.py).

"Restart" is what a Telegram outage really looks like: the Bot API is unreachable and open
connections (the parked long poll, a send) are cut, but unconfirmed updates stay queued on
Telegram's side (for 24 h), so nothing posted meanwhile is lost.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import eventually as until
from tests.conftest import write_config
from tests.fakes.telegram_api import FakeTelegram
from tests.reliability.harness import (
    EVENTS,
    alert_numbers,
    check,
    incident_keys,
    is_code,
    outbox_settled,
    seen_count,
    telegram_config,
    text_of,
)
from watcher.app import App
from watcher.core.config import load

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")]

SAM, ALEX = 5001, 5002
GROUP = -1001234567890
BURSTS, SIZE = 20, EVENTS // 20
FAULT_BURSTS = (5, 10, 15)
# PTB gives getUpdates read_timeout (10 s, connectors/telegram.make_bot) + poll_timeout.
POLL_TIMEOUT = 2
GET_UPDATES_TIMEOUT = 10 + POLL_TIMEOUT



def config_text(tg: FakeTelegram) -> str:
    return telegram_config(tg.url, POLL_TIMEOUT)


def populate(tg: FakeTelegram) -> None:
    tg.add_user(SAM, "Sam")
    tg.add_user(ALEX, "Alex")
    tg.add_chat(GROUP, "supergroup", "Family")
    tg.set_bot_member(GROUP, "administrator")


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        populate(server)
        yield server
        assert server.writes_to(GROUP) == [] and server.writes_to(SAM) == []  # SILENT


class Fault:
    """One kind of fault: `before` a burst (returns how many faults it injected) and
    `after` it (e.g. bring the server back)."""

    name = "none"

    def __init__(self, tg: FakeTelegram) -> None:
        self.tg = tg

    async def before(self, burst: int) -> int:
        return 0

    async def after(self, burst: int) -> None:
        return None

    def verify(self) -> None:
        """Evidence, from the stand-in's log, that the fault did what it is meant to."""
        assert not self.tg._faults, "every injected fault was really hit"


class ServerErrors(Fault):
    name = "500"

    async def before(self, burst: int) -> int:
        self.tg.fail("getUpdates", 500, times=1)
        self.tg.fail("sendMessage", 500, times=1)
        return 2


class RateLimited(Fault):
    name = "429"

    async def before(self, burst: int) -> int:
        self.tg.fail("getUpdates", 429, retry_after=1, times=1)
        self.tg.fail("sendMessage", 429, retry_after=1, times=1)
        return 2


class Hangs(Fault):
    """3 s hangs (shorter than every client timeout: the call completes late), and once a
    getUpdates hang longer than its read timeout, so the connector's own timeout fires."""

    name = "hang"

    async def before(self, burst: int) -> int:
        if burst == FAULT_BURSTS[1]:
            self.tg.hang("getUpdates", GET_UPDATES_TIMEOUT + 2)
        else:
            self.tg.hang("getUpdates", 3)
        self.tg.hang("sendMessage", 3)
        return 2

    def verify(self) -> None:
        super().verify()
        # The long hang: PTB's read timeout gave up on it (the client went away first).
        assert [c for c in self.tg.calls("getUpdates") if c.status is None]


class Drops(Fault):
    name = "drop"

    async def before(self, burst: int) -> int:
        self.tg.drop("getUpdates")
        self.tg.drop("sendMessage")
        return 2


class Restart(Fault):
    """The Bot API goes away (connections cut) while the burst is posted; the updates stay
    queued on Telegram's side; it comes back once the watcher has noticed the outage."""

    name = "restart"

    def __init__(self, tg: FakeTelegram) -> None:
        super().__init__(tg)
        self.app: App | None = None

    async def before(self, burst: int) -> int:
        await self.tg.stop()
        return 1

    async def after(self, burst: int) -> None:
        assert self.app is not None
        store = self.app.store
        await until(lambda: any(h["feed"] == "sam/telegram" and h["blind_since"]
                                for h in store.health()), "the outage to be noticed")
        await self.tg.start()  # same port: the old one is kept in tg.port


async def scenario(tg: FakeTelegram, tmp_path: Path, fault: Fault) -> None:
    started = time.monotonic()
    config = load(write_config(tmp_path, text=config_text(tg)), environ={"TG_TOKEN": tg.token})
    app = App(config, database=tmp_path / "w.db", stdout=io.StringIO())
    if isinstance(fault, Restart):
        fault.app = app
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    code_keys: set[str] = set()
    faults = 0
    try:
        await tg.wait_polling(timeout=10)
        for burst in range(BURSTS):
            if burst in FAULT_BURSTS:
                faults += await fault.before(burst)
            for n in range(burst * SIZE, (burst + 1) * SIZE):
                update = tg.inject_message(GROUP, SAM, text_of(n))
                if is_code(n):
                    code_keys.add(f"telegram:{GROUP}/{update['message']['message_id']}")
            if burst in FAULT_BURSTS:
                await fault.after(burst)
            done = (burst + 1) * SIZE
            await until(lambda d=done: seen_count(app.store, "telegram:") >= d,  # type: ignore[misc]
                        f"burst {burst} stored", timeout=GET_UPDATES_TIMEOUT + 20)
        await until(lambda: len(app.store.incidents()) >= len(code_keys), "every incident")
        await until(lambda: outbox_settled(app.store), "every alert sent", timeout=40)
        fault.verify()
        assert seen_count(app.store, "telegram:") == EVENTS
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        keys = incident_keys(app.store)
        await app.aclose()
    texts = [m.get("text", "") for m in tg.sent_messages(ALEX)]
    check(f"telegram/{fault.name}", incident_keys=keys, code_keys=code_keys,
          alerts=alert_numbers(texts), faults=faults, started=started)


@pytest.mark.parametrize("kind", [ServerErrors, RateLimited, Hangs, Drops, Restart],
                         ids=lambda k: k.name)
async def test_no_code_missed_no_alert_lost(tg: FakeTelegram, tmp_path: Path,
                                            kind: type[Fault]) -> None:
    await scenario(tg, tmp_path, kind(tg))
