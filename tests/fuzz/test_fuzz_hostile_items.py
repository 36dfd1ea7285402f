"""Hostile images never hide the code that follows them, never stick a feed.

Random and hostile images (extreme aspect ratios, truncated and corrupted files of every
format the watcher opens, zero bytes, animations, headers claiming the largest frames the
caps allow) are posted as items through the real replay path and the real Telegram
connector against its stand-in, each followed by an item carrying a phrase code: the code
must alert every time, the feed must move past the bad item (replay position, Telegram
offset, Signal's stored inbox, Bluesky's cursor), and a feed that moved on is never left failing.
"""

from __future__ import annotations

import asyncio
import io
import json
import zlib

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from connectors.signal.connector import INBOX
from tests.conftest import eventually, write_config
from tests.fakes.pds import LocalPds
from tests.fakes.signal_api import (
    FakeSignalApi,
    attachment_message,
    make_blob,
    make_contact,
    text_message,
)
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram_rig import GROUP, SAM_TG, sam_in_a_group
from watcher.app import App
from watcher.core.config import load

CODE = "the network went down at work"
FORMATS = ("PNG", "GIF", "JPEG", "WEBP", "TIFF", "BMP")
MODES = {"PNG": ("L", "RGB", "RGBA", "P", "1", "I;16"), "GIF": ("P", "L"),
         "JPEG": ("L", "RGB", "CMYK"), "WEBP": ("RGB", "RGBA"),
         "TIFF": ("L", "RGB", "RGBA", "CMYK"), "BMP": ("L", "RGB", "P", "1")}
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                          HealthCheck.too_slow])


def png_claiming(width: int, height: int, color_type: int) -> bytes:
    """A PNG header claiming a frame its few bytes of data never fill."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (len(body).to_bytes(4, "big") + kind + body
                + zlib.crc32(kind + body).to_bytes(4, "big"))

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + \
        bytes([8, color_type, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@st.composite
def real_images(draw: st.DrawFn) -> bytes:
    """A real file of any format, often of an extreme shape, sometimes animated."""
    fmt = draw(st.sampled_from(FORMATS))
    mode = draw(st.sampled_from(MODES[fmt]))
    long_side = draw(st.integers(1, 9000 if fmt != "WEBP" else 16000))
    short_side = draw(st.integers(1, 64))
    size = (short_side, long_side) if draw(st.booleans()) else (long_side, short_side)
    image = Image.new(mode, size, draw(st.integers(0, 255)))
    out = io.BytesIO()
    options: dict[str, object] = {}
    if fmt in ("GIF", "WEBP", "PNG") and draw(st.booleans()):
        options = {"save_all": True, "append_images": [Image.new(mode, size, 7)]}
    if fmt == "JPEG" and draw(st.booleans()):
        options = {"progressive": True}
    try:
        image.save(out, fmt, **options)
    except (OSError, ValueError):  # a mode this format cannot store: plain RGB instead
        out = io.BytesIO()
        image.convert("RGB").save(out, fmt)
    return out.getvalue()


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A real file, cut short or with bytes overwritten."""
    data = draw(real_images())
    if draw(st.booleans()):
        return data[:draw(st.integers(0, max(0, len(data) - 1)))]
    at = draw(st.integers(0, len(data) - 1))
    return data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at + 16:]


