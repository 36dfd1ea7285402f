"""Playbook clock under load: 100 incidents open at once, each waiting then escalating.

Measures how late each escalation step runs after its deadline (target <= 50 ms), and the
CPU the idle process uses (target < 1 %). Run: .venv/bin/python benchmarks/playbook_clock.py
"""

from __future__ import annotations

import asyncio
import io
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import header, percentile
from watcher.app import App
from watcher.core.clock import from_ts
from watcher.core.config import load
from watcher.core.models import Event

INCIDENTS = 100
WAIT = 3
CONFIG = """
[watcher]
database = "bench.db"
[people.sam]
name = "Sam"
[contacts.alex]
name = "Alex"
console = true
[codes.code]
person = "sam"
phrase = ["the network went down at work"]
playbook = "escalate"
[playbooks.escalate]
steps = [
  { notify = ["alex"], message = "first {incident}" },
  { wait_ack = "WAITs" },
  { notify = ["alex"], message = "second {incident}" },
]
""".replace("WAIT", str(WAIT))


async def main() -> None:
    print(header("Playbook clock: 100 incidents open at once"))
    folder = Path(tempfile.mkdtemp())
    (folder / "config.toml").write_text(CONFIG)
    app = App(load(folder / "config.toml", environ={}), stdout=io.StringIO(), connectors=[])
    stop = asyncio.Event()
    runner = asyncio.create_task(app.run(stop=stop))
    for n in range(INCIDENTS):  # spread over ~2 s so deadlines fall at many moments
        await app.event(Event(platform="replay", person="sam", kind="message", id=f"e{n}",
                              at=datetime.now(UTC), text="the network went down at work"))
        await asyncio.sleep(0.02)
    await asyncio.sleep(WAIT + 3)
    rows = app.store.conn.execute(
        "SELECT incident_id, text, created_at FROM outbox ORDER BY id").fetchall()
    first = {r[0]: from_ts(r[2]) for r in rows if r[1].startswith("first")}
    second = {r[0]: from_ts(r[2]) for r in rows if r[1].startswith("second")}
    # Upper bound of lateness: the wait starts a little after the first message is queued.
    late = [((second[i] - first[i]).total_seconds() - WAIT) * 1000 for i in second]
    print(f"escalations: {len(late)} of {INCIDENTS}")
    print(f"lateness after deadline (ms): p50 {percentile(late, 50):.1f}  "
          f"p99 {percentile(late, 99):.1f}  max {max(late):.1f}  (target <= 50)")
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(30)
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0) * 100
    print(f"idle CPU with {INCIDENTS} incidents open, over 30 s: {cpu:.2f} % (target < 1)")
    stop.set()
    await runner
    await app.aclose()


if __name__ == "__main__":
    asyncio.run(main())
