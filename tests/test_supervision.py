"""Supervision: one blind-watch alert and one recovery, the heartbeat, the digest, status."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from playbooks.channels import ConsoleChannel
from playbooks.runner import PlaybookRunner
from tests.conftest import Clock, eventually, write_config
from watcher.app import App
from watcher.core.config import load
from watcher.core.models import Event
from watcher.core.store import Store
from watcher.supervision.status import status_data, status_report
from watcher.supervision.supervisor import Supervisor

TELEGRAM = """
[connectors.telegram]
token = { env = "TG" }
"""


def setup(tmp_path: Path, extra: str = "") -> tuple[Supervisor, PlaybookRunner, io.StringIO,
                                                    Clock]:
    path = write_config(tmp_path, extra=TELEGRAM + extra)
    path.write_text(path.read_text().replace('name = "Sam"',
                                             'name = "Sam"\ntelegram = { user_id = 5 }'))
    config = load(path, environ={"TG": "1:x"})
    clock = Clock()
    store = Store(tmp_path / "w.db")
    out = io.StringIO()
    runner = PlaybookRunner(config, store, {"console": ConsoleChannel(config, out)}, clock)
    return Supervisor(config, store, clock), runner, out, clock


async def test_blind_watch_alerts_once_and_recovery_once(tmp_path: Path) -> None:
    supervisor, runner, out, clock = setup(tmp_path)
    store = supervisor.store
    with store.transaction():
        store.feed_ok("sam/telegram", clock())
    clock.advance(minutes=1)
    with store.transaction():
        store.feed_failed("sam/telegram", "the bot token was revoked. What to do: create a new "
                          "token with @BotFather.", clock())
    supervisor.tick()
    assert out.getvalue() == ""  # not yet past stale_after (15 minutes)
    for _ in range(3):
        clock.advance(minutes=10)
        supervisor.tick()
        await runner.tick()
    text = out.getvalue()
    assert text.count("WATCH BLIND: Sam's Telegram is not being watched since 14:01") == 2
    assert "the bot token was revoked. What to do: create a new token" in text
    with store.transaction():
        store.feed_ok("sam/telegram", clock())
    for _ in range(3):
        clock.advance(minutes=1)
        supervisor.tick()
        await runner.tick()
    assert out.getvalue().count("Watch restored: Sam's Telegram is being watched again") == 2
    assert out.getvalue().count("WATCH BLIND") == 2
    kinds = [row[0] for row in store.conn.execute(
        "SELECT kind FROM evidence WHERE kind IN ('blind', 'recovered') ORDER BY id")]
    assert kinds == ["blind", "recovered"]


async def test_a_feed_never_read_goes_blind(tmp_path: Path) -> None:
    supervisor, runner, out, clock = setup(tmp_path)
    clock.advance(minutes=16)
    supervisor.tick()
    await runner.tick()
    assert "no successful read for 16 minutes" in out.getvalue()


async def test_blind_alert_goes_through_a_channel_that_works(tmp_path: Path) -> None:
    extra = '[contacts.nan]\nname = "Nan"\ntelegram = { chat_id = 77 }\nconsole = true\n'
    supervisor, runner, out, clock = setup(tmp_path, extra)
    clock.advance(minutes=20)
    supervisor.tick()
    await runner.tick()  # telegram is down (no sender running); the console still works
    assert "ALERT to Nan (console channel)\nWATCH BLIND" in out.getvalue()
    rows = supervisor.store.deliveries()
    telegram = [r for r in rows if r["channel"] == "telegram"]
    assert telegram and telegram[0]["status"] == "pending"  # retried, never dropped


async def test_digest_and_status(tmp_path: Path) -> None:
    _, _, _, clock = setup(tmp_path)
    config_path = tmp_path / "config.toml"
    config_path.write_text(config_path.read_text().replace(
        'timezone = "Europe/London"\n', 'timezone = "Europe/London"\ndigest = "weekly"\n', 1))
    config = load(config_path, environ={"TG": "1:x"})
    supervisor = Supervisor(config, Store(tmp_path / "w.db"), clock)
    with supervisor.store.transaction():
        supervisor.store.feed_ok("sam/telegram", clock())
    assert supervisor.digest_due()
    digest = supervisor.digest()
    assert "- Sam's Telegram: watched, OK" in digest
    assert "Alerts since the last digest: 0" in digest
    assert "Code network-down: never drilled." in digest
    supervisor.send_digest()
    assert not supervisor.digest_due()
    clock.advance(days=7)
    assert supervisor.digest_due()
    report = status_report(config, supervisor.store, supervisor)
    assert "sam/telegram" in report and "Open alerts:\n  none" in report
    data = status_data(config, supervisor.store, supervisor)
    assert data["feeds"][0]["feed"] == "sam/telegram" and data["feeds"][0]["watched"] is False
    json.dumps(data)


@pytest.fixture
async def heartbeat_server() -> AsyncIterator[tuple[str, list[str]]]:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/ping/abc", hits
    await runner.cleanup()


async def test_heartbeat_pings_and_reports_blindness(
        tmp_path: Path, heartbeat_server: tuple[str, list[str]]) -> None:
    url, hits = heartbeat_server
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace(
        'timezone = "Europe/London"\n',
        'timezone = "Europe/London"\nheartbeat_url = { env = "HB" }\nheartbeat_every = "5m"\n',
        1))
    clock = Clock()
    app = App(load(path, environ={"HB": url}), database=tmp_path / "w.db", clock=clock,
              connectors=[])
    await app.supervise()
    await app.supervise()  # not due again yet
    clock.advance(minutes=5)
    await app.supervise()
    await app.heartbeat.aclose()
    assert hits == ["/ping/abc", "/ping/abc"]


async def test_an_outage_is_logged_once_and_a_new_one_after_a_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Connectors report every failure; the store decides what is an outage. Records read
    between two failures (a pass the outage cut short) end the first outage, so the next
    failure is a new one: reported blind again, not swallowed as a repeat."""
    clock = Clock()
    app = App(load(write_config(tmp_path), environ={}), database=tmp_path / "w.db",
              clock=clock, connectors=[])
    feed = "sam/telegram"

    def warnings() -> int:
        return sum(1 for r in caplog.records
                   if r.levelno >= logging.WARNING and feed in r.getMessage())

    for _ in range(3):
        app.feed_failed(feed, "cannot reach Telegram (timed out); retrying")
        clock.advance(seconds=1)
    first = app.store.health()[0]
    assert (first["failures"], first["blind_since"] is not None, warnings()) == (3, True, 1)

    await app.event(Event(platform="telegram", person="sam", kind="message", id="chat/1",
                          at=clock(), text="lunch?"))
    assert app.store.health()[0]["blind_since"] is None

    clock.advance(seconds=5)
    app.feed_failed(feed, "cannot reach Telegram (timed out); retrying")
    again = app.store.health()[0]
    assert again["blind_since"] is not None and again["blind_since"] > first["blind_since"]
    assert warnings() == 2
    app.feed_failed(feed, "cannot reach Telegram (bad gateway); retrying")
    assert warnings() == 3  # a different problem is worth a line


