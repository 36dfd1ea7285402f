"""Playbook escalations (wait_ack) through wall-clock jumps: NTP stepping the clock forward
(a Raspberry Pi booting without a real-time clock) and back. No escalation doubled, none lost.

The App runs with a hand-moved clock (tests/conftest.Clock) and no platform connector: the
code use comes from the replay feed, alerts go to the console channel. The playbook: alert
Alex, wait 5 min for an ack, escalate to Jo, then wait 10 min and escalate again, twice
more (3 escalations in all, whatever the clock does).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import Clock, write_config
from watcher.app import App
from watcher.core.config import load

START = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
CONFIG = """
[watcher]
database = "watcher.db"
timezone = "UTC"

[people.sam]
name = "Sam"

[contacts.alex]
name = "Alex"
console = true

[contacts.jo]
name = "Jo"
console = true

[codes.network-down]
person = "sam"
phrase = ["the network went down at work"]
playbook = "escalate"

[playbooks.escalate]
steps = [
  { notify = ["alex"], message = "ALERT #{incident}" },
  { wait_ack = "5m" },
  { notify = ["jo"], message = "ESCALATION #{incident}" },
  { wait_ack = "10m", repeat_from = 2, times = 2 },
]

[connectors.replay]
files = ["feed.jsonl"]
"""


class Rig:
    def __init__(self, folder: Path) -> None:
        self.clock = Clock(START)
        self.out = io.StringIO()
        config = load(write_config(folder, text=CONFIG), environ={})
        self.app = App(config, stdout=self.out, clock=self.clock, connectors=[])
        self.feed = folder / "feed.jsonl"

    async def code_used(self) -> None:
        line = {"person": "sam", "id": "m1", "at": START.isoformat(),
                "text": "the network went down at work"}
        self.feed.write_text(json.dumps(line) + "\n")
        await self.app.poll_replay()
        await self.settle()

    async def settle(self, times: int = 3) -> None:
        """What `watcher run` does every tick (several ticks at the same clock reading)."""
        for _ in range(times):
            await self.app.settle()

    def count(self, word: str) -> int:
        return self.out.getvalue().count(f"{word} #1")

    def close(self) -> None:
        self.app.close()


async def test_forward_and_back_jumps_neither_double_nor_lose(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        await rig.code_used()
        assert (rig.count("ALERT"), rig.count("ESCALATION")) == (1, 0)
        rig.clock.advance(minutes=1)
        await rig.settle()
        assert rig.count("ESCALATION") == 0

        rig.clock.advance(hours=3)  # NTP steps the clock 3 h forward: every wait is overdue
        await rig.settle()
        assert rig.count("ESCALATION") == 1  # the overdue one, once (not the repeats too)
        rig.clock.advance(minutes=9)
        await rig.settle()
        assert rig.count("ESCALATION") == 1  # the repeat waits its own 10 min
        rig.clock.advance(minutes=2)
        await rig.settle()
        assert rig.count("ESCALATION") == 2

        rig.clock.advance(hours=-3)  # and 3 h back
        await rig.settle()
        assert rig.count("ESCALATION") == 2  # nothing is redone
        # The stored deadline is wall-clock time: after a jump back it is reached that
        # much later (3 h here), but it is reached, and fires once.
        rig.clock.advance(hours=3, minutes=9)
        await rig.settle()
        assert rig.count("ESCALATION") == 2
        rig.clock.advance(minutes=2)
        await rig.settle()
        assert rig.count("ESCALATION") == 3
        rig.clock.advance(hours=24)
        await rig.settle()
        assert (rig.count("ALERT"), rig.count("ESCALATION")) == (1, 3)  # times = 2: done
        assert rig.app.store.pending_runs() == 0
    finally:
        rig.close()


async def test_jump_back_during_the_first_wait_delays_but_keeps_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        await rig.code_used()
        rig.clock.advance(minutes=4)
        rig.clock.advance(hours=-1)  # back 1 h, one minute before the 5 min deadline
        await rig.settle()
        assert rig.count("ESCALATION") == 0
        rig.clock.advance(hours=1)  # an hour of real time later: still 1 min to go
        await rig.settle()
        assert rig.count("ESCALATION") == 0
        rig.clock.advance(minutes=1, seconds=1)
        await rig.settle()
        assert rig.count("ESCALATION") == 1  # the stored deadline, once
        rig.clock.advance(minutes=-30)
        await rig.settle()
        rig.clock.advance(minutes=30)
        await rig.settle()
        assert rig.count("ESCALATION") == 1
    finally:
        rig.close()


async def test_ack_before_a_forward_jump_stops_the_escalation(tmp_path: Path) -> None:
    """An acknowledged incident stays quiet even when a jump makes its wait overdue."""
    rig = Rig(tmp_path)
    try:
        await rig.code_used()
        [incident] = rig.app.store.incidents()
        with rig.app.store.transaction():
            assert rig.app.store.acknowledge(incident.id, "alex", rig.clock())
        rig.clock.advance(days=2)
        await rig.settle()
        rig.clock.advance(days=-2)
        await rig.settle()
        assert rig.count("ESCALATION") == 0
        assert rig.app.store.pending_runs() == 0
    finally:
        rig.close()
