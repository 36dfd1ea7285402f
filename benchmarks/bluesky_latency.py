"""Bluesky alert latency: a duress post created -> the alert delivered, per path.

Run:  .venv/bin/python benchmarks/bluesky_latency.py [--posts 100] [--poll-interval 5s]
                                                    [--paths poll,firehose,jetstream]

Needs the local PDS (`bash scripts/install-pds.sh` once). For each path a fresh survivor
account and a fresh App (console contacts, default 1 s tick) run against the local PDS;
the survivor posts the code phrase `--posts` times, 0.1-0.5 s apart at random. Each post's
latency runs from just before createRecord is sent to the `sent_at` of the first outbox row
of its incident (the console alert); "opened" is the same up to the incident row. Stream
paths run with polling slowed to 1 h, so the stream alone delivers. Prints the machine,
the command and p50/p99/max per path.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import write_config  # noqa: E402
from tests.fakes.jetstream import FakeJetstream  # noqa: E402
from tests.fakes.pds import LocalPds  # noqa: E402
from watcher.app import App  # noqa: E402
from watcher.core.clock import from_ts  # noqa: E402
from watcher.core.config import load  # noqa: E402

PHRASE = "Ugh, the network went down at work again"


def config_text(pds: LocalPds, handle: str, stream: str, poll: str, jet: str) -> str:
    return f"""
    [connectors.bluesky]
    service = "{pds.pds_url}"
    plc = "{pds.plc_url}"
    poll_interval = "{poll}"
    stream = "{stream}"
    jetstream = "{jet}"

    [people.sam.bluesky]
    handle = "{handle}"
    """


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def wait_for(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError("the watcher did not catch up in time")
        await asyncio.sleep(0.05)


async def measure(pds: LocalPds, path: str, posts: int, poll: str,
                  jet: str) -> tuple[list[float], list[float]]:
    client, did, handle = await asyncio.to_thread(pds.new_account, "bench")
    stream = "off" if path == "poll" else path
    folder = Path(tempfile.mkdtemp(prefix=f"bsky-latency-{path}-"))
    config = load(write_config(folder, extra=config_text(
        pds, handle, stream, poll if path == "poll" else "1h", jet)), environ={})
    app = App(config, database=folder / "w.db", stdout=io.StringIO())
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    created: dict[str, datetime] = {}

    def sent() -> list[dict[str, Any]]:
        return [d for d in app.store.deliveries()
                if d["status"] == "sent" and d["kind"] == "alert"]

    try:
        await wait_for(lambda: app.store.cursor(f"bluesky:{did}:app.bsky.graph.follow")
                       is not None, 30)
        await asyncio.sleep(1.0)  # the stream subscription is open
        for index in range(posts):
            began = datetime.now(UTC)
            post = await asyncio.to_thread(client.send_post, f"{PHRASE} ({index})")
            created[f"bluesky:{post.uri}"] = began
            await asyncio.sleep(random.uniform(0.1, 0.5))
        await wait_for(lambda: len({d["incident_id"] for d in sent()}) >= posts, 300)
    finally:
        stop.set()
        await task
    first_sent: dict[int, datetime] = {}
    for row in sent():
        first_sent.setdefault(row["incident_id"], from_ts(row["sent_at"]))
    delivered: list[float] = []
    opened: list[float] = []
    for incident in app.store.incidents():
        began = created[incident.event_key or ""]
        opened.append((incident.opened_at - began).total_seconds())
        delivered.append((first_sent[incident.id] - began).total_seconds())
    await app.aclose()
    return delivered, opened


def row(name: str, values: list[float]) -> str:
    return (f"  {name:<9} p50 {statistics.median(values):6.2f} s   "
            f"p99 {percentile(values, 0.99):6.2f} s   max {max(values):6.2f} s")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=100)
    parser.add_argument("--poll-interval", default="5s")
    parser.add_argument("--paths", default="poll,firehose,jetstream")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cpu(s), "
          f"Python {platform.python_version()}")
    print(f"command: {' '.join(sys.argv)}")
    with LocalPds() as pds:
        async with FakeJetstream(pds.ws_url) as jet:
            for path in args.paths.split(","):
                delivered, opened = await measure(pds, path, args.posts, args.poll_interval,
                                                  jet.url)
                label = f"poll every {args.poll_interval}" if path == "poll" else path
                print(f"{label}: {len(delivered)} posts")
                print(row("opened", opened))
                print(row("delivered", delivered))


if __name__ == "__main__":
    asyncio.run(main())
