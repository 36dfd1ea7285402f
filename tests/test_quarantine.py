"""One item, one failure, never a wedge: what cannot be checked is recorded, passed and told.

Through the real engine, detectors, store and replay path. The hostile image sources below
are connector-side implementations of the ImageSource interface (what a broken download or
a library bug looks like to the engine), not stand-ins for the project's own functions.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from connectors.base import Sink
from detectors.codes import build_detectors
from detectors.image_decode import DECODE_BUDGET, ImageLimits, ImageRefused, decode
from tests.conftest import Clock, eventually, write_config
from watcher import app as app_module
from watcher.app import App
from watcher.core.config import Config, load
from watcher.core.models import Event
from watcher.core.store import Store
from watcher.engine.engine import Engine
from watcher.engine.unchecked import GATHER, LIST_MAX, MIN_GAP, CrashWatch, contacts_of

AT = datetime(2026, 11, 22, 14, 2, tzinfo=UTC)  # 14:02 in London in November
CODE = "the network went down at work"


def narrow_png() -> bytes:
    """The issue's example: 16 x 8000 pixels in a few hundred bytes."""
    out = io.BytesIO()
    Image.new("L", (16, 8000), 0).save(out, "PNG")
    return out.getvalue()


@dataclass(frozen=True)
class Exploding:
    """An image source whose read fails with an error nobody planned for."""

    name: str = "exploding"

    def read(self, max_bytes: int) -> bytes:
        raise ValueError("a library bug")


@dataclass(frozen=True)
class Stuck:
    """An image source that does not return until the test lets it."""

    release: threading.Event
    name: str = "stuck"

    def read(self, max_bytes: int) -> bytes:
        self.release.wait(30)
        return narrow_png()


def photo_event(n: int, text: str, image: object, link: str | None = None) -> Event:
    return Event(platform="telegram", person="sam", kind="message", id=f"chat/{n}", at=AT,
                 text=text, images=(image,), link=link)  # type: ignore[arg-type]


def make(tmp_path: Path, timeout: str = "30s") -> tuple[Config, Engine, Clock]:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("[watcher]\n",
                                             f'[watcher]\nitem_timeout = "{timeout}"\n', 1))
    config = load(path, environ={})
    detectors, _ = build_detectors(config)
    clock = Clock(AT)
    return config, Engine(config, Store(tmp_path / "w.db"), detectors, clock), clock


async def test_any_exception_is_one_codes_failure_and_the_caption_still_matches(
        tmp_path: Path) -> None:
    _, engine, _ = make(tmp_path)
    outcome = await engine.ingest(photo_event(1, f"look {CODE}", Exploding()),
                                  ("telegram:updates", "2"))
    assert [m.code for m in outcome.matches] == ["network-down"]
    assert len(outcome.incidents) == 1
    assert outcome.failures == ("flower: the check failed (ValueError)",)
    # Recorded with the seen mark and the cursor: passed, not re-read.
    assert engine.store.seen("telegram:chat/1")
    assert engine.store.cursor("telegram:updates") == "2"
    [row] = engine.store.unchecked()
    assert row["event_key"] == "telegram:chat/1" and row["person"] == "sam"
    assert "look" not in row["reason"] and CODE not in row["reason"]


async def test_the_issues_narrow_png_is_refused_not_raised(tmp_path: Path) -> None:
    from watcher.core.models import BytesImage

    _, engine, _ = make(tmp_path)
    outcome = await engine.ingest(photo_event(1, "", BytesImage(narrow_png(), "p")))
    assert outcome.failures and "too narrow" in outcome.failures[0]
    assert len(engine.store.unchecked()) == 1


async def test_a_check_past_the_time_limit_releases_the_pipeline(tmp_path: Path) -> None:
    _, engine, _ = make(tmp_path, timeout="1s")  # the smallest the config accepts
    release = threading.Event()
    try:
        outcome = await engine.ingest(photo_event(1, CODE, Stuck(release)))
        assert [m.code for m in outcome.matches] == ["network-down"]
        assert outcome.failures == ("flower: not checked within 1s (watcher.item_timeout)",)
        # The ingest lock was released: the next item goes through while the thread waits.
        after = await engine.ingest(photo_event(2, CODE + " again", Exploding()))
        assert after.matches and not after.duplicate
        assert [r["event_key"] for r in engine.store.unchecked()] == [
            "telegram:chat/1", "telegram:chat/2"]
    finally:
        release.set()


