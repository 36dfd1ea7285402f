"""The local PDS harness against a real Bluesky PDS on loopback.

A survivor and a contact act through the authenticated SDK client; everything
is then read back the way duress-watcher reads it: without logging in
(com.atproto.repo.listRecords, sync.getBlob, identity.resolveHandle, the PLC
directory, the subscribeRepos firehose). Deselect with ``-m "not pds"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from atproto import (
    CAR,
    AsyncFirehoseSubscribeReposClient,
    IdResolver,
    models,
    parse_subscribe_repos_message,
)
from atproto_client.exceptions import NetworkError
from PIL import Image, ImageDraw

from tests.fakes.pds import LocalPds, unique_handle

pytest_plugins = ["tests.fakes.pds"]  # the pds / pds_session fixtures and the `pds` marker
pytestmark = pytest.mark.pds

POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
REPOST = "app.bsky.feed.repost"
FOLLOW = "app.bsky.graph.follow"
PROFILE = "app.bsky.actor.profile"

DURESS_TEXT = "Lovely weather, the blue umbrella is back in the hall"
IMAGE_ALT = "a red kettle on the windowsill"
DESCRIPTION = "Gardening, tea, and the blue umbrella."


def make_png(
    size: tuple[int, int] = (96, 64), colour: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    img = Image.new("RGB", size, (250, 250, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle((10, 10, size[0] - 10, size[1] - 10), fill=colour)
    draw.line((0, 0, size[0], size[1]), fill=(0, 0, 0), width=3)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def make_jpeg(size: tuple[int, int] = (128, 128)) -> bytes:
    img = Image.new("RGB", size)
    for x in range(size[0]):
        for y in range(size[1]):
            img.putpixel((x, y), (x * 2 % 256, y * 2 % 256, 128))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def list_all(client: Any, repo: str, collection: str, **params: Any) -> list[Any]:
    """Every record of a collection, following the cursor."""
    out: list[Any] = []
    cursor = None
    while True:
        page = client.com.atproto.repo.list_records(
            {"repo": repo, "collection": collection, "limit": 100, "cursor": cursor, **params}
        )
        out.extend(page.records)
        if not page.records or not page.cursor:
            return out
        cursor = page.cursor


@dataclass
class World:
    pds: LocalPds
    survivor_did: str
    survivor_handle: str
    contact_did: str
    contact_handle: str
    text_post: Any
    image_post: Any
    image_bytes: bytes
    contact_post: Any
    like: Any
    repost: Any
    follow: Any
    avatar_bytes: bytes
    survivor_password: str


@pytest.fixture(scope="module")
def world(pds_session: LocalPds) -> World:
    pds = pds_session
    password = "correct horse battery"
    # Handles are unique per run: the session's PDS is shared, and bare words such as
    # "contact" are reserved by the PDS.
    s_did, s_handle = pds.create_account(unique_handle("survivor"), password)
    c_did, c_handle = pds.create_account(unique_handle("contact"), "another long password")
    survivor = pds.login_client(s_handle, password)
    contact = pds.login_client(c_handle, "another long password")

    contact_post = contact.send_post("Checking in: how are you doing?")
    text_post = survivor.send_post(DURESS_TEXT)
    image_bytes = make_png()
    image_post = survivor.send_image(
        "My kitchen this morning", image=image_bytes, image_alt=IMAGE_ALT
    )
    like = survivor.like(contact_post.uri, contact_post.cid)
    repost = survivor.repost(contact_post.uri, contact_post.cid)
    follow = survivor.follow(c_did)

    survivor.com.atproto.repo.put_record(
        models.ComAtprotoRepoPutRecord.Data(
            repo=s_did,
            collection=PROFILE,
            rkey="self",
            record=models.AppBskyActorProfile.Record(
                display_name="Sam", description="first version"
            ),
        )
    )
    avatar_bytes = make_jpeg()
    avatar = survivor.upload_blob(avatar_bytes).blob
    survivor.com.atproto.repo.put_record(
        models.ComAtprotoRepoPutRecord.Data(
            repo=s_did,
            collection=PROFILE,
            rkey="self",
            record=models.AppBskyActorProfile.Record(
                display_name="Sam", description=DESCRIPTION, avatar=avatar
            ),
        )
    )
    return World(
        pds=pds,
        survivor_did=s_did,
        survivor_handle=s_handle,
        contact_did=c_did,
        contact_handle=c_handle,
        text_post=text_post,
        image_post=image_post,
        image_bytes=image_bytes,
        contact_post=contact_post,
        like=like,
        repost=repost,
        follow=follow,
        avatar_bytes=avatar_bytes,
        survivor_password=password,
    )


def test_accounts_have_test_handles_and_plc_dids(world: World) -> None:
    assert world.survivor_handle.startswith("survivor") and world.survivor_handle.endswith(".test")
    assert world.contact_handle.startswith("contact") and world.contact_handle.endswith(".test")
    assert world.survivor_did.startswith("did:plc:")
    assert world.survivor_did != world.contact_did


def test_handle_resolves_to_did_on_the_pds(world: World) -> None:
    anon = world.pds.anonymous_client()
    resolved = anon.com.atproto.identity.resolve_handle({"handle": world.survivor_handle})
    assert resolved.did == world.survivor_did


def test_did_document_comes_from_the_local_plc(world: World) -> None:
    doc = IdResolver(plc_url=world.pds.plc_url).did.resolve(world.survivor_did)
    assert doc is not None
    assert doc.id == world.survivor_did
    assert doc.get_pds_endpoint() == world.pds.pds_url
    assert doc.get_handle() == world.survivor_handle

    raw = httpx.get(f"{world.pds.plc_url}/{world.survivor_did}", timeout=5).json()
    assert raw["alsoKnownAs"] == [f"at://{world.survivor_handle}"]
    assert raw["service"][0]["serviceEndpoint"] == f"http://localhost:{world.pds.pds_port}"


def test_text_post_reads_back_without_login(world: World) -> None:
    anon = world.pds.anonymous_client()
    posts = list_all(anon, world.survivor_did, POST)
    by_uri = {r.uri: r for r in posts}
    record = by_uri[world.text_post.uri]
    assert record.cid == world.text_post.cid
    assert isinstance(record.value, models.AppBskyFeedPost.Record)
    assert record.value.text == DURESS_TEXT
    assert record.value.embed is None
    # The handle works as `repo` too.
    by_handle = list_all(anon, world.survivor_handle, POST)
    assert {r.uri for r in by_handle} == set(by_uri)


def test_image_post_alt_text_and_blob(world: World) -> None:
    anon = world.pds.anonymous_client()
    record = anon.com.atproto.repo.get_record(
        {
            "repo": world.survivor_did,
            "collection": POST,
            "rkey": world.image_post.uri.rsplit("/", 1)[1],
        }
    )
    embed = record.value.embed
    assert isinstance(embed, models.AppBskyEmbedImages.Main)
    assert [img.alt for img in embed.images] == [IMAGE_ALT]
    blob = embed.images[0].image
    assert blob.mime_type == "image/png"
    assert blob.size == len(world.image_bytes)

    data = anon.com.atproto.sync.get_blob({"did": world.survivor_did, "cid": blob.ref.link})
    assert data == world.image_bytes
    assert Image.open(io.BytesIO(data)).size == (96, 64)


def test_like_repost_follow_read_back(world: World) -> None:
    anon = world.pds.anonymous_client()
    (like,) = list_all(anon, world.survivor_did, LIKE)
    assert like.uri == world.like.uri
    assert like.value.subject.uri == world.contact_post.uri
    assert like.value.subject.cid == world.contact_post.cid

    (repost,) = list_all(anon, world.survivor_did, REPOST)
    assert repost.uri == world.repost.uri
    assert repost.value.subject.uri == world.contact_post.uri

    (follow,) = list_all(anon, world.survivor_did, FOLLOW)
    assert follow.uri == world.follow.uri
    assert follow.value.subject == world.contact_did

    # The contact's post is in the contact's repo, not the survivor's.
    assert world.contact_post.uri.startswith(f"at://{world.contact_did}/{POST}/")


def test_profile_avatar_and_description(world: World) -> None:
    anon = world.pds.anonymous_client()
    (profile,) = list_all(anon, world.survivor_did, PROFILE)
    assert profile.uri == f"at://{world.survivor_did}/{PROFILE}/self"
    assert profile.value.description == DESCRIPTION
    assert profile.value.display_name == "Sam"
    avatar = profile.value.avatar
    assert avatar.mime_type == "image/jpeg"
    data = anon.com.atproto.sync.get_blob({"did": world.survivor_did, "cid": avatar.ref.link})
    assert data == world.avatar_bytes
    assert Image.open(io.BytesIO(data)).format == "JPEG"


def test_list_records_cursor_semantics(pds: LocalPds) -> None:
    client, did, _ = pds.new_account("pager")
    uris = [client.send_post(f"post {i}").uri for i in range(5)]
    anon = pds.anonymous_client()

    # Default order: newest first (by rkey, a TID). `cursor` is the last rkey of the page,
    # and it is set even on a short last page: the end is an empty page without a cursor.
    pages, cursor = [], None
    while True:
        page = anon.com.atproto.repo.list_records(
            {"repo": did, "collection": POST, "limit": 2, "cursor": cursor}
        )
        pages.append([r.uri for r in page.records])
        if not page.records:
            assert page.cursor is None
            break
        assert page.cursor == page.records[-1].uri.rsplit("/", 1)[1]
        cursor = page.cursor
    assert pages == [uris[4:2:-1], uris[2:0:-1], uris[0:1], []]

    # reverse=True: oldest first, and the cursor then means "after this rkey":
    # the way to poll for records newer than the last one seen.
    seen = uris[2].rsplit("/", 1)[1]
    newer = anon.com.atproto.repo.list_records(
        {"repo": did, "collection": POST, "reverse": True, "cursor": seen}
    )
    assert [r.uri for r in newer.records] == uris[3:]
    nothing = anon.com.atproto.repo.list_records(
        {"repo": did, "collection": POST, "reverse": True, "cursor": uris[4].rsplit("/", 1)[1]}
    )
    assert nothing.records == [] and nothing.cursor is None

    # A collection the repo never wrote to is empty, not an error; an unknown repo is a 400.
    empty = anon.com.atproto.repo.list_records({"repo": did, "collection": LIKE})
    assert empty.records == []
    with pytest.raises(Exception, match="Could not find repo"):
        anon.com.atproto.repo.list_records(
            {"repo": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "collection": POST}
        )


async def test_firehose_delivers_commits(pds: LocalPds) -> None:
    client, did, _ = await asyncio.to_thread(pds.new_account, "firehose")
    earlier = await asyncio.to_thread(client.send_post, "before the subscription")

    commits: asyncio.Queue[tuple[Any, dict[str, Any]]] = asyncio.Queue()

    async def on_message(frame: Any) -> None:
        message = parse_subscribe_repos_message(frame)
        if (
            not isinstance(message, models.ComAtprotoSyncSubscribeRepos.Commit)
            or message.repo != did
        ):
            return
        car = CAR.from_bytes(message.blocks)
        for op in message.ops:
            record = car.blocks.get(op.cid) if op.cid is not None else None
            await commits.put((message, {"action": op.action, "path": op.path, "record": record}))

    # cursor=0 replays the PDS's whole sequence first, then goes live.
    firehose = AsyncFirehoseSubscribeReposClient(params={"cursor": 0}, base_uri=pds.ws_url)
    task = asyncio.create_task(firehose.start(on_message))

    async def next_op(path_prefix: str, timeout: float = 15.0) -> tuple[Any, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            message, op = await asyncio.wait_for(
                commits.get(), timeout=max(0.01, deadline - time.monotonic())
            )
            if op["path"].startswith(path_prefix):
                return message, op

    try:
        # Backfill: the post made before subscribing.
        earlier_rkey = earlier.uri.rsplit("/", 1)[1]
        message, op = await next_op(f"{POST}/{earlier_rkey}")
        assert op["action"] == "create"
        assert op["record"]["text"] == "before the subscription"
        first_seq = message.seq

        # Live: a new image post with alt text, made while subscribed.
        image = make_png(colour=(20, 90, 200))
        live = await asyncio.to_thread(
            client.send_image, "live one", image=image, image_alt="the code word is marigold"
        )
        live_rkey = live.uri.rsplit("/", 1)[1]
        message, op = await next_op(f"{POST}/{live_rkey}")
        assert message.seq > first_seq
        assert message.repo == did
        assert str(message.commit)  # commit CID
        assert op["action"] == "create"
        record = op["record"]
        assert record["$type"] == POST
        assert record["text"] == "live one"
        assert record["embed"]["images"][0]["alt"] == "the code word is marigold"
        # Firehose records are plain dicts; blob refs hold the CID as raw bytes or a CID object.
        parsed = models.get_or_create(record, models.AppBskyFeedPost.Record, strict=False)
        assert isinstance(parsed, models.AppBskyFeedPost.Record)
        blob = parsed.embed.images[0].image
        data = await asyncio.to_thread(
            pds.anonymous_client().com.atproto.sync.get_blob, {"did": did, "cid": str(blob.cid)}
        )
        assert data == image

        # A delete arrives as an op without a CID.
        await asyncio.to_thread(client.delete_post, live.uri)
        _, op = await next_op(f"{POST}/{live_rkey}")
        assert op["action"] == "delete" and op["record"] is None
    finally:
        await firehose.stop()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)


def test_outage_and_recovery(pds: LocalPds, world: World) -> None:
    anon = pds.anonymous_client(timeout=1.0)
    survivor = pds.login_client(world.survivor_handle, world.survivor_password)
    before = list_all(anon, world.survivor_did, POST)

    # A hung server: connections open, no answer.
    pds.freeze()
    try:
        with pytest.raises(NetworkError):  # InvokeTimeoutError is a NetworkError
            anon.com.atproto.repo.list_records({"repo": world.survivor_did, "collection": POST})
    finally:
        pds.thaw()

    # A stopped server: connection refused.
    pds.stop()
    assert not pds.running
    with pytest.raises(NetworkError):
        anon.com.atproto.repo.list_records({"repo": world.survivor_did, "collection": POST})
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{pds.plc_url}/{world.survivor_did}", timeout=2)

    pds.start()
    after = list_all(anon, world.survivor_did, POST)
    assert [r.uri for r in after] == [r.uri for r in before]
    # The PLC was replayed from disk, the session token signed before the outage still works.
    doc = IdResolver(plc_url=pds.plc_url).did.resolve(world.survivor_did)
    assert doc is not None and doc.get_pds_endpoint() == pds.pds_url
    new = survivor.send_post("back online")
    assert new.uri in {r.uri for r in list_all(anon, world.survivor_did, POST)}
