"""Bluesky: a watched person's public repository, read without logging in (docs/bluesky.md).

Posts (text, image alt texts, images), likes, reposts, follows and profile changes are
public records on the person's own PDS. The watcher only reads them: listRecords polling
(the safety net, always on) and optionally a stream (Jetstream or the PDS firehose) for
speed. Every path builds the same Event for a record (id = its at-uri), so the store's
dedupe makes them agree and a record fires once. Never depends on the AppView.

Pieces: bluesky_identity (handle -> DID -> PDS), bluesky_records (record -> Event),
bluesky_poll (listRecords with cursors), bluesky_stream (Jetstream / firehose).
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from aiohttp import web

from connectors.base import Sink
from connectors.bluesky.client import make_http, make_resolver
from connectors.bluesky.identity import Identity, IdentityError, Resolver, identity_cursor
from connectors.bluesky.poll import Poller, PollError
from connectors.bluesky.stream import Change, Firehose, Jetstream, Source
from connectors.bluesky.translate import (
    LISTED,
    PLATFORM,
    POST,
    PROFILE,
    EventBuilder,
    Images,
    unreadable_record,
    web_link,
)
from connectors.common import MALFORMED, cancel_and_wait
from watcher.core.channel import Channel
from watcher.core.clock import Clock, utcnow
from watcher.core.config import BlueskyPerson, Config, parse_duration
from watcher.core.models import Event

log = logging.getLogger("watcher.bluesky")

RECHECK = 86400.0  # identity (handle, PDS) re-read daily, and at once on a stream notice
RECHECK_RETRY = 300.0  # a re-read that failed is tried again this much later, not every poll
SAVE_EVERY = 5.0  # seconds between cursor writes for stream frames that carry no event


class BlueskyConnector:
    name = "bluesky"

    def __init__(self, config: Config, http: httpx.AsyncClient | None = None,
                 resolver: Resolver | None = None, clock: Clock = utcnow) -> None:
        section = config.connectors.bluesky
        if section is None:
            raise ValueError("no [connectors.bluesky] section in the config")
        self.config = config
        self.section = section
        self.people: dict[str, BlueskyPerson] = {
            key: p.bluesky for key, p in config.people.items() if p.bluesky is not None}
        self.interval = parse_duration(section.poll_interval).total_seconds()
        self.resolver = resolver or make_resolver(section.service, section.plc)
        self.http = http or make_http()
        self.clock = clock
        images = Images(self.http, config.watcher.max_image_bytes)
        self.builder = EventBuilder(self.resolver, images, clock)
        self.identities: dict[str, Identity] = {}
        self.checked: dict[str, float] = {}  # monotonic time of each identity's last check
        self.recheck_failing: set[str] = set()  # people whose identity re-read fails
        self.problems: dict[str, str] = {}  # feeds failing now (for one "reading again" line)
        self.changed = asyncio.Event()  # the watched DIDs or PDSes moved: resubscribe
        self.wake = asyncio.Event()  # an #account event: poll (getRepoStatus) now
        self.ingest = asyncio.Lock()  # poll and stream must not race on one record
        self.saved_at: dict[str, float] = {}
        self._sink: Sink | None = None

    def feeds(self) -> list[str]:
        return [f"{person}/bluesky" for person in self.people]

    @property
    def sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("BlueskyConnector.start() has not been called")
        return self._sink

    # -- identity ------------------------------------------------------------------------

    async def start(self, sink: Sink) -> None:
        """Locate every person; one who cannot be located is a blind spot, not a crash."""
        self._sink = sink
        self.checked.clear()
        if self.section.login is not None:
            log.info("bluesky: [connectors.bluesky] login is not used yet (no DMs): the "
                     "watcher reads public records only")
        for person in self.people:
            await self.locate(person)

    async def locate(self, person: str) -> Identity | None:
        known = self.identities.get(person) or self._stored(person)
        try:
            found = await self._resolve(person, known)
        except IdentityError as exc:
            if known is None:  # nothing to watch: a blind spot until it resolves
                self.failed(person, exc.message, exc.permanent)
            else:
                if person not in self.recheck_failing:  # once until a re-read works
                    log.warning("bluesky: re-checking %s failed (%s); still watching %s",
                                person, exc.message, known.did)
                self.recheck_failing.add(person)
                self.identities[person] = known
                self.checked[person] = time.monotonic() - RECHECK + RECHECK_RETRY
            return known
        self.recheck_failing.discard(person)
        self.checked[person] = time.monotonic()
        self._adopt(person, known, found)
        return found

    def _stored(self, person: str) -> Identity | None:
        stored = self.sink.cursor(identity_cursor(person, self._configured(person)))
        return Identity.decode(person, stored)

    def _configured(self, person: str) -> str:
        config = self.people[person]
        return config.did or config.handle or ""

    async def _resolve(self, person: str, known: Identity | None) -> Identity:
        config = self.people[person]
        did = config.did
        if did is None:
            assert config.handle is not None  # the config requires one of the two
            did = await self.resolver.resolve_handle(config.handle, known.pds if known else None)
            if known is not None and did != known.did:
                # Someone else may have taken a name the survivor dropped: keep the
                # account we know, and say so.
                log.warning("bluesky: the handle of people.%s.bluesky now names another "
                            "account (%s); still watching %s. If the survivor moved accounts, "
                            "set people.%s.bluesky.did", person, did, known.did, person)
                did = known.did
        found = await self.resolver.describe(person, did)
        if config.handle and found.handle and found.handle != config.handle:
            log.warning("bluesky: %s is now @%s (was @%s); still watched by DID. Update "
                        "people.%s.bluesky.handle", person, found.handle, config.handle, person)
        return found

    def _adopt(self, person: str, known: Identity | None, found: Identity) -> None:
        self.identities[person] = found
        self.resolver.remember(found)
        if known != found:
            self.sink.save_cursor(identity_cursor(person, self._configured(person)),
                                 found.encode())
            if known is not None and known.pds != found.pds:
                log.warning("bluesky: %s moved PDS to %s", person, found.pds)
            self.changed.set()

    async def current(self, person: str) -> Identity | None:
        due = time.monotonic() - self.checked.get(person, -RECHECK) >= RECHECK
        if due or person not in self.identities:
            return await self.locate(person)
        return self.identities[person]

    # -- health ----------------------------------------------------------------------------

    def failed(self, person: str, problem: str, permanent: bool = False) -> None:
        # Every failure is reported: records read since the last one (a pass cut short by
        # the outage) cleared the stored outage, so this one must set it again. The app
        # logs once per outage.
        feed = f"{person}/bluesky"
        self.problems[feed] = problem
        self.sink.feed_failed(feed, problem, permanent)

    def ok(self, person: str) -> None:
        feed = f"{person}/bluesky"
        self.sink.feed_ok(feed)
        if self.problems.pop(feed, None) is not None:
            log.info("bluesky: reading %s again", feed)

    # -- polling ---------------------------------------------------------------------------

    async def poll_all(self) -> int:
        poller = Poller(self, self.resolver, self.builder)
        count = 0
        for person in self.people:
            who = await self.current(person)
            if who is None:
                continue
            try:
                count += await self._poll_person(poller, person, who)
            except PollError as exc:
                self.failed(person, exc.message, exc.permanent)
                continue
            self.ok(person)
        return count

    async def _poll_person(self, poller: Poller, person: str, who: Identity) -> int:
        """A move to another PDS looks, on the old one, like a deactivated or missing
        account: before calling it lost, look the identity up again and follow a move."""
        try:
            return await poller.poll(who)
        except PollError as exc:
            if not exc.permanent:
                raise
            moved = await self.locate(person)
            if moved is None or moved.pds == who.pds:
                raise
            return await poller.poll(moved)

    async def _poll_loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            self.wake.clear()
            await self.poll_all()
            wait = self.interval - (loop.time() - started)
            if wait > 0 and not self.wake.is_set():
                waiters = [asyncio.ensure_future(stop.wait()),
                           asyncio.ensure_future(self.wake.wait())]
                try:
                    await asyncio.wait(waiters, timeout=wait,
                                       return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()

    # -- the Sink, as the poller sees it (serialised with the stream) -----------------------

    async def event(self, event: Event, cursor: tuple[str, str] | None = None) -> None:
        async with self.ingest:
            await self.sink.event(event, cursor)

    def cursor(self, feed: str) -> str | None:
        return self.sink.cursor(feed)

    def save_cursor(self, feed: str, value: str) -> None:
        self.sink.save_cursor(feed, value)

    def unreadable(self, platform: str, item: str, problem: str, person: str | None = None,
                   link: str | None = None) -> None:
        self.sink.unreadable(platform, item, problem, person, link)

    # -- streaming ---------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        dids = {who.did for who in self.identities.values()}
        if not dids or self.section.stream == "off":
            return []
        if self.section.stream == "jetstream":
            return [Jetstream(self.section.jetstream, dids, self.apply, self.sink.cursor)]
        by_pds: dict[str, set[str]] = {}
        for who in self.identities.values():
            by_pds.setdefault(who.pds, set()).add(who.did)
        return [Firehose(pds, d, self.apply, self.sink.cursor) for pds, d in by_pds.items()]

    async def apply(self, changes: list[Change], position: tuple[str, str]) -> None:
        """Store a stream batch's events; the stream cursor moves with the last of them."""
        events: list[Event] = []
        for change in changes:
            event = await self._event_of(change)
            if event is not None:
                events.append(event)
        async with self.ingest:
            for index, event in enumerate(events):
                await self.sink.event(event, position if index == len(events) - 1 else None)
        if not events:
            self._save_now_and_then(position)

    def _save_now_and_then(self, position: tuple[str, str]) -> None:
        """Frames without events (strangers on a shared PDS) move the cursor every few
        seconds, not on every frame: a restart then replays only seconds of them."""
        now = time.monotonic()
        if now - self.saved_at.get(position[0], 0.0) >= SAVE_EVERY:
            self.saved_at[position[0]] = now
            self.sink.save_cursor(*position)

    async def _event_of(self, change: Change) -> Event | None:
        who = next((w for w in self.identities.values() if w.did == change.did), None)
        if who is None:
            return None
        if change.action in ("identity", "account"):
            # Re-read at the next poll; an account event (deactivated, taken down, back)
            # brings that poll forward: getRepoStatus there decides, for both paths alike.
            self.checked.pop(who.person, None)
            if change.action == "account":
                self.wake.set()
            return None
        wanted = (change.action == "create" and change.collection in LISTED) or (
            change.action == "update" and change.collection == POST) or (
            change.action in ("create", "update") and change.collection == PROFILE
            and change.rkey == "self")
        if not wanted or not isinstance(change.record, dict):
            return None  # deletes un-fire nothing; other collections are not watched
        try:
            return await self.builder.build(who, change.collection, change.rkey, change.cid,
                                            change.record, edited=change.action == "update")
        except MALFORMED as exc:  # one odd record must not stop the stream
            log.warning("skipped Bluesky record %s/%s: it could not be read (%s)",
                        change.collection, change.rkey, type(exc).__name__)
            self.unreadable(PLATFORM, f"{change.collection}/{change.rkey}",
                            unreadable_record(exc), who.person,
                            web_link(who.handle or who.did, change.collection, change.rkey))
            return None

    async def _stream_loop(self, stop: asyncio.Event) -> None:
        """Run the sources; rebuild them when the watched DIDs or their PDSes change."""
        while not stop.is_set():
            self.changed.clear()
            tasks = [asyncio.create_task(s.run(stop), name=f"bluesky-{s.name}")
                     for s in self.sources()]
            waiters = [asyncio.ensure_future(stop.wait()),
                       asyncio.ensure_future(self.changed.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in [*waiters, *tasks]:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    # -- the Connector protocol --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        stream = asyncio.create_task(self._stream_loop(stop), name="bluesky-stream")
        try:
            await self._poll_loop(stop)
        finally:
            await cancel_and_wait(stream)

    async def poll_once(self) -> int:
        return await self.poll_all()

    def channel(self) -> Channel | None:
        return None  # it only reads

    def web_routes(self) -> list[web.RouteDef]:
        return []

    async def close(self) -> None:
        await self.http.aclose()
        await self.resolver.aclose()
