"""Bluesky videos (app.bsky.embed.video, alone or as the media of a quote post) reach the
image codes as frames (#16): records written by the survivor through the atproto SDK to the
local PDS, which validates them against the lexicons; the watcher reads them as it always
does, never writing to the survivor's repository."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually
from tests.fakes.pds import LocalPds, pds, pds_session  # noqa: F401
from tests.test_bluesky_connector import PHRASE, People, Rig, bluesky_config, make_people
from tests.test_stickers import HOSTILE, middle_clip

pytestmark = [pytest.mark.pds, pytest.mark.timeout(120)]

POST = "app.bsky.feed.post"
NOW = "2026-12-07T02:00:00.000Z"


def video_post(people: People, data: bytes, quote: bool) -> Any:
    blob = people.sam.upload_blob(data).blob.model_dump(by_alias=True)
    blob["mimeType"] = "video/mp4"
    movie = {"$type": "app.bsky.embed.video", "video": blob, "alt": ""}
    embed: dict[str, Any] = movie
    if quote:
        quoted = {"uri": people.contact_post.uri, "cid": people.contact_post.cid}
        embed = {"$type": "app.bsky.embed.recordWithMedia",
                 "record": {"$type": "app.bsky.embed.record", "record": quoted}, "media": movie}
    record = {"$type": POST, "text": "", "createdAt": NOW, "embed": embed}
    return people.sam.com.atproto.repo.create_record(
        data={"repo": people.sam_did, "collection": POST, "record": record})


@pytest.mark.parametrize("quote", [False, True], ids=["video", "quote with a video"])
async def test_a_video_whose_middle_frame_is_the_photo_fires(
        tmp_path: Path, pds: LocalPds, quote: bool) -> None:  # noqa: F811
    people = await asyncio.to_thread(make_people, pds)
    rig = Rig(tmp_path, bluesky_config(people))
    try:
        await rig.watching(people.sam_did)
        await asyncio.to_thread(video_post, people, middle_clip(), quote)
        await eventually(lambda: rig.codes() == ["flower"], "the video's middle frame")
        assert rig.app.store.unchecked() == []
    finally:
        await rig.stop()


async def test_a_hostile_video_is_recorded_as_unchecked_and_the_feed_goes_on(
        tmp_path: Path, pds: LocalPds) -> None:  # noqa: F811
    people = await asyncio.to_thread(make_people, pds)
    rig = Rig(tmp_path, bluesky_config(people))
    try:
        await rig.watching(people.sam_did)
        # Not the huge GIF: the PDS sniffs it as image/gif and refuses it as a video's blob.
        for name in ("garbage", "truncated"):
            await asyncio.to_thread(video_post, people, HOSTILE[name](), False)
        await people.post(PHRASE)
        await eventually(lambda: rig.codes() == ["network-down"], "the post after them")
        rows = await eventually(lambda: (r := rig.app.store.unchecked()) and len(r) == 2 and r,
                                "both videos recorded")
        assert all("flower" in r["reason"] for r in rows)
    finally:
        await rig.stop()