async def test_replay_passes_a_hostile_image_and_alerts_the_code_after_it(
        tmp_path: Path) -> None:
    config = load(write_config(tmp_path), environ={})
    (tmp_path / "narrow.png").write_bytes(narrow_png())
    (tmp_path / "empty.jpg").write_bytes(b"")
    lines = [{"person": "sam", "id": "m1", "at": "2026-11-22T14:02:00Z",
              "images": ["narrow.png"], "link": "https://example.org/m1"},
             {"person": "sam", "id": "m2", "at": "2026-11-22T14:02:10Z",
              "images": ["empty.jpg"]},
             {"person": "sam", "id": "m3", "at": "2026-11-22T14:03:00Z", "text": CODE}]
    (tmp_path / "feed.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    clock = Clock(AT)
    app = App(config, database=tmp_path / "w.db", stdout=io.StringIO(), clock=clock)
    try:
        assert await app.poll_replay() == 3
        assert [i.code for i in app.store.incidents()] == ["network-down"]
        assert [r["event_key"] for r in app.store.unchecked()] == ["replay:m1", "replay:m2"]
        assert await app.poll_replay() == 0  # the file position moved past all three
        # One message for the burst, once it has gathered, to every address of the contacts.
        await app.supervise()
        assert not [d for d in app.store.deliveries() if d["kind"] == "unchecked"]
        clock.advance(seconds=GATHER.total_seconds())
        await app.supervise()
        told = [d for d in app.store.deliveries() if d["kind"] == "unchecked"]
        assert sorted(d["contact"] for d in told) == ["alex", "jo"]
        assert told[0]["text"] == (
            "Sam posted 2 things that the watcher could not check. Please look at them "
            "yourself:\n- Replay at 14:02: https://example.org/m1\n"
            "- Replay at 14:02: (no link: look in their Replay)")
        await app.supervise()
        assert len([d for d in app.store.deliveries() if d["kind"] == "unchecked"]) == 2
    finally:
        app.close()


async def test_one_item_reads_as_the_issue_says_and_bursts_are_spaced(tmp_path: Path) -> None:
    config = load(write_config(tmp_path), environ={})
    clock = Clock(AT)
    app = App(config, database=tmp_path / "w.db", stdout=io.StringIO(), clock=clock)
    try:
        await app.engine.ingest(photo_event(1, "", Exploding(), "https://t.me/c/1/1"))
        clock.advance(seconds=GATHER.total_seconds())
        await app.supervise()
        [first, _] = [d for d in app.store.deliveries() if d["kind"] == "unchecked"]
        assert first["text"] == ("Sam posted something on Telegram at 14:02 that the watcher "
                                 "could not check: https://t.me/c/1/1. Please look at it "
                                 "yourself.")
        for n in range(2, 3 + LIST_MAX):  # a flood: one message, capped
            await app.engine.ingest(photo_event(n, "", Exploding(), f"https://t.me/c/1/{n}"))
        clock.advance(seconds=GATHER.total_seconds())
        await app.supervise()  # within MIN_GAP of the last message: held
        assert len([d for d in app.store.deliveries() if d["kind"] == "unchecked"]) == 2
        clock.advance(seconds=MIN_GAP.total_seconds())
        await app.supervise()
        texts = [d["text"] for d in app.store.deliveries() if d["kind"] == "unchecked"]
        assert len(texts) == 4
        assert texts[-1].startswith(f"Sam posted {1 + LIST_MAX} things")
        assert texts[-1].endswith("- and 1 more.")
    finally:
        app.close()


def test_contacts_of_a_person_are_those_their_codes_alert(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, extra="""
        [contacts.kim]
        name = "Kim"
        console = true
        """), environ={})
    assert contacts_of(config, "sam") == ["alex", "jo"]  # kim is in no playbook of sam's
    assert contacts_of(config, "nobody") == ["alex", "jo", "kim"]