class CrashingConnector:
    """A connector with a bug: every run ends in an unexpected exception."""

    name = "telegram"

    def __init__(self) -> None:
        self.runs = 0

    def feeds(self) -> list[str]:
        return ["sam/telegram"]

    async def start(self, sink: object) -> None:
        return None

    async def run(self, stop: asyncio.Event) -> None:
        self.runs += 1
        raise KeyError("a field the code did not expect")

    async def poll_once(self) -> int:
        return 0

    def channel(self) -> None:
        return None

    def web_routes(self) -> list[web.RouteDef]:
        return []

    async def close(self) -> None:
        return None


async def test_a_crashed_connector_is_a_blind_watch(tmp_path: Path) -> None:
    crashing = CrashingConnector()
    app = App(load(write_config(tmp_path), environ={}), database=tmp_path / "w.db",
              connectors=[crashing])
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    try:
        row = await eventually(lambda: next(
            (h for h in app.store.health() if h["feed"] == "sam/telegram"
             and h["blind_since"]), None), "the crash reported")
        assert "unexpected error (KeyError); restarting it" in row["detail"]
        assert "a field the code did not expect" not in row["detail"]  # no message text
        assert not task.done() and crashing.runs == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await app.aclose()


async def test_a_lost_access_is_blind_at_once_and_restored_after_a_read(tmp_path: Path) -> None:
    """A permanent failure (the bot removed, a device unlinked) skips the stale_after grace:
    the very next tick tells the contacts, with the specific problem; a temporary one
    reported at the same moment does not; a read afterwards is the one recovery."""
    supervisor, runner, out, clock = setup(tmp_path)
    store = supervisor.store
    with store.transaction():
        store.feed_ok("sam/telegram", clock())
        store.feed_ok("telegram:chat:-100", clock())
    clock.advance(seconds=30)
    with store.transaction():
        store.feed_failed("sam/telegram", "cannot reach Telegram (timed out); retrying",
                          clock())
        store.feed_failed("telegram:chat:-100", "the bot was removed from Family: add it "
                          "back as an administrator", clock(), permanent=True)
    supervisor.tick()
    await runner.tick()
    text = out.getvalue()
    assert text.count("WATCH BLIND") == 2  # one chat feed x two channels of Alex's
    assert "the bot was removed from Family: add it back as an administrator" in text
    assert "cannot reach Telegram" not in text
    states = {s.feed: s for s in supervisor.states()}
    assert states["telegram:chat:-100"].permanent and not states["sam/telegram"].blind
    clock.advance(seconds=30)
    with store.transaction():
        store.feed_ok("telegram:chat:-100", clock())
    supervisor.tick()
    await runner.tick()
    assert out.getvalue().count("Watch restored: telegram:chat:-100") == 2
    assert not store.health()[1]["permanent"]
