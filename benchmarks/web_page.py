"""The contacts' page: load time with 100 incidents and 20 feeds, and idle CPU with it on.

A store is filled with 100 incidents (each alerted to 3 contacts, delivered, half of them
acknowledged) and 20 feeds' health; a real watcher (App.run, replay only) serves the page.
Page times are measured over loopback with a real HTTP client, session opened by a link.
Idle CPU: the same watcher, page enabled, nobody asking, for --seconds.
Run: .venv/bin/python benchmarks/web_page.py [--requests 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402

from benchmarks.common import header, percentile  # noqa: E402
from watcher.app import App  # noqa: E402
from watcher.core import secret_links as auth  # noqa: E402
from watcher.core.config import load  # noqa: E402
from watcher.core.models import Match  # noqa: E402
from watcher.core.store import Store  # noqa: E402

CONFIG = """
[watcher]
database = "bench.db"
stale_after = "1d"
[people.sam]
name = "Sam"
[contacts.alex]
name = "Alex"
console = true
[contacts.jo]
name = "Jo"
console = true
[contacts.kim]
name = "Kim"
console = true
[codes.code]
person = "sam"
phrase = ["the network went down at work"]
playbook = "p"
[playbooks.p]
steps = [ { notify = ["alex", "jo", "kim"], message = "{person} used {code}" } ]
[connectors.replay]
files = ["feed.jsonl"]
[web]
listen = "127.0.0.1:0"
"""
FEEDS = [f"sam/feed-{n:02d}" for n in range(20)]


def fill(db: Path) -> None:
    store = Store(db)
    now = datetime.now(UTC) - timedelta(hours=2)
    with store.transaction():
        for n in range(100):
            at = now + timedelta(seconds=n)
            match = Match(code="code", person="sam", event_key=f"bench:{n}",
                          event_id=f"e/{n}", platform="telegram", kind="message", at=at,
                          evidence={"detector": "phrase"}, link=None)
            incident = store.open_incident(match, None, at,
                                           matched="the network went down at work")
            for contact in ("alex", "jo", "kim"):
                row = store.enqueue(incident, contact, "console", contact, "alert", at)
                store.delivery_done(row, at + timedelta(seconds=1))
            if n % 2:
                store.acknowledge(incident, "jo", at + timedelta(minutes=1), "web")
        for index, feed in enumerate(FEEDS):
            if index < 3:
                store.feed_failed(feed, "the bot was removed from the chat", now, True)
            else:
                store.feed_ok(feed, now)
    store.close()


async def timed(http: aiohttp.ClientSession, url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        async with http.get(url) as response:
            await response.read()
            assert response.status == 200, response.status
        times.append((time.perf_counter() - start) * 1000)
    return times


async def main(requests: int, seconds: int) -> None:
    print(header("The contacts' page: 100 incidents, 20 feeds"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(CONFIG, encoding="utf-8")
        (Path(folder) / "feed.jsonl").touch()
        config = load(path, environ={})
        fill(config.database)
        app = App(config, stdout=io.StringIO(), connectors=[])
        app.supervisor.feeds = sorted(set(app.supervisor.feeds) | set(FEEDS))
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        while app.web is None or app.web.port is None:
            await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{app.web.port}"
        with app.store.transaction():
            token = auth.mint(app.store, "alex", auth.CONTACT, datetime.now(UTC))
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(auth.link(base, token)) as response:
                assert response.status == 200
            for name, url in (("overview (/)", base + "/"),
                              ("one incident (/incident/50)", base + "/incident/50")):
                await timed(http, url, 10)  # warm up
                times = await timed(http, url, requests)
                print(f"{name}: {requests} requests, p50 {percentile(times, 50):.1f} ms, "
                      f"p99 {percentile(times, 99):.1f} ms, max {max(times):.1f} ms")
            async with http.get(base + "/") as response:
                size = len(await response.read())
            print(f"overview size: {size / 1024:.0f} KiB")
        before = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic()
        await asyncio.sleep(seconds)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"idle with the page enabled, {seconds} s: "
              f"{100 * cpu / (time.monotonic() - wall):.2f} % CPU")
        stop.set()
        await task
        await app.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.seconds))
