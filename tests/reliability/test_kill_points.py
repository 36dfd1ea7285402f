"""kill -9 of a real `python -m watcher.cli run --config ...` at 20 random points of a
1,000-event run (50 code uses), restarted each time, reading from the Telegram stand-in.

The stand-in runs in the test's event loop on loopback; the subprocess talks to it over real
HTTP, the token coming from the environment, as in production. Telegram (rather than the
replay connector, which tests/test_crash.py covers) because its at-least-once path is the
delicate one: an update is stored with the offset past it, and only the next getUpdates
confirms it to Telegram, so a kill between the two must make Telegram send it again and the
store's dedupe must absorb it.

The 1,000 messages are queued first; the kill points are 20 seeded-random numbers of stored
events (at least 10 past the last kill). Each round starts the watcher, polls the database
until that many events are stored, and kills it there: the kill lands mid-work by
construction, and the test asserts it did (events still unstored, or alerts not yet sent,
at the moment of the kill).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, write_config
from tests.conftest import eventually as until
from tests.fakes.telegram_api import FakeTelegram
from tests.reliability.harness import (
    EVENTS,
    alert_numbers,
    check,
    db_seen_count,
    is_code,
    outbox_settled,
    telegram_config,
    text_of,
)

pytestmark = pytest.mark.timeout(150)

SAM, ALEX = 5001, 5002
GROUP = -1001234567890
KILLS = 20
SEED = 20261122



class SmallBatches(FakeTelegram):
    """Telegram may answer getUpdates with fewer updates than asked for; small batches
    spread the work so that twenty kill points all land in the middle of it."""

    async def api_getUpdates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        return await super().api_getUpdates({**p, "limit": 4})


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with SmallBatches() as server:
        server.add_user(SAM, "Sam")
        server.add_user(ALEX, "Alex")
        server.add_chat(GROUP, "supergroup", "Family")
        server.set_bot_member(GROUP, "administrator")
        yield server
        assert server.writes_to(GROUP) == [] and server.writes_to(SAM) == []


def query(db: Path, sql: str) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=5)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


def unsent(db: Path) -> int:
    """Alerts not yet sent: outbox rows pending, plus runs whose notify has not run."""
    return (query(db, "SELECT COUNT(*) FROM outbox WHERE status != 'sent'")
            + query(db, "SELECT COUNT(*) FROM runs WHERE status = 'active'"))


async def start(config: Path, token: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "TG_TOKEN": token, "PYTHONPATH": str(ROOT)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "watcher.cli", "run", "--config", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env)


async def test_kill_9_at_20_random_points(tg: FakeTelegram, tmp_path: Path) -> None:
    started = time.monotonic()
    config = write_config(tmp_path, text=telegram_config(tg.url, 2))
    db = tmp_path / "watcher.db"
    code_keys: set[str] = set()
    for n in range(EVENTS):
        update = tg.inject_message(GROUP, SAM, text_of(n))
        if is_code(n):
            code_keys.add(f"telegram:{GROUP}/{update['message']['message_id']}")
    rng = random.Random(SEED)
    points = sorted(rng.sample(range(10, EVENTS - 10), KILLS))
    kills: list[tuple[int, int, int]] = []  # (stored before, stored at the kill, unsent)
    for point in points:
        before = db_seen_count(db)
        # The last run may have overshot this point; near the end, kill while alerts are
        # still being sent instead.
        target = min(max(point, before + 10), EVENTS)
        proc = await start(config, tg.token)
        try:
            await until(lambda t=target: db_seen_count(db) >= t,  # type: ignore[misc]
                        f"{target} events stored", timeout=30)
        finally:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        kills.append((before, db_seen_count(db), unsent(db)))

    # Every kill landed mid-work: the run had made progress, and work was left undone.
    for before, at_kill, left in kills:
        assert at_kill > before or at_kill == EVENTS, kills
        assert at_kill < EVENTS or left > 0, f"a kill after all the work: {kills}"

    final = await start(config, tg.token)
    try:
        await until(lambda: db_seen_count(db) == EVENTS and unsent(db) == 0
                    and query(db, "SELECT COUNT(*) FROM incidents") >= len(code_keys),
                    "the last run to finish the work", timeout=60)
    finally:
        final.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(final.wait(), 15) == 0

    conn = sqlite3.connect(db)
    try:
        keys = {int(i): k for i, k in conn.execute("SELECT id, event_key FROM incidents")}
        seen = conn.execute("SELECT COUNT(*) FROM seen_events").fetchone()[0]
    finally:
        conn.close()
    assert seen == EVENTS
    texts = [m.get("text", "") for m in tg.sent_messages(ALEX)]
    check("kill-9/telegram", incident_keys=keys, code_keys=code_keys,
          alerts=alert_numbers(texts), faults=KILLS, started=started,
          extra={"kill_points": [k[1] for k in kills],
                 "unsent_at_kill": [k[2] for k in kills]})


class SlowReplies(FakeTelegram):
    """Telegram delivers each message at once, but its reply to the bot is slow: a crash
    in that window leaves alerts that reached the contact still pending in the outbox."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[str] = []
        self.reply_delay = 0.0

    async def api_sendMessage(self, p: dict[str, object]) -> dict[str, object]:  # type: ignore[override]
        result = super().api_sendMessage(p)
        self.delivered.append(str(result.get("text", "")))
        await asyncio.sleep(self.reply_delay)
        return result


async def test_a_crash_repeats_at_most_one_alert(tmp_path: Path) -> None:
    """README: "A kill -9 at any moment loses nothing; at most the one alert in flight is
    sent twice." Ten code uses arrive together; their alerts are due at once; the first
    reaches Telegram and the watcher dies before Telegram's reply comes back (and before
    the client's own timeout). After the restart, how many of the ten does Alex get twice?"""
    import io

    from watcher.app import App
    from watcher.core.config import load

    async with SlowReplies() as server:
        server.add_user(SAM, "Sam")
        server.add_user(ALEX, "Alex")
        server.add_chat(GROUP, "supergroup", "Family")
        server.set_bot_member(GROUP, "administrator")
        config = load(write_config(tmp_path, text=telegram_config(server.url, 2)),
                      environ={"TG_TOKEN": server.token})
        for n in range(10):
            server.inject_message(GROUP, SAM, text_of(n * 20))  # ten code uses
        server.reply_delay = 30.0
        first = App(config, database=tmp_path / "w.db", stdout=io.StringIO())
        task = asyncio.create_task(first.run())
        await until(lambda: len(server.delivered) >= 1, "an alert reaching Telegram")
        await asyncio.sleep(0.3)  # anything else the watcher would send meanwhile
        in_flight = len(server.delivered)
        task.cancel()  # the crash: nothing after this point is written
        await asyncio.gather(task, return_exceptions=True)
        await first.aclose()
        server.reply_delay = 0.0
        second = App(config, database=tmp_path / "w.db", stdout=io.StringIO())
        stop = asyncio.Event()
        task = asyncio.create_task(second.run(stop=stop))
        try:
            await until(lambda: outbox_settled(second.store)
                        and len(second.store.incidents()) == 10, "the restart to finish")
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            await second.aclose()
    twice = len(server.delivered) - len(set(server.delivered))
    assert len(set(server.delivered)) == 10  # nothing lost
    assert in_flight == 1  # one message at a time: only one can be caught mid-send
    assert twice <= 1, f"one crash sent {twice} alerts twice ({in_flight} were in flight)"
