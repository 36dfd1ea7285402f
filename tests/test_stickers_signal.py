"""Videos and GIFs on Signal reach the image codes as frames (#16), through the real client
against the signal-cli-rest-api stand-in; the fixture audits that nothing was sent to Sam.

Signal's stickers are not read as images: signal-cli's REST API gives a sticker's pack id
and number only, and no way to fetch its image (docs/signal.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import eventually as until
from tests.fakes.signal_api import FakeSignalApi, attachment_message, make_blob, text_message
from tests.test_signal_connector import PHRASE, SAM, any_api, api, running
from tests.test_stickers import HOSTILE, middle_clip

__all__ = ["any_api", "api"]  # the stand-in fixtures, shared with the connector tests

pytestmark = pytest.mark.timeout(60)


async def test_a_video_whose_middle_frame_is_the_photo_fires(
        tmp_path: Path, any_api: FakeSignalApi) -> None:
    rig = await running(tmp_path, any_api)
    try:
        blob = make_blob(middle_clip(), "video/mp4", "clip.mp4")
        any_api.inject(attachment_message(SAM, [blob]), blobs=[blob])
        await until(lambda: rig.incidents("flower"), "the video's middle frame")
        assert rig.app.store.unchecked() == []
        await until(lambda: blob.id not in any_api.attachments)  # deleted once stored
    finally:
        await rig.stop()


@pytest.mark.parametrize("name", list(HOSTILE))
async def test_a_hostile_video_is_recorded_as_unchecked_and_the_feed_goes_on(
        tmp_path: Path, api: FakeSignalApi, name: str) -> None:
    rig = await running(tmp_path, api)
    try:
        blob = make_blob(HOSTILE[name](), "video/mp4", "clip.mp4")
        api.inject(attachment_message(SAM, [blob]), blobs=[blob])
        api.inject(text_message(SAM, PHRASE))
        await until(lambda: rig.incidents("network-down"), "the message after it")
        [row] = rig.app.store.unchecked()
        assert row["event_key"].startswith("signal:") and "flower" in row["reason"]
        assert rig.incidents("flower") == []
    finally:
        await rig.stop()
