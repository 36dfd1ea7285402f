"""Bluesky records -> Events, the same way whichever path (poll, firehose, Jetstream) saw them.

An event's id is the record's at-uri, so the paths agree and the store's dedupe lets each
record fire once. The profile record is rewritten in place, so each version is its own
event: at-uri + "#" + record CID. Nothing here logs record content.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import httpx
from atproto import models

from connectors.bluesky.identity import Identity, Resolver
from connectors.common import MALFORMED, UnreadImage
from connectors.item_fields import BLUESKY, words
from connectors.video_frames import Video, VideoLimits
from watcher.core.clock import Clock, utcnow
from watcher.core.models import BytesImage, Event, ImageSource, parse_time

log = logging.getLogger("watcher.bluesky")

PLATFORM = BLUESKY
POST = "app.bsky.feed.post"
LIKE = "app.bsky.feed.like"
REPOST = "app.bsky.feed.repost"
FOLLOW = "app.bsky.graph.follow"
PROFILE = "app.bsky.actor.profile"
LISTED = (POST, LIKE, REPOST, FOLLOW)  # read by rkey cursor; the profile is read by CID
WATCHED = (*LISTED, PROFILE)
WEB = "https://bsky.app"
# What a bsky.app URL calls each kind of record a like or repost can point at.
WEB_PATHS = {POST: "post", "app.bsky.feed.generator": "feed", "app.bsky.graph.list": "lists"}
BLOB_TIMEOUT = 30.0




class BlobUnavailable(Exception):
    """An image could not be fetched for a reason that may pass (the PDS is down).

    The record is then not stored yet: it is read again on the next try, because storing
    it without its image would mark it seen with an image code never checked.
    """



def at_uri(did: str, collection: str, rkey: str) -> str:
    return f"at://{did}/{collection}/{rkey}"


def split_uri(uri: str) -> tuple[str, str, str] | None:
    """(did, collection, rkey) of an at-uri, or None."""
    parts = uri.removeprefix("at://").split("/")
    return (parts[0], parts[1], parts[2]) if uri.startswith("at://") and len(parts) == 3 \
        else None


def unreadable_record(exc: Exception) -> str:
    """Why a record could not be read, for the contacts: its cause, never its content."""
    return f"the record could not be read ({type(exc).__name__})"


def web_link(actor: str, collection: str, rkey: str) -> str | None:
    path = WEB_PATHS.get(collection)
    return f"{WEB}/profile/{actor}/{path}/{rkey}" if path else None


def as_model(value: Any) -> Any:
    """A record as an SDK model: listRecords gives models; the firehose (CBOR) and
    Jetstream (JSON) give dicts, whose blob references the SDK normalises too."""
    if isinstance(value, dict):
        return models.get_or_create(value, strict=False)
    return value


def created_at(record: Any, clock: Clock = utcnow) -> datetime:
    """The record's own time (the survivor's client wrote it); now if it is unreadable."""
    text = getattr(record, "created_at", None)
    try:
        return parse_time(text) if isinstance(text, str) else clock()
    except ValueError:
        return clock()


def record_words(record: Any) -> tuple[str, tuple[str, ...]]:
    """Every field of the table (connectors/item_fields.py) that carries the person's words,
    read from the record in its lexicon (JSON) names, unknown fields included."""
    return words(BLUESKY, record_json(record))


def record_json(record: Any) -> dict[str, Any]:
    """A record (an SDK model, or what the SDK could not type) in its lexicon names; an
    untyped one has no words, but still makes its event (never an error)."""
    if isinstance(record, dict):
        return record
    try:
        raw = models.get_model_as_dict(record)
    except MALFORMED:
        return {}
    return raw if isinstance(raw, dict) else {}


def post_blobs(record: Any) -> list[Any]:
    """The image blobs of a post (images, or the media of a quote post)."""
    embed = getattr(record, "embed", None)
    media = getattr(embed, "media", None) or embed  # recordWithMedia wraps its media
    blobs = [getattr(image, "image", None) for image in getattr(media, "images", None) or []]
    return [b for b in blobs if b is not None]


def post_videos(record: Any) -> list[Any]:
    """The video blob of a post (app.bsky.embed.video, or the media of a quote post). The
    PDS keeps no thumbnail (the AppView's video service makes one): frames only."""
    embed = getattr(record, "embed", None)
    media = getattr(embed, "media", None) or embed
    video = getattr(media, "video", None)
    return [] if video is None else [video]


def blob_cid(blob: Any) -> str | None:
    try:
        cid = getattr(blob, "cid", None)
    except Exception:  # a malformed reference: skip the image rather than the post
        return None
    return str(cid) if cid else None


@dataclass
class Images:
    """Fetches blobs with com.atproto.sync.getBlob from the person's own PDS.

    Done with httpx rather than the SDK's get_blob because the SDK reads a whole body into
    memory; here the download stops at the configured cap (max_image_bytes).
    """

    http: httpx.AsyncClient
    max_bytes: int

    async def fetch(self, who: Identity, blobs: Iterable[Any]) -> tuple[ImageSource, ...]:
        found: list[ImageSource] = []
        for blob in blobs:
            cid = blob_cid(blob)
            if cid is not None:
                found.append(await self._one(who, cid, getattr(blob, "size", None)))
        return tuple(found)

    async def frames(self, who: Identity, blobs: Iterable[Any]) -> tuple[ImageSource, ...]:
        """Videos, fetched now within the cap like images, as frames decoded later in the
        detection thread (connectors/video_frames.py)."""
        limits = VideoLimits(max_bytes=self.max_bytes)
        videos = await self.fetch(who, blobs)
        return tuple(frame for video in videos for frame in Video(video, limits).frames())

    async def _one(self, who: Identity, cid: str, declared: Any) -> ImageSource:
        name = f"bluesky blob {cid}"
        if isinstance(declared, int) and declared > self.max_bytes:
            return UnreadImage(name, f"{declared} bytes > {self.max_bytes}", True)
        url = f"{who.pds}/xrpc/com.atproto.sync.getBlob"
        try:
            async with self.http.stream("GET", url, params={"did": who.did, "cid": cid},
                                        timeout=BLOB_TIMEOUT) as response:
                if response.status_code in (400, 404):
                    return UnreadImage(name, "no longer on the PDS", False)
                if response.status_code != 200:
                    raise BlobUnavailable(f"{name}: HTTP {response.status_code}")
                return await self._read(name, response)
        except httpx.HTTPError as exc:
            raise BlobUnavailable(f"{name}: {type(exc).__name__}") from None

    async def _read(self, name: str, response: httpx.Response) -> ImageSource:
        data = bytearray()
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > self.max_bytes:
                return UnreadImage(name, f"over {self.max_bytes} bytes", True)
        return BytesImage(bytes(data), name)


class EventBuilder:
    """Turns one record of a watched person into an Event (or None: not a watched kind)."""

    def __init__(self, resolver: Resolver, images: Images, clock: Clock = utcnow) -> None:
        self.resolver = resolver
        self.images = images
        self.clock = clock

    async def build(self, who: Identity, collection: str, rkey: str, cid: str | None,
                    value: Any, edited: bool = False) -> Event | None:
        record = as_model(value)
        uri = at_uri(who.did, collection, rkey)
        if collection == POST:
            return await self._post(who, uri, rkey, cid, record, edited)
        if collection in (LIKE, REPOST):
            return await self._subject(who, uri, collection, record)
        if collection == FOLLOW:
            return await self._follow(who, uri, record)
        if collection == PROFILE and cid:
            return await self._profile(who, uri, cid, record)
        return None

    def _base(self, who: Identity, kind: str, event_id: str, at: datetime,
              link: str | None) -> Event:
        return Event(platform=PLATFORM, person=who.person, kind=kind, id=event_id, at=at,
                     link=link)

    async def _post(self, who: Identity, uri: str, rkey: str, cid: str | None, record: Any,
                    edited: bool) -> Event:
        text, pieces = record_words(record)
        # A rewritten post (only the stream sees those) is a new version: its own id.
        event_id = f"{uri}#{cid}" if edited and cid else uri
        base = self._base(who, "message", event_id, created_at(record, self.clock),
                          web_link(who.handle or who.did, POST, rkey))
        return replace(base, text=text, alt=pieces,
                        images=(*await self.images.fetch(who, post_blobs(record)),
                                *await self.images.frames(who, post_videos(record))),
                        edited=edited)

    async def _aliases(self, did: str, collection: str, rkey: str) -> tuple[str, ...]:
        """The bsky.app URLs of a record, by DID and by handle: what a contact copies."""
        handle = await self.resolver.handle_of(did)
        found = [web_link(actor, collection, rkey) for actor in (handle, did) if actor]
        return tuple(link for link in found if link)

    async def _subject(self, who: Identity, uri: str, collection: str, record: Any) -> Event:
        target = str(getattr(getattr(record, "subject", None), "uri", "") or "")
        parts = split_uri(target)
        aliases = await self._aliases(*parts) if parts else ()
        kind = "reaction" if collection == LIKE else "repost"
        base = self._base(who, kind, uri, created_at(record, self.clock),
                          aliases[0] if aliases else None)
        return replace(base, target=target or None, target_aliases=aliases)

    async def _follow(self, who: Identity, uri: str, record: Any) -> Event:
        target = str(getattr(record, "subject", "") or "")
        handle = await self.resolver.handle_of(target) if target else None
        aliases = tuple(f"{WEB}/profile/{a}" for a in (handle, target) if a)
        base = self._base(who, "follow", uri, created_at(record, self.clock),
                          aliases[0] if aliases else None)
        return replace(base, target=target or None, target_aliases=aliases)

    async def _profile(self, who: Identity, uri: str, cid: str, record: Any) -> Event:
        text, pieces = record_words(record)
        blobs = [b for b in (getattr(record, "avatar", None), getattr(record, "banner", None))
                 if b is not None]
        # The profile has no trustworthy time of change: now is when the watch saw it.
        base = self._base(who, "profile", f"{uri}#{cid}", self.clock(),
                          f"{WEB}/profile/{who.handle or who.did}")
        return replace(base, text=text, alt=pieces, images=await self.images.fetch(who, blobs))