def claimed_huge() -> st.SearchStrategy[bytes]:
    """Headers claiming up to the 60 MP cap, in every PNG colour type."""
    return st.builds(lambda w, h, t: png_claiming(w, max(1, min(h, 60_000_000 // w)), t),
                     st.integers(1, 60_000), st.integers(1, 60_000),
                     st.sampled_from([0, 2, 3, 4, 6]))


def narrow_png() -> bytes:
    """The issue's example: 16 x 8000 pixels in a few hundred bytes."""
    out = io.BytesIO()
    Image.new("L", (16, 8000), 0).save(out, "PNG")
    return out.getvalue()


hostile = st.one_of(real_images(), damaged(), claimed_huge(), st.just(b""),
                    st.binary(max_size=64))


def code_uses(app: App) -> int:
    row = app.store.conn.execute("SELECT COUNT(*) FROM matches WHERE code = 'network-down'")
    return int(row.fetchone()[0])


def code_matches(app: App, key: str) -> bool:
    row = app.store.conn.execute("SELECT 1 FROM matches WHERE code = 'network-down' AND "
                                 "event_key = ?", (key,)).fetchone()
    return row is not None


@settings(SETTINGS, max_examples=12)
@example(images=[narrow_png(), png_claiming(7745, 7745, 6)])
@given(images=st.lists(hostile, min_size=1, max_size=4))
def test_replay_alerts_the_code_after_any_image(tmp_path_factory: pytest.TempPathFactory,
                                                images: list[bytes]) -> None:
    folder = tmp_path_factory.mktemp("replay")
    config = load(write_config(folder), environ={})
    lines = []
    for n, data in enumerate(images):
        (folder / f"img{n}").write_bytes(data)
        lines.append({"person": "sam", "id": f"bad{n}", "at": "2026-11-22T14:02:00Z",
                      "images": [f"img{n}"], "text": "a photo"})
        lines.append({"person": "sam", "id": f"code{n}", "at": "2026-11-22T14:02:01Z",
                      "text": CODE})
    (folder / "feed.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    app = App(config, database=folder / "w.db", stdout=io.StringIO())
    try:
        assert asyncio.run(app.poll_replay()) == len(lines)
        for n in range(len(images)):
            assert code_matches(app, f"replay:code{n}"), f"the code after image {n}"
            assert app.store.seen(f"replay:bad{n}")
        assert asyncio.run(app.poll_replay()) == 0  # the position is past every line
        assert not app.store.feed_failing("sam/replay")
    finally:
        app.close()


@settings(SETTINGS, max_examples=6)
@example(images=[narrow_png(), b""])
@given(images=st.lists(hostile, min_size=1, max_size=3))
def test_telegram_alerts_the_code_after_any_image(tmp_path_factory: pytest.TempPathFactory,
                                                  images: list[bytes]) -> None:
    async def scenario() -> None:
        folder = tmp_path_factory.mktemp("tg")
        async with FakeTelegram() as tg:
            app = App(sam_in_a_group(tg, folder, chats=(GROUP,)), database=folder / "w.db",
                      stdout=io.StringIO())
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop=stop))
            try:
                await tg.wait_polling(timeout=10)
                for data in images:
                    if data[:1] == b"\x89" and len(data) % 2:  # sometimes as a file
                        bad = tg.inject_message(GROUP, SAM_TG, document=data,
                                                mime_type="image/png", caption="look")
                    else:
                        bad = tg.inject_message(GROUP, SAM_TG, photo=data, caption="look")
                    code = tg.inject_message(GROUP, SAM_TG, CODE)
                    key = f"telegram:{GROUP}/{code['message']['message_id']}"
                    await eventually(lambda: code_matches(app, key),  # noqa: B023
                                     "the code after a hostile image")
                    # The offset moved past the bad item: Telegram will not send it again.
                    await tg.wait_confirmed(bad["update_id"], timeout=10)
                    bad_key = f"telegram:{GROUP}/{bad['message']['message_id']}"
                    assert app.store.seen(bad_key)
                # Moving on is a read: the person's feed is not left failing.
                assert not app.store.feed_failing("sam/telegram")
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await app.aclose()

    asyncio.run(scenario())


@settings(SETTINGS, max_examples=4)
@example(images=[narrow_png(), b""])
@given(images=st.lists(hostile, min_size=1, max_size=3))
def test_signal_alerts_the_code_after_any_image(tmp_path_factory: pytest.TempPathFactory,
                                                images: list[bytes]) -> None:
    sam = make_contact("+15550000005", "Sam")

    async def scenario() -> None:
        folder = tmp_path_factory.mktemp("sig")
        async with FakeSignalApi("+15550000001", mode="normal") as api:
            extra = (f'[connectors.signal]\nurl = "{api.base_url}"\n'
                     'number = "+15550000001"\nmode = "normal"\npoll_interval = "1s"\n')
            path = write_config(folder, extra=extra)
            path.write_text(path.read_text().replace(
                'name = "Sam"', f'name = "Sam"\nsignal = {{ uuid = "{sam.uuid}" }}'))
            app = App(load(path, environ={}), database=folder / "w.db", stdout=io.StringIO())
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop=stop))
            try:
                for n, data in enumerate(images, start=1):
                    blob = make_blob(data, "image/png")
                    api.inject(attachment_message(sam, [blob], "look"), [blob])
                    api.inject(text_message(sam, CODE))
                    await eventually(lambda: code_uses(app) == n,  # noqa: B023
                                     "the code after a hostile image")
                # The stored inbox holds nothing: no item waits to be read again.
                assert json.loads(app.store.cursor(INBOX) or "[]") == []
                assert not app.store.feed_failing("sam/signal")
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await app.aclose()

    asyncio.run(scenario())


@pytest.mark.pds
@settings(SETTINGS, max_examples=2)
@example(image=narrow_png())
@given(image=st.one_of(real_images(), damaged()))
def test_bluesky_alerts_the_code_after_any_image(tmp_path_factory: pytest.TempPathFactory,
                                                 pds: LocalPds, image: bytes) -> None:
    """Bluesky, polled from the local PDS: the post cursor moves past a hostile image."""
    sam, did, handle = pds.new_account("sam")
    try:
        sam.send_image("look", image=image, image_alt="")
    except Exception:
        assume(False)

    async def scenario() -> None:
        folder = tmp_path_factory.mktemp("bsky")
        extra = (f'[connectors.bluesky]\nservice = "{pds.pds_url}"\nplc = "{pds.plc_url}"\n'
                 f'poll_interval = "1s"\nstream = "off"\n\n[people.sam.bluesky]\n'
                 f'handle = "{handle}"\n')
        app = App(load(write_config(folder, extra=extra), environ={}),
                  database=folder / "w.db", stdout=io.StringIO())
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        posts = f"bluesky:{did}:app.bsky.feed.post"
        try:
            # The first look records history without firing: wait for it, then post again.
            await eventually(lambda: app.store.cursor(posts) is not None, "the first look")
            await asyncio.to_thread(sam.send_image, "look", image=image, image_alt="")
            await asyncio.to_thread(sam.send_post, CODE)
            await eventually(lambda: code_uses(app) == 1, "the code after a hostile image")
            first = app.store.cursor(posts)
            await asyncio.to_thread(sam.send_post, "later")
            await eventually(lambda: app.store.cursor(posts) != first, "the cursor moving on")
            assert code_uses(app) == 1
            assert not app.store.feed_failing("sam/bluesky")
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            await app.aclose()

    asyncio.run(scenario())
