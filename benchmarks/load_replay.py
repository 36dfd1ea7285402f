"""Load: 20 watched people x 3 platforms x 50 codes each, events at 1,000/s for a minute.

A writer appends events to a replay file at the target rate while the watcher follows it,
as `watcher run` does. Prints the rate sustained, detection latency (event written ->
event stored with its verdict) p50/p99, and peak memory.
Run: .venv/bin/python benchmarks/load_replay.py [--seconds 60] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import resource
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import header, percentile  # noqa: E402
from watcher.app import App  # noqa: E402
from watcher.core.clock import from_ts  # noqa: E402
from watcher.core.config import load  # noqa: E402

PEOPLE, CODES = 20, 50
PLATFORMS = ("telegram", "signal", "bluesky")
WORDS = ["amber", "orchard", "lantern", "velvet", "harbour", "meadow", "copper", "willow",
         "thistle", "ember", "quartz", "saffron", "juniper", "cobalt", "heron", "maple",
         "pebble", "tundra", "violet", "walnut"]


def config_text(rng: random.Random) -> tuple[str, list[str]]:
    lines = ['[watcher]\ndatabase = "load.db"\n', '[contacts.alex]\nname = "Alex"\n'
             'console = true\n', '[playbooks.p]\nsteps = [ { notify = ["alex"], '
             'message = "{code}" } ]\n', '[connectors.replay]\nfiles = ["feed.jsonl"]\n']
    phrases = []
    for p in range(PEOPLE):
        lines.append(f'[people.p{p}]\nname = "P{p}"\n')
        for c in range(CODES):
            phrase = " ".join(rng.sample(WORDS, 4))
            phrases.append(phrase)
            lines.append(f'[codes.p{p}-c{c}]\nperson = "p{p}"\nphrase = ["{phrase}"]\n'
                         'playbook = "p"\n')
    return "\n".join(lines), phrases


def writer(path: Path, texts: list[str], phrases: list[str], rate: int, seconds: int,
           done: list[int]) -> None:
    rng = random.Random(7)
    start = time.monotonic()
    n = 0
    with path.open("a", encoding="utf-8") as handle:
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate)
            while n < due:
                person = n % PEOPLE
                # One event in a hundred uses one of that person's own codes.
                text = phrases[person * CODES + rng.randrange(CODES)] if n % 100 == 0 \
                    else rng.choice(texts)
                handle.write(json.dumps({
                    "platform": PLATFORMS[n % 3], "person": f"p{person}", "id": f"e{n}",
                    "at": datetime.now(UTC).isoformat(), "text": text}) + "\n")
                n += 1
            handle.flush()
            time.sleep(0.005)
    done.append(n)


async def main(seconds: int, rate: int) -> None:
    print(header(f"Load: {PEOPLE} people x {len(PLATFORMS)} platforms x {CODES} codes, "
                 f"{rate} events/s for {seconds} s through the replay connector"))
    folder = Path(tempfile.mkdtemp())
    text, phrases = config_text(random.Random(1))
    (folder / "config.toml").write_text(text)
    (folder / "feed.jsonl").touch()
    texts = [json.loads(line)["text"] for line in
             (ROOT / "tests/data/phrase/ordinary.jsonl").read_text().splitlines()]
    app = App(load(folder / "config.toml", environ={}), stdout=io.StringIO(), connectors=[])
    done: list[int] = []
    thread = threading.Thread(target=writer, args=(folder / "feed.jsonl", texts, phrases, rate,
                                                   seconds, done))
    stop = asyncio.Event()
    started = time.monotonic()
    runner = asyncio.create_task(app.run(stop=stop))
    thread.start()
    while thread.is_alive() or app.store.conn.execute(
            "SELECT COUNT(*) FROM seen_events").fetchone()[0] < (done[0] if done else 1 << 30):
        await asyncio.sleep(0.5)
        if time.monotonic() - started > seconds * 3:
            break
    stop.set()
    await runner
    rows = app.store.conn.execute("SELECT at, seen_at FROM seen_events").fetchall()
    latency = [(from_ts(s) - from_ts(a)).total_seconds() * 1000 for a, s in rows]
    incidents = app.store.conn.execute("SELECT COUNT(*) FROM incidents").fetchone()[0]
    written = done[0] if done else 0
    print(f"events written {written}, processed {len(rows)}, code uses "
          f"{(written + 99) // 100}, incidents {incidents}")
    stored = sorted(from_ts(s) for _, s in rows)
    span = (stored[-1] - stored[0]).total_seconds() if len(stored) > 1 else 1.0
    print(f"kept up with the writer: {len(rows) == written} ({len(rows) / span:.0f} events/s "
          f"over {span:.0f} s; target {rate})")
    print(f"detection latency (written -> stored with verdict) ms: p50 "
          f"{percentile(latency, 50):.0f}  p99 {percentile(latency, 99):.0f}")
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"
          " MB")
    await app.aclose()
    await capacity(folder, texts, phrases)


async def capacity(folder: Path, texts: list[str], phrases: list[str]) -> None:
    """The most it can take: a backlog of 20,000 events read and judged as fast as it can."""
    backlog = folder / "backlog"
    backlog.mkdir()
    (backlog / "config.toml").write_text((folder / "config.toml").read_text())
    done: list[int] = []
    writer(backlog / "feed.jsonl", texts, phrases, 20_000_000, 1, done)
    lines = (backlog / "feed.jsonl").read_text().splitlines()[:20_000]
    (backlog / "feed.jsonl").write_text("\n".join(lines) + "\n")
    app = App(load(backlog / "config.toml", environ={}), stdout=io.StringIO(), connectors=[])
    start = time.perf_counter()
    count = await app.poll_replay()
    took = time.perf_counter() - start
    print(f"capacity (backlog of {count} events, one core): {count / took:.0f} events/s")
    await app.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rate", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.rate))