def test_three_crashes_in_ten_minutes_are_told_once(tmp_path: Path) -> None:
    config = load(write_config(tmp_path), environ={})
    store = Store(tmp_path / "w.db")
    ticks = iter([0.0, 5.0, 700.0, 705.0, 710.0, 715.0, 720.0])
    clock = Clock(AT)
    watch = CrashWatch(config, store, clock, monotonic=lambda: next(ticks))
    # 0, 5, 700, 705: never three within ten minutes; 700, 705, 710: a loop.
    assert [watch.crashed("telegram") for _ in range(5)] == [False] * 4 + [True]
    assert not watch.crashed("telegram")  # told once an hour, not at every crash
    clock.advance(hours=1, seconds=1)
    assert watch.crashed("telegram")
    texts = [d["text"] for d in store.deliveries()]
    assert len(texts) == 4  # both contacts, twice
    assert texts[0].startswith("WATCH FAILING: the Telegram watch keeps failing on an "
                               "unexpected error (3 times in 10 minutes); restarting.")


class CrashingConnector:
    """A connector (the Connector interface, as a platform plug-in) whose start says its feed
    is fine, as Telegram's start used to, and whose run then dies on a bug every time."""

    name = "telegram"

    def __init__(self, clock: Clock) -> None:
        self.starts = 0
        self.clock = clock

    def feeds(self) -> list[str]:
        return ["sam/telegram"]

    async def start(self, sink: Sink) -> None:
        self.starts += 1
        self.clock.advance(minutes=2)  # each restart a little later
        sink.feed_ok("sam/telegram")

    async def run(self, stop: asyncio.Event) -> None:
        raise KeyError("a bug on the same item, again")

    async def poll_once(self) -> int:
        return 0

    def channel(self) -> None:
        return None

    def web_routes(self) -> list[web.RouteDef]:
        return []

    async def close(self) -> None:
        pass


async def test_a_restart_is_not_a_recovery_and_a_crash_loop_is_told(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "RESTART_DELAY", 0.01)
    config = load(write_config(tmp_path), environ={})
    clock = Clock(AT)
    connector = CrashingConnector(clock)
    app = App(config, database=tmp_path / "w.db", stdout=io.StringIO(), clock=clock,
              connectors=[connector])
    stop = asyncio.Event()
    task = asyncio.create_task(app._keep_running(connector, stop))
    try:
        await eventually(lambda: connector.starts >= 9, "restarts over 18 minutes")
        # Every restart said "fine" and none of it counted: failing since the first crash,
        # so past stale_after (15m) it is a blind watch.
        [state] = [s for s in app.supervisor.states() if s.feed == "sam/telegram"]
        assert state.blind and "unexpected error (KeyError)" in state.detail
        told = [d for d in app.store.deliveries() if d["kind"] == "crash_loop"]
        assert sorted(d["contact"] for d in told) == ["alex", "jo"]  # once, not per crash
    finally:
        stop.set()
        await task
        app.close()


def png_claiming(width: int, height: int, color_type: int = 6, depth: int = 8) -> bytes:
    """A PNG whose header claims a size its few bytes of data never fill: what costs an
    attacker nothing and a careless decoder a whole frame."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))

    header = (width.to_bytes(4, "big") + height.to_bytes(4, "big")
              + bytes([depth, color_type, 0, 0, 0]))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def test_a_frame_over_the_decode_budget_is_refused_before_decoding() -> None:
    # The header alone decides (the data could not even fill the frame): RGBA at 60 MP.
    assert DECODE_BUDGET < 7745 * 7745 * 4
    with pytest.raises(ImageRefused, match="228 MB to decode"):
        decode(png_claiming(7745, 7745), ImageLimits())
    # A gray frame of the same size fits the budget; its missing data is the refusal.
    with pytest.raises(ImageRefused, match="not a readable image"):
        decode(png_claiming(7745, 7745, color_type=0), ImageLimits())


async def test_a_caption_matches_on_time_even_when_its_code_also_reads_images(
        tmp_path: Path) -> None:
    """A phrase code with in_images needs a thread for the image; its words must not wait
    behind a stuck image in that thread's queue."""
    _, engine, _ = make(tmp_path, timeout="1s")
    path = tmp_path / "config.toml"
    path.write_text(path.read_text().replace(
        'phrase = ["the network went down at work"]',
        'phrase = ["the network went down at work"]\nin_images = true', 1))
    detectors, _ = build_detectors(load(path, environ={}))
    # The image code's job first in the one image thread's queue, where it gets stuck.
    engine.detectors = dict(sorted(detectors.items()))
    assert next(iter(engine.detectors)) == "flower"
    release = threading.Event()
    try:
        outcome = await engine.ingest(photo_event(1, CODE, Stuck(release)))
        assert [m.code for m in outcome.matches] == ["network-down"]
    finally:
        release.set()
