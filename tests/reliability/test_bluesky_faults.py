"""Bluesky: the watch goes on through a PDS outage (stop/start: connection refused) and a
hung PDS (freeze/thaw: connections accepted, never answered), against the real local PDS.

A shorter scripted run than the other platforms (creating records on a real PDS is slower):
200 posts by Sam, 10 of them uses of the phrase code, created in 10 bursts of 20 (one
applyWrites call each). Polling only (the path that never misses), every second. Alerts go
to the console channel (Bluesky has no sender). Same guarantee as everywhere: every code use
opens exactly one incident, every alert is delivered, at most one duplicate per fault.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from atproto import models

from tests.conftest import eventually as until
from tests.conftest import write_config
from tests.fakes.pds import LocalPds
from tests.reliability.harness import (
    PLAYBOOK,
    alert_numbers,
    check,
    incident_keys,
    is_code,
    outbox_settled,
    seen_count,
    text_of,
)
from watcher.app import App
from watcher.core.config import load

pytestmark = [pytest.mark.pds, pytest.mark.timeout(120)]

EVENTS, BURSTS = 200, 10
SIZE = EVENTS // BURSTS
POST = "app.bsky.feed.post"
TIMEOUT = 10.0  # connectors.bluesky_identity.TIMEOUT: every XRPC call's own timeout


def config_text(pds: LocalPds, handle: str) -> str:
    return f"""
[watcher]
database = "watcher.db"
timezone = "UTC"

[people.sam]
name = "Sam"

[people.sam.bluesky]
handle = "{handle}"

[contacts.alex]
name = "Alex"
console = true
{PLAYBOOK}
[connectors.bluesky]
service = "{pds.pds_url}"
plc = "{pds.plc_url}"
poll_interval = "1s"
stream = "off"
"""


def create_posts(client: Any, did: str, numbers: range) -> list[tuple[int, str]]:
    """One applyWrites call: the posts numbered `numbers`; returns (number, at-uri)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    writes = [models.ComAtprotoRepoApplyWrites.Create(
        collection=POST, value=models.AppBskyFeedPost.Record(text=text_of(n), created_at=now))
        for n in numbers]
    reply = client.com.atproto.repo.apply_writes(
        models.ComAtprotoRepoApplyWrites.Data(repo=did, writes=writes))
    return [(n, r.uri) for n, r in zip(numbers, reply.results, strict=True)]


async def scenario(pds: LocalPds, folder: Path, name: str,
                   faults: dict[int, Callable[[App], Any]]) -> None:
    """Before burst b in `faults`, run that fault (an async function of the App)."""
    started = time.monotonic()
    sam, did, handle = await asyncio.to_thread(pds.new_account, "sam")
    config = load(write_config(folder, text=config_text(pds, handle)), environ={})
    out = io.StringIO()
    app = App(config, database=folder / "w.db", stdout=out)
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    code_keys: set[str] = set()
    try:
        # The first look at the (empty) collection: from then on every post is new.
        await until(lambda: app.store.cursor(f"bluesky:{did}:{POST}") is not None,
                    "the first look")
        for burst in range(BURSTS):
            if burst in faults:
                await faults[burst](app)
            made = await asyncio.to_thread(create_posts, sam, did,
                                           range(burst * SIZE, (burst + 1) * SIZE))
            code_keys |= {f"bluesky:{uri}" for n, uri in made if is_code(n)}
            # Bursts are not awaited one by one: a fault may land while one is being read.
        await until(lambda: seen_count(app.store, "bluesky:") >= EVENTS, "every post stored",
                    timeout=40)
        await until(lambda: len(app.store.incidents()) >= len(code_keys), "every incident")
        await until(lambda: outbox_settled(app.store), "every alert delivered")
        assert seen_count(app.store, "bluesky:") == EVENTS
    finally:
        pds.thaw()
        if not pds.running:
            await asyncio.to_thread(pds.start)
        stop.set()
        await asyncio.wait_for(task, 20)
        keys = incident_keys(app.store)
        await app.aclose()
    check(f"bluesky/{name}", incident_keys=keys, code_keys=code_keys,
          alerts=alert_numbers(out.getvalue().splitlines()), faults=len(faults),
          started=started)


def blind(app: App) -> bool:
    return any(h["feed"] == "sam/bluesky" and h["blind_since"] for h in app.store.health())


async def test_pds_stop_and_start(tmp_path: Path, pds: LocalPds) -> None:
    """Twice: the PDS goes away (connection refused) just after a burst, the watcher reports
    it, the PDS comes back with its data, and the burst is read then."""

    async def outage(app: App) -> None:
        await asyncio.to_thread(pds.stop)
        await until(lambda: blind(app), "the outage reported")
        await asyncio.to_thread(pds.start)

    await scenario(pds, tmp_path, "stop-start", {3: outage, 7: outage})


async def test_pds_freeze_and_thaw(tmp_path: Path, pds: LocalPds) -> None:
    """A hung PDS: once for 3 s (shorter than the client's 10 s timeout: calls complete
    late), once until the client's own timeout fires and the feed is reported blind."""

    async def short_hang(app: App) -> None:
        pds.freeze()
        await asyncio.sleep(3)  # the scripted length of the hang
        pds.thaw()

    async def long_hang(app: App) -> None:
        pds.freeze()
        began = time.monotonic()
        await until(lambda: blind(app), "the hang reported", timeout=TIMEOUT + 10)
        assert time.monotonic() - began >= TIMEOUT - 1  # it was the timeout that fired
        pds.thaw()

    await scenario(pds, tmp_path, "freeze-thaw", {3: short_hang, 7: long_hang})
