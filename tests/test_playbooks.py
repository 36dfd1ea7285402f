"""Playbooks run from stored state: escalation, bounded repeats, timers across restarts."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from detectors.codes import build_detectors
from playbooks.channels import AppriseChannel, ConsoleChannel
from playbooks.runner import PlaybookRunner
from tests.conftest import Clock, write_config
from watcher.core.channel import Channel
from watcher.core.config import Config, load
from watcher.core.models import Event, FileImage, IncidentState
from watcher.core.store import Store
from watcher.engine.engine import Engine

CODE_USE = Event(platform="telegram", person="sam", kind="message", id="c/1",
                 at=datetime(2026, 11, 22, 14, 2, tzinfo=UTC),
                 text="the network went down at work {time} %s <b>", link="https://t.me/c/1")


class Rig:
    def __init__(self, config: Config, db: Path, clock: Clock,
                 extra: dict[str, Channel] | None = None) -> None:
        self.out = io.StringIO()
        self.store = Store(db)
        self.engine = Engine(config, self.store, build_detectors(config)[0], clock)
        channels: dict[str, Channel] = {"console": ConsoleChannel(config, self.out)}
        channels.update(extra or {})
        self.runner = PlaybookRunner(config, self.store, channels, clock)

    async def settle(self) -> None:
        while await self.runner.tick():
            pass

    def alerts(self, name: str) -> int:
        return self.out.getvalue().count(f"ALERT to {name}")


async def test_escalates_with_bounded_repeats(config_path: Path, tmp_path: Path) -> None:
    clock = Clock()
    rig = Rig(load(config_path, environ={}), tmp_path / "w.db", clock)
    await rig.engine.ingest(CODE_USE)
    await rig.settle()
    assert (rig.alerts("Alex"), rig.alerts("Jo")) == (1, 1)
    clock.advance(minutes=4, seconds=59)
    await rig.settle()
    assert rig.alerts("Jo") == 1
    clock.advance(seconds=1)
    await rig.settle()
    assert rig.alerts("Jo") == 2  # step 2: nobody acked, Jo is told again
    # repeat_from=2, times=2: two repeats, then it stops; when the last wait is over, both
    # contacts are told once that it ran out with nobody acknowledging (Jo's 5th, Alex's 2nd).
    for expected in (3, 4, 5, 5):
        clock.advance(minutes=10)
        await rig.settle()
        assert rig.alerts("Jo") == expected
    assert rig.store.pending_runs() == 0
    assert rig.alerts("Alex") == 2
    assert rig.out.getvalue().count("its playbook has run out") == 2


async def test_acknowledged_incident_stops_escalating(config_path: Path, tmp_path: Path) -> None:
    clock = Clock()
    rig = Rig(load(config_path, environ={}), tmp_path / "w.db", clock)
    outcome = await rig.engine.ingest(CODE_USE)
    await rig.settle()
    with rig.store.transaction():
        rig.store.set_incident_state(outcome.incidents[0], IncidentState.ACKNOWLEDGED, clock())
    clock.advance(minutes=30)
    await rig.settle()
    assert rig.alerts("Jo") == 1 and rig.store.pending_runs() == 0


async def test_timer_resumes_after_restart(config_path: Path, tmp_path: Path) -> None:
    config = load(config_path, environ={})
    clock = Clock()
    first = Rig(config, tmp_path / "w.db", clock)
    await first.engine.ingest(CODE_USE)
    await first.settle()
    first.store.close()
    clock.advance(minutes=3)  # down for 3 minutes: 2 minutes of the wait remain
    second = Rig(config, tmp_path / "w.db", clock)
    await second.settle()
    assert second.alerts("Jo") == 0
    clock.advance(minutes=2)
    await second.settle()
    assert second.alerts("Jo") == 1
    clock.advance(hours=5)  # long outage: overdue steps run at once, one at a time
    await second.settle()
    assert second.alerts("Jo") == 2


async def test_per_contact_message_and_verbatim_survivor_text(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace(
        'message = "{person} used',
        'messages = { jo = "Jo: {matched} / {link}" }, message = "{person} used'))
    rig = Rig(load(path, environ={}), tmp_path / "w.db", Clock())
    await rig.engine.ingest(CODE_USE)
    await rig.settle()
    text = rig.out.getvalue()
    assert "Jo: the network went down at work / https://t.me/c/1" in text
    assert "Sam used the 'network-down' code at 14:02 GMT: call the police to 12 Acacia" in text


@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, object]], list[int]]]:
    """A loopback HTTP endpoint for Apprise's json:// target; can be told to fail first."""
    received: list[dict[str, object]] = []
    fail = [0]

    async def handle(request: web.Request) -> web.Response:
        if fail[0] > 0:
            fail[0] -= 1
            return web.Response(status=500)
        received.append(json.loads(await request.text()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"json://127.0.0.1:{port}/hook", received, fail
    await runner.cleanup()


async def test_apprise_delivery_with_retry(tmp_path: Path,
                                           hook: tuple[str, list[dict[str, object]], list[int]]
                                           ) -> None:
    url, received, fail = hook
    path = write_config(tmp_path, extra='[contacts.nan]\nname = "Nan"\n'
                        'apprise = [{ env = "NAN_HOOK" }]\n')
    path.write_text(path.read_text().replace('notify = ["alex"]', 'notify = ["nan"]'))
    config = load(path, environ={"NAN_HOOK": url})
    clock = Clock()
    rig = Rig(config, tmp_path / "w.db", clock, {"apprise": AppriseChannel(config,
                                                                         config.secrets)})
    flower = Event(platform="bluesky", person="sam", kind="message", id="p/1", at=clock(),
                   images=(FileImage(tmp_path / "flower.jpg"),))
    await rig.engine.ingest(flower)
    fail[0] = 1
    await rig.settle()
    assert received == []
    row = rig.store.deliveries()[0]
    assert row["status"] == "pending" and row["attempts"] == 1
    assert url not in json.dumps(row)  # the secret URL is never stored
    clock.advance(seconds=10)
    await rig.settle()
    assert len(received) == 1 and "posted the flower" in str(received[0]["message"])
    assert rig.store.deliveries()[0]["status"] == "sent"
