"""Stickers, GIF animations, videos and video notes on Telegram reach the codes (#16).

End to end: the real App and PTB against the Bot API stand-in, the media made by the same
ffmpeg the watcher decodes with (benchmarks/corpora/moving_media.py). The stand-in fixture
audits every call for a write to a watched chat when it closes (silence).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import EXAMPLES, eventually, write_config
from tests.fakes.telegram_api import FakeTelegram
from tests.test_telegram_connector import CODE_TEXT, GROUP, SAM, TELEGRAM_TOML, Watch, tg
from watcher.core.config import load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "corpora"))
import moving_media

__all__ = ["tg"]  # the stand-in fixture, shared with the connector tests

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")]

SUNFLOWER = "🌻"
EMOJI_CODE = f"""
[codes.sunflower]
person = "sam"
phrase = ["{SUNFLOWER}"]
playbook = "check-on-me"
"""


@functools.cache
def flower() -> Image.Image:
    return Image.open(EXAMPLES / "photos" / "flower-as-posted.jpg").convert("RGB")


@functools.cache
def holiday() -> Image.Image:
    return Image.open(EXAMPLES / "photos" / "holiday.jpg").convert("RGB")


@functools.cache
def middle_clip() -> bytes:
    """5 s of the holiday photo with the agreed flower on screen only from 2 s to 3 s: the
    first frame and the quarter points miss it, the middle frame shows it."""
    return moving_media.clip(flower(), holiday(), shown=(2.0, 3.0))


@contextlib.asynccontextmanager
async def watching(server: FakeTelegram, folder: Path) -> AsyncIterator[Watch]:
    extra = (TELEGRAM_TOML.replace("URL", server.url).replace("INTERVAL", "15m")
             .replace("CHATS", str([GROUP])) + EMOJI_CODE)
    config = load(write_config(folder, extra=extra), environ={"TG_TOKEN": server.token})
    watch = Watch(config, folder / "w.db")
    try:
        await server.wait_polling(timeout=8)
        yield watch
    finally:
        await watch.close()


def sticker(server: FakeTelegram, data: bytes, *, animated: bool = False, video: bool = False,
            thumbnail: bytes | None = None, emoji: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"width": 512, "height": 512, "is_animated": animated,
                              "is_video": video, "type": "regular", "set_name": "Flowers"}
    if emoji is not None:
        fields["emoji"] = emoji
    return server.media(data, "stickers", thumbnail=thumbnail, **fields)


async def test_an_animated_sticker_s_emoji_matches_an_emoji_code(
        tg: FakeTelegram, tmp_path: Path) -> None:
    lottie = gzip.compress(b'{"v":"5.5.2","fr":60,"ip":0,"op":60,"w":512,"h":512,"layers":[]}')
    async with watching(tg, tmp_path) as watch:
        tg.inject_message(GROUP, SAM, sticker=sticker(tg, lottie, animated=True,
                                                      emoji=SUNFLOWER))
        await eventually(lambda: watch.incidents("sunflower"), "the emoji code")
        assert watch.incidents("flower") == []
        assert watch.store.unchecked() == []  # a .tgs is not an image: never decoded


async def test_a_static_sticker_matches_an_image_code(tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        tg.inject_message(GROUP, SAM, sticker=sticker(tg, moving_media.sticker(flower()),
                                                      emoji="😀"))
        await eventually(lambda: watch.incidents("flower"), "the sticker's image")
        assert watch.incidents("sunflower") == []


async def test_an_unrelated_sticker_and_its_thumbnail_fire_nothing(
        tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        tg.inject_message(GROUP, SAM, sticker=sticker(tg, moving_media.sticker(holiday()),
                                                      emoji="😀"))
        tg.inject_message(GROUP, SAM, CODE_TEXT)
        await eventually(lambda: watch.incidents("network-down"), "the message after it")
        assert watch.incidents("flower") == [] and watch.store.unchecked() == []


async def test_a_video_sticker_s_middle_frame_matches(tg: FakeTelegram, tmp_path: Path) -> None:
    webm = moving_media.clip(flower(), holiday(), seconds=3.0, shown=(1.2, 1.8),
                             size=(512, 512), webm=True)
    async with watching(tg, tmp_path) as watch:
        tg.inject_message(GROUP, SAM, sticker=sticker(
            tg, webm, video=True, thumbnail=moving_media.thumbnail(holiday()), emoji="😀"))
        [incident] = await eventually(lambda: watch.incidents("flower"), "the middle frame")
        assert incident.code == "flower"


@pytest.mark.parametrize("kind", ["animation", "video", "video_note"])
async def test_a_moving_picture_whose_middle_frame_is_the_photo_fires(
        tg: FakeTelegram, tmp_path: Path, kind: str) -> None:
    shape = {"video_note": {"length": 720}}.get(kind, {"width": 1280, "height": 720})
    media = tg.media(middle_clip(), kind + "s", thumbnail=moving_media.thumbnail(holiday()),
                     duration=5, **shape)
    fields: dict[str, Any] = {kind: media}
    if kind == "animation":  # the Bot API sends an animation as a document too
        fields["document"] = media | {"mime_type": "video/mp4"}
    async with watching(tg, tmp_path) as watch:
        tg.inject_message(GROUP, SAM, **fields)
        await eventually(lambda: watch.incidents("flower"), f"the {kind}")
        assert watch.store.unchecked() == []


async def test_a_gif_as_telegram_converts_it_fires(tg: FakeTelegram, tmp_path: Path) -> None:
    media = tg.media(moving_media.gif_mp4(flower()), "animations", width=480, height=360,
                     duration=1, mime_type="video/mp4")
    async with watching(tg, tmp_path) as watch:
        tg.inject_message(GROUP, SAM, animation=media, document=media)
        await eventually(lambda: watch.incidents("flower"), "the GIF")


def huge_gif() -> bytes:
    """A GIF whose header and only frame claim 65535 x 65535 pixels (4 gigapixels)."""
    side = (65535).to_bytes(2, "little")
    return (b"GIF89a" + side + side + b"\x00\x00\x00"
            + b"\x2c\x00\x00\x00\x00" + side + side + b"\x00"
            + b"\x08\x02\x4c\x01\x00\x3b")


HOSTILE = {
    "garbage": lambda: b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40,
    "truncated": lambda: middle_clip()[: len(middle_clip()) // 3],
    "huge dimensions": huge_gif,
}


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_a_hostile_video_is_recorded_as_unchecked_and_the_feed_goes_on(
        tg: FakeTelegram, tmp_path: Path, name: str) -> None:
    media = tg.media(HOSTILE[name](), "videos", width=1280, height=720, duration=5)
    async with watching(tg, tmp_path) as watch:
        bad = tg.inject_message(GROUP, SAM, video=media)
        tg.inject_message(GROUP, SAM, CODE_TEXT)
        await eventually(lambda: watch.incidents("network-down"), "the message after it")
        [row] = watch.store.unchecked()
        assert row["event_key"] == f"telegram:{GROUP}/{bad['message']['message_id']}"
        assert "flower" in row["reason"]
        assert watch.incidents("flower") == []
