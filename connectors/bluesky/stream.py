"""Real-time Bluesky: one interface, two sources (Jetstream JSON, or a PDS's firehose).

A source turns what arrives into Changes and hands each batch to `apply` together with
the stream cursor past it; `apply` stores the events and that cursor in one transaction.
If `apply` fails (the database, an image the PDS cannot serve yet) the connection is
dropped and reopened from the last stored cursor, so nothing is skipped. Polling stays on
beside either source: a stream only makes alerts faster.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import websockets
from atproto import (
    CAR,
    AsyncFirehoseSubscribeReposClient,
    models,
    parse_subscribe_repos_message,
)
from websockets.asyncio.client import ClientConnection

from connectors.bluesky.translate import WATCHED
from connectors.common import until_stopped, wait_or_stop
from watcher.core.backoff import Backoff

log = logging.getLogger("watcher.bluesky")

JETSTREAM_CURSOR = "bluesky:jetstream"
REWIND_US = 2_000_000  # Jetstream's advice: resume a little early; dedupe drops the repeats
MAX_FRAME = 16 * 1024 * 1024
BACKOFF = Backoff(first=1.0, cap=60.0)  # reconnect at once after a cut, then 1 s doubling


@dataclass(frozen=True)
class Change:
    """One record operation in a watched repository, or an identity change (collection "")."""

    did: str
    action: str  # create | update | delete | identity | account (status changed)
    collection: str = ""
    rkey: str = ""
    cid: str | None = None
    record: Any = None


Apply = Callable[[list[Change], tuple[str, str]], Awaitable[None]]


class Source(Protocol):
    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until `stop`, reconnecting from the stored cursor after any failure."""
        ...


def firehose_cursor(pds: str) -> str:
    return f"bluesky:firehose:{urlsplit(pds).netloc}"


class Reconnecting:
    """The shared loop: connect, receive, and on a failure log once, back off, retry."""

    name = "stream"

    def __init__(self, cursor: Callable[[str], str | None]) -> None:
        self.cursor = cursor
        self.down = False
        self.opened = False

    async def session(self, stop: asyncio.Event) -> None:
        raise NotImplementedError

    def connected(self) -> None:
        self.opened = True
        if self.down:
            self.down = False
            log.info("bluesky %s: receiving again", self.name)

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self.opened = False
            try:
                await self.session(stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure: reopen from the stored cursor
                failures = 1 if self.opened else failures + 1
                if not self.down:
                    self.down = True
                    # The type only: a message could carry record content.
                    log.warning("bluesky %s: connection lost (%s); reconnecting. Polling "
                                "still reads everything, only slower", self.name,
                                type(exc).__name__)
            await wait_or_stop(stop, BACKOFF.delay(failures))


class Jetstream(Reconnecting):
    """Jetstream's JSON commits over a websocket, filtered to the watched DIDs server-side.

    The cursor is Jetstream's time_us of the last event handled.
    """

    name = "jetstream"

    def __init__(self, url: str, dids: Collection[str], apply: Apply,
                 cursor: Callable[[str], str | None]) -> None:
        super().__init__(cursor)
        self.url = url
        self.dids = sorted(dids)
        self.apply = apply

    def address(self) -> str:
        params = [("wantedCollections", c) for c in WATCHED]
        params += [("wantedDids", d) for d in self.dids]
        stored = self.cursor(JETSTREAM_CURSOR)
        if stored and stored.isdigit():
            params.append(("cursor", str(max(0, int(stored) - REWIND_US))))
        return f"{self.url}?{urlencode(params)}"

    async def session(self, stop: asyncio.Event) -> None:
        async with websockets.connect(self.address(), max_size=MAX_FRAME, open_timeout=15,
                                      ping_interval=20, ping_timeout=20) as socket:
            self.connected()
            await until_stopped(self._read(socket), stop)

    async def _read(self, socket: ClientConnection) -> None:
        async for raw in socket:
            await self.handle(json.loads(raw))
        raise ConnectionError("Jetstream closed the connection")

    async def handle(self, message: dict[str, Any]) -> None:
        did, time_us = message.get("did"), message.get("time_us")
        if not isinstance(did, str) or not isinstance(time_us, int):
            return
        position = (JETSTREAM_CURSOR, str(time_us))
        kind = message.get("kind")
        if kind == "commit" and isinstance(commit := message.get("commit"), dict):
            change = Change(did, str(commit.get("operation", "")),
                            str(commit.get("collection", "")), str(commit.get("rkey", "")),
                            commit.get("cid"), commit.get("record"))
            await self.apply([change], position)
        elif kind in ("identity", "account"):
            await self.apply([Change(did, kind)], position)


class Firehose(Reconnecting):
    """com.atproto.sync.subscribeRepos of one PDS (through the SDK), filtered to the
    watched DIDs here. The cursor is the PDS's sequence number, per PDS host."""

    def __init__(self, pds: str, dids: Collection[str], apply: Apply,
                 cursor: Callable[[str], str | None]) -> None:
        super().__init__(cursor)
        self.pds = pds
        self.dids = frozenset(dids)
        self.apply = apply
        self.key = firehose_cursor(pds)
        self.name = f"firehose {urlsplit(pds).netloc}"
        self.client: AsyncFirehoseSubscribeReposClient | None = None
        self.failure: BaseException | None = None

    def ws_url(self) -> str:
        parts = urlsplit(self.pds)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}/xrpc"

    async def session(self, stop: asyncio.Event) -> None:
        stored = self.cursor(self.key)
        params = {"cursor": int(stored)} if stored and stored.isdigit() else None
        # recv_timeout None: a quiet PDS is not a dead one (websocket pings find those).
        client = AsyncFirehoseSubscribeReposClient(params=params, base_uri=self.ws_url(),
                                                   recv_timeout=None)
        self.client, self.failure = client, None
        try:
            await until_stopped(client.start(self.on_frame, self.on_error), stop)
        finally:
            await client.stop()
        if self.failure is not None:
            raise self.failure
        if not stop.is_set():
            raise ConnectionError("the firehose client ended")

    async def on_error(self, exc: BaseException) -> None:
        """The SDK would log a failed callback and go on past the frame: stop instead, so
        the next session starts again from the stored cursor."""
        self.failure = exc
        if self.client is not None:
            await self.client.stop()

    async def on_frame(self, frame: Any) -> None:
        self.connected()
        message = parse_subscribe_repos_message(frame)
        seq = getattr(message, "seq", None)
        if not isinstance(seq, int) or self.client is None:
            return
        changes = self.changes(message)
        await self.apply(changes, (self.key, str(seq)))
        # The SDK reconnects by itself with the params it was given: keep them current.
        self.client.update_params({"cursor": seq})

    def changes(self, message: Any) -> list[Change]:
        did = getattr(message, "repo", None) or getattr(message, "did", None)
        if did not in self.dids:
            return []
        repos = models.ComAtprotoSyncSubscribeRepos
        if isinstance(message, repos.Identity):
            return [Change(did, "identity")]  # a new handle or PDS: re-check now
        if isinstance(message, repos.Account):
            return [Change(did, "account")]  # deactivated, taken down, back: check now
        if not isinstance(message, repos.Commit):
            return []
        blocks = CAR.from_bytes(message.blocks).blocks
        found = []
        for op in message.ops:
            collection, _, rkey = op.path.partition("/")
            record = blocks.get(op.cid) if op.cid is not None else None
            found.append(Change(did, op.action, collection, rkey,
                                str(op.cid) if op.cid is not None else None, record))
        return found
