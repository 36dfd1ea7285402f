"""Supervision: one blind-watch alert and one recovery, the heartbeat, the digest, status."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from playbooks.channels import ConsoleChannel
from playbooks.runner import PlaybookRunner
from tests.conftest import Clock, write_config
from watcher.app import App
from watcher.config import load
from watcher.status import status_data, status_report
from watcher.store import Store
from watcher.supervision import Supervisor

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
