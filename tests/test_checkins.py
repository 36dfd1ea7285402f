"""Check-in codes: silence past a stored deadline opens one incident; blindness is told."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from detectors.codes import build_detectors
from tests.conftest import Clock, write_config
from watcher.core.config import load
from watcher.core.models import Event
from watcher.core.store import Store
from watcher.engine.engine import Engine

MORNING = """
[codes.morning]
person = "sam"
checkin = { by = "10:00", phrase = ["good morning"] }
playbook = "check-on-me"
"""
EVERY = """
[codes.alive]
person = "sam"
checkin = { every = "24h", grace = "30m" }
playbook = "check-on-me"
"""


def engine(tmp_path: Path, extra: str, clock: Clock) -> Engine:
    config = load(write_config(tmp_path, extra=extra), environ={})
    return Engine(config, Store(tmp_path / "w.db"), build_detectors(config)[0], clock)


def post(n: int, at: datetime, text: str = "good morning all") -> Event:
    return Event(platform="telegram", person="sam", kind="message", id=f"p{n}", at=at,
                 text=text)


def feed_read(eng: Engine) -> None:
    """What a connector does after every successful read: the watch is not blind."""
    with eng.store.transaction():
        eng.store.feed_ok("sam/telegram", eng.clock())


def checkin_incidents(eng: Engine) -> list[str | None]:
    return [i.event_key for i in eng.store.incidents() if i.code in ("morning", "alive")]


async def test_daily_checkin_by_ten(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))  # 08:00 London
    eng = engine(tmp_path, MORNING, clock)
    eng.checkins.tick()  # sets the first deadline: today 10:00
    clock.advance(hours=1)
    await eng.ingest(post(1, clock(), "Good morning!! ☀"))
    clock.advance(hours=1, minutes=1)
    assert eng.checkins.tick() == 1
    assert checkin_incidents(eng) == []  # checked in at 09:00
    clock.advance(hours=24)  # 10:01 next day, and no check-in was posted
    await eng.ingest(post(2, clock() - timedelta(hours=2), "just a normal post"))
    eng.checkins.tick()
    eng.checkins.tick()
    assert checkin_incidents(eng) == ["checkin:morning:2026-11-23T10:00:00.000000Z"]


async def test_every_period_and_restart(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    eng = engine(tmp_path, EVERY, clock)
    await eng.ingest(post(1, clock(), "anything at all"))
    clock.advance(hours=24, minutes=29)
    eng.checkins.tick()
    eng.store.close()
    eng = engine(tmp_path, EVERY, clock)  # restarted: the deadline is in the database
    assert checkin_incidents(eng) == []
    clock.advance(minutes=2)
    eng.checkins.tick()
    assert len(checkin_incidents(eng)) == 1
    clock.advance(hours=1)
    feed_read(eng)
    eng.checkins.tick()
    assert len(checkin_incidents(eng)) == 1  # one incident per missed period
    clock.advance(hours=24)
    feed_read(eng)
    eng.checkins.tick()
    assert len(checkin_incidents(eng)) == 2


LIVE_TELEGRAM = """
[people.sam.telegram]
user_id = 111

[connectors.telegram]
token = { env = "TG_TOKEN" }
"""


async def test_blind_watch_is_told_not_fired(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    config = load(write_config(tmp_path, extra=MORNING + LIVE_TELEGRAM),
                  environ={"TG_TOKEN": "1:x"})
    eng = Engine(config, Store(tmp_path / "w.db"), build_detectors(config)[0], clock)
    eng.checkins.tick()
    with eng.store.transaction():
        eng.store.feed_failed("sam/telegram", "the bot was removed from the family group",
                              clock())
    clock.advance(hours=2, minutes=1)
    eng.checkins.tick()
    assert checkin_incidents(eng) == []
    rows = eng.store.deliveries()
    assert [r["kind"] for r in rows] == ["checkin-blind"]
    assert "cannot tell whether they checked in" in rows[0]["text"]
    assert "the bot was removed from the family group" in rows[0]["text"]


async def test_clock_jumps_neither_lose_nor_double(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    eng = engine(tmp_path, MORNING, clock)
    eng.checkins.tick()
    clock.advance(hours=1, minutes=59)
    clock.advance(minutes=-30)  # NTP steps the clock back
    eng.checkins.tick()
    assert checkin_incidents(eng) == []
    clock.advance(hours=3)  # and forward past the deadline
    eng.checkins.tick()
    clock.advance(minutes=-20)
    eng.checkins.tick()
    assert len(checkin_incidents(eng)) == 1
