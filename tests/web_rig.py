"""A running watcher with the contacts' page, and a loopback Apprise json:// sink: shared by
tests/test_web.py and the browser tests (tests/browser/)."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from tests.conftest import BASE_CONFIG, eventually, write_config
from watcher.app import App
from watcher.core import secret_links as auth
from watcher.core.config import Config, load
from watcher.core.store import Store

CODE_USE = {"platform": "telegram", "person": "sam", "kind": "message", "id": "c/1",
            "at": "2026-11-22T14:02:00Z",
            "text": "Sorry all, the network went down at work, home late"}
PUBLIC = "http://watcher.example.net"  # plain http: the test client is not on TLS
LINK = re.compile(r"https?://\S+/c/[A-Za-z0-9_-]{43}")


@dataclass
class Sink:
    """Apprise's json:// target on loopback: every payload it was sent."""

    url: str
    received: list[dict[str, object]] = field(default_factory=list)

    def messages(self) -> list[str]:
        return [str(m.get("message", "")) for m in self.received]


@asynccontextmanager
async def json_sink() -> AsyncIterator[Sink]:
    sink = Sink("")

    async def handle(request: web.Request) -> web.Response:
        sink.received.append(json.loads(await request.text()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    sink.url = f"json://127.0.0.1:{port}/hook"
    try:
        yield sink
    finally:
        await runner.cleanup()


@dataclass
class Rig:
    config: Config
    app: App
    out: io.StringIO
    sink: Sink
    feed: Path

    @property
    def base(self) -> str:
        assert self.app.web is not None and self.app.web.port is not None
        return f"http://127.0.0.1:{self.app.web.port}"

    def link(self, contact: str) -> str:
        """What `watcher web link` prints, opened at the address the test listens on."""
        with self.app.store.transaction():
            token = auth.mint(self.app.store, contact, auth.CONTACT, self.app.clock())
        return f"{self.base}/c/{token}"

    def here(self, link: str) -> str:
        """A link from an alert (made with public_url) opened on the test's own listener."""
        return self.base + urlsplit(link).path

    def fire(self) -> None:
        with self.feed.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(CODE_USE) + "\n")

    async def alert_link(self) -> str:
        """The link at the end of the alert Alex received through Apprise."""
        found = await eventually(lambda: next((m for m in self.sink.messages()
                                               if "Acknowledge or stand down:" in m), None),
                                 "the alert to reach the Apprise sink")
        match = LINK.search(found)
        assert match is not None
        return match.group(0)

    def state(self, incident: int = 1) -> str:
        found = self.app.store.incident(incident)
        assert found is not None
        return found.state.value


OK_MESSAGES = 212  # the history file's innocent "ok"s: the enrolment page counts them


def write_history(folder: Path) -> Path:
    """Sam's ordinary past messages: many plain "ok"s, and nothing like a code."""
    lines = [{"platform": "telegram", "person": "sam", "kind": "message", "id": f"h/{n}",
              "at": f"2026-10-01T{n // 60 % 24:02d}:{n % 60:02d}:00Z",
              "text": "ok" if n < OK_MESSAGES else f"see you at {n % 12 + 1} for tea"}
             for n in range(300)]
    path = folder / "history.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def rig_config(folder: Path, sink_url: str, public_url: str | None = PUBLIC,
               listen: str = "127.0.0.1:0") -> Path:
    """Alex is reached only through Apprise (no way to reply there); Jo by the console."""
    folder.mkdir(parents=True, exist_ok=True)
    write_history(folder)
    web_section = f'\n[web]\nlisten = "{listen}"\nhistory = ["history.jsonl"]\n' + (
        f'public_url = "{public_url}"\n' if public_url else "")
    text = BASE_CONFIG.format(extra=web_section).replace(
        'name = "Alex"\nconsole = true', f'name = "Alex"\napprise = ["{sink_url}"]')
    return write_config(folder, text=text)


@asynccontextmanager
async def running(folder: Path, public_url: str | None = PUBLIC) -> AsyncIterator[Rig]:
    async with json_sink() as sink:
        config = load(rig_config(folder, sink.url, public_url), environ={})
        out = io.StringIO()
        app = App(config, stdout=out, connectors=[])
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        try:
            await eventually(lambda: app.web is not None and app.web.port is not None,
                             "the page to listen")
            yield Rig(config, app, out, sink, folder / "feed.jsonl")
        finally:
            stop.set()
            await task
            await app.aclose()


def evidence_rows(store: Store, kind: str) -> list[dict[str, object]]:
    return [json.loads(r[0]) for r in store.conn.execute(
        "SELECT data FROM evidence WHERE kind = ? ORDER BY id", (kind,))]
