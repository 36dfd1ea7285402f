"""Issue #19 on Bluesky: every "read" row of connectors/item_fields.FIELDS, as a record the
survivor writes through the atproto SDK to the local PDS (which validates it against the
lexicons), must alert; a post once created, a profile as each new version."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from connectors.item_fields import BLUESKY
from tests import item_kinds as kinds
from tests.conftest import EXAMPLES, eventually
from tests.fakes.pds import LocalPds, pds, pds_session  # noqa: F401
from tests.test_bluesky_connector import People, Rig, bluesky_config, make_people
from tests.test_item_kinds import CODES_TOML

pytestmark = [pytest.mark.pds, pytest.mark.timeout(120)]

POST, PROFILE = "app.bsky.feed.post", "app.bsky.actor.profile"
NOW = "2026-12-07T02:00:00.000Z"
# Not the reference photo of the image code: only the words may fire here.
HOLIDAY = (EXAMPLES / "photos" / "holiday.jpg").read_bytes()


def skeletons(people: People, image: Any, video: Any) -> dict[str, dict[str, Any]]:
    """Posts by the embed their row needs; a profile as it is."""
    quoted = {"uri": people.contact_post.uri, "cid": people.contact_post.cid}
    images = {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": image}]}
    movie = {"$type": "app.bsky.embed.video", "video": video, "alt": ""}

    def with_media(media: dict[str, Any]) -> dict[str, Any]:
        return {"$type": "app.bsky.embed.recordWithMedia",
                "record": {"$type": "app.bsky.embed.record", "record": quoted}, "media": media}

    post = {"$type": POST, "text": "", "createdAt": NOW}
    return {"post": post, "post with a quote": post,
            "embed.images[].alt": post | {"embed": images},
            "embed.alt": post | {"embed": movie},
            "embed.media.images[].alt": post | {"embed": with_media(images)},
            "embed.media.alt": post | {"embed": with_media(movie)},
            "profile": {"$type": PROFILE}}


def create(people: People, collection: str, record: dict[str, Any], rkey: str | None
           ) -> Any:
    data = {"repo": people.sam_did, "collection": collection, "record": record}
    if rkey is None:
        return people.sam.com.atproto.repo.create_record(data=data)
    return people.sam.com.atproto.repo.put_record(data=data | {"rkey": rkey})


async def test_every_bluesky_kind_read_alerts(tmp_path: Path, pds: LocalPds) -> None:  # noqa: F811
    people = await asyncio.to_thread(make_people, pds)
    image = (await asyncio.to_thread(people.sam.upload_blob, HOLIDAY)).blob
    video = (await asyncio.to_thread(people.sam.upload_blob, b"\x00\x00\x00\x18ftypmp42"
                                     + bytes(64))).blob
    shapes = skeletons(people, image.model_dump(by_alias=True),
                       video.model_dump(by_alias=True))
    rig = Rig(tmp_path, bluesky_config(people) + CODES_TOML)
    try:
        await rig.watching(people.sam_did)
        done: list[str] = []
        for row in kinds.read_rows(BLUESKY):
            record = kinds.item(row, shapes)
            profile = record.get("$type") == PROFILE
            await asyncio.to_thread(create, people, PROFILE if profile else POST, record,
                                    "self" if profile else None)
            done.append(f"{row.kind} `{row.path}`")
            # One at a time: a profile is one record, and each version must be seen.
            await eventually(lambda: len(rig.app.store.incidents()) == len(done),
                             f"an alert for {done[-1]}", timeout=30)
        def every_alert() -> list[str] | None:
            found = re.findall(r"Sam used .*", rig.out.getvalue())
            return found if len(found) >= len(done) else None

        alerts = await eventually(every_alert, "every alert on the console")
        assert len(alerts) == len(done), "an alert was sent twice"
        for alert in alerts:
            assert re.fullmatch(r"Sam used pineapple on bluesky: \[.*pineapple.express.*\] "
                                r"https://bsky\.app/profile/\S+", alert, re.I), alert
    finally:
        await rig.stop()
