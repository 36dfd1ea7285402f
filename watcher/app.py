"""Wiring: config, store, detectors, engine, connectors and playbooks in one asyncio loop.

The app is the connectors' Sink: events go to the engine (stored before the connector
may acknowledge them), contacts' responses to the responder, feed health to the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from connectors.base import Connector, ConnectorError
from connectors.files.replay import LineError, Position, ReplayFile
from detectors.codes import build_detectors
from playbooks.channels import AppriseChannel, ConsoleChannel
from playbooks.responses import Responder
from playbooks.runner import PlaybookRunner
from watcher.core import anchor, evidence
from watcher.core.channel import Channel
from watcher.core.clock import utcnow
from watcher.core.config import Config, parse_duration
from watcher.core.models import Event, Response
from watcher.core.rows import Mark
from watcher.core.store import ImageCache, Store, StoreError
from watcher.engine.engine import Engine
from watcher.engine.unchecked import CrashWatch, UncheckedNotices
from watcher.supervision import failsafe
from watcher.supervision.heartbeat import Heartbeat
from watcher.supervision.status import status_report
from watcher.supervision.supervisor import Supervisor

if TYPE_CHECKING:
    from watcher.web.server import WebServer

log = logging.getLogger("watcher.app")
RESTART_DELAY = 5.0
REPLAY_BATCH = 200


def unknown_person(config: Config, event: Event) -> str | None:
    if event.person in config.people:
        return None
    known = ", ".join(sorted(config.people)) or "none"
    return f'no person "{event.person}" in the config; known people: {known}'


def build_connectors(config: Config, shared_web: bool = False) -> list[Connector]:
    """The platform connectors the config asks for (imported only when configured)."""
    found: list[Connector] = []
    if config.connectors.telegram is not None:
        from connectors.telegram.connector import TelegramConnector

        found.append(TelegramConnector(config))
    if config.connectors.signal is not None:
        from connectors.signal.connector import SignalConnector

        found.append(SignalConnector(config))
    if config.connectors.bluesky is not None:
        from connectors.bluesky.connector import BlueskyConnector

        found.append(BlueskyConnector(config))
    if config.connectors.sms is not None:
        from connectors.sms.connector import SmsConnector

        # Its webhook goes on the contacts' page's listener when that runs, else its own.
        found.append(SmsConnector(config, serve=not shared_web))
    if config.connectors.email is not None:
        from connectors.email.connector import EmailConnector

        found.append(EmailConnector(config))
    return found


class App:
    def __init__(self, config: Config, database: Path | None = None,
                 stdout: TextIO | None = None, clock: Callable[[], datetime] = utcnow,
                 connectors: Sequence[Connector] | None = None, web: bool = True) -> None:
        self.config = config
        self.clock = clock
        self.store = Store(database or config.database)
        self.warnings: list[str] = []
        self._anchor(database or config.database)
        detectors, warnings = build_detectors(config, ImageCache(self.store))
        self.warnings.extend(warnings)
        self.engine = Engine(config, self.store, detectors, clock)
        shared_web = config.web is not None and web
        self.connectors = list(build_connectors(config, shared_web) if connectors is None
                               else connectors)
        self.channels: dict[str, Channel] = {
            "console": ConsoleChannel(config, stdout),
            "apprise": AppriseChannel(config, config.secrets),
        }
        for connector in self.connectors:
            channel = connector.channel()
            if channel is not None:
                self.channels[channel.name] = channel
        self.runner = PlaybookRunner(config, self.store, self.channels, clock)
        feeds = [f for c in self.connectors for f in c.feeds()]
        self.supervisor = Supervisor(config, self.store, clock, feeds)
        self.unchecked = UncheckedNotices(config, self.store, clock)
        self.crashes = CrashWatch(config, self.store, clock)
        self.responder = Responder(config, self.store, clock, status=self.status_text)
        self.heartbeat = Heartbeat(config)
        replay = config.connectors.replay
        files = replay.files if replay else []
        self.replay_files = [ReplayFile(config.resolve(f), config.people) for f in files]
        self.bad_lines: list[LineError] = []
        self._wake = asyncio.Event()
        self._db_failure: str | None = None
        # Feeds whose connector is starting: what it reports as fine then is not a read.
        self._starting: set[str] = set()
        self.probe_every = failsafe.PROBE_EVERY
        self.web: WebServer | None = None
        # i14-web: the contacts' page, in this loop; not for the short runs of `watcher
        # drill` and `watcher ack` (web=False), which must not take the page's port.
        if config.web is not None and web:
            from watcher.web.server import WebServer

            self.web = WebServer(config, self.store, self.supervisor, clock, self._wake.set)
            for connector in self.connectors:  # e.g. an SMS gateway's webhook
                self.web.add_routes(connector.web_routes())

    def _anchor(self, database: Path) -> None:
        """Anchor the evidence log outside the database (a broken key never stops the watch)."""
        key_path = self.config.resolve(self.config.watcher.evidence_key)
        anchors = anchor.anchor_path(database)
        if anchors.exists() and not key_path.exists():
            self.warnings.append(f"the evidence key {key_path} is missing but {anchors.name} "
                                 "exists: a new key is made, and the earlier anchors can no "
                                 "longer be checked (restore the old key to check them)")
        try:
            key = anchor.load_key(key_path, True)
        except (anchor.AnchorKeyError, OSError) as exc:
            self.warnings.append(f"the evidence log is not anchored: {exc}")
            return
        if key is not None:
            self.store.attach_anchor(evidence.Anchorer(anchors, key))

    # -- the Sink the connectors talk to ---------------------------------------------

    async def event(self, event: Event, cursor: tuple[str, str] | None = None) -> None:
        if unknown_person(self.config, event):
            return  # connectors only pass configured people; guard against a slip
        outcome = await self.engine.ingest(event, cursor)
        if outcome.incidents or outcome.matches:
            self._wake.set()  # an alert is due now: do not wait for the next tick

    def response(self, response: Response) -> str | None:
        reply = self.responder.handle(response)
        self._wake.set()  # an ack or stand-down may need announcing
        # The connector sends the answer where the response came from (`chat`, spelt as an
        # outbox address) or to the contact's address: the guard's word holds there too (a
        # contact group a watched person turned out to be in gets silence).
        guard = self.runner.guard
        if reply is not None and (
                guard.refuses_any(response.channel, response.contact)
                or (response.chat is not None
                    and guard.refusal(response.channel, response.contact, response.chat))):
            return None
        return reply

    def cursor(self, feed: str) -> str | None:
        return self.store.cursor(feed)

    def save_cursor(self, feed: str, value: str) -> None:
        with self.store.transaction():
            self.store.set_cursor(feed, value, self.clock())

    def unreadable(self, platform: str, item: str, problem: str, person: str | None = None,
                   link: str | None = None) -> None:
        """Recorded as an item that could not be checked, before the connector moves past
        it (a crash in between reads it again: recorded once, by its key)."""
        now = self.clock()
        event = Event(platform, person or "", "message", f"unreadable/{item}", now, link=link,
                      feed=f"{person}/{platform}" if person else platform)
        with self.store.transaction():
            self.store.add_unchecked(event, problem, now)
        self._wake.set()

    def feed_ok(self, feed: str) -> None:
        if feed in self._starting:
            return  # a check at (re)start is not a read: a restart is not a recovery
        with self.store.transaction():
            self.store.feed_ok(feed, self.clock())

    def place_seen(self, platform: str, place: str, person: str) -> None:
        with self.store.transaction():
            self.store.add_place(platform, place, person, self.clock())

    def feed_failed(self, feed: str, problem: str, permanent: bool = False) -> None:
        """Connectors report every failure; the store is the one truth of what is down (an
        event read in between clears it, so the next failure is a new outage). Logged once
        per outage, and again only when the problem changes."""
        if self.store.feed_failing(feed) != problem:
            log.warning("feed %s: %s%s", feed, problem,
                        " (needs attention)" if permanent else "")
        with self.store.transaction():
            self.store.feed_failed(feed, problem, self.clock(), permanent)

    # -- running ---------------------------------------------------------------------

    async def poll_replay(self) -> int:
        """Read every whole line added to the replay files since their stored cursors."""
        count = 0
        for source in self.replay_files:
            start = Position.decode(self.store.cursor(source.feed))
            batch: list[tuple[Event, tuple[str, str] | None]] = []
            for item, position in source.read(start):
                cursor = (source.feed, position.encode())
                if isinstance(item, LineError):
                    await self._flush(batch)
                    self.bad_lines.append(item)
                    log.error("skipped bad event line %s", item)
                    self.save_cursor(*cursor)
                    continue
                batch.append((item, cursor))
                count += 1
                if len(batch) >= REPLAY_BATCH:
                    await self._flush(batch)
            await self._flush(batch)
        return count

    async def _flush(self, batch: list[tuple[Event, tuple[str, str] | None]]) -> None:
        if batch:
            outcomes = await self.engine.ingest_batch(batch)
            batch.clear()
            if any(o.incidents or o.matches for o in outcomes):
                self._wake.set()

    async def _start(self, connector: Connector) -> bool:
        feeds = set(connector.feeds())
        self._starting |= feeds
        try:
            await connector.start(self)
        except ConnectorError as exc:
            for feed in connector.feeds() or [connector.name]:
                self.feed_failed(feed, exc.message, exc.permanent)
            return False
        finally:
            self._starting -= feeds
        return True

    async def _keep_running(self, connector: Connector, stop: asyncio.Event) -> None:
        """Start and run a connector until stopped; a failure is reported, then retried."""
        while not stop.is_set():
            try:
                if await self._start(connector):
                    await connector.run(stop)
            except ConnectorError as exc:
                for feed in connector.feeds() or [connector.name]:
                    self.feed_failed(feed, exc.message, exc.permanent)
            except StoreError as exc:  # nothing can be stored: stop taking events
                self._db_failure = str(exc)
                self._wake.set()
                return
            except Exception as exc:  # a connector bug must not end the watch of the others
                log.exception("connector %s crashed; restarting it", connector.name)
                # Until it is back, its feeds are not watched: that is a blind watch. (A
                # store that cannot take this is noticed by the main loop.)
                with contextlib.suppress(StoreError):
                    for feed in connector.feeds() or [connector.name]:
                        self.feed_failed(feed, f"the {connector.name} connector stopped on "
                                         f"an unexpected error ({type(exc).__name__}); "
                                         "restarting it")
                    # A restart is not a recovery: a loop of crashes is told as such.
                    if self.crashes.crashed(connector.name):
                        self._wake.set()
            if not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(RESTART_DELAY):  # not wait_for: see runner
                        await stop.wait()

    def status_text(self) -> str:
        return status_report(self.config, self.store, self.supervisor)

    async def settle(self) -> None:
        """Check deadlines, then run every step, notice and delivery that is due now."""
        self.engine.checkins.tick()
        while await self.runner.tick():
            pass

    async def supervise(self) -> None:
        """Blind watches, the digest, the heartbeat and retention (every tick, in run)."""
        self.supervisor.tick()
        self.store.anchor_tick()
        if self.unchecked.tick():
            self._wake.set()
        if self.supervisor.digest_due():
            self.supervisor.send_digest()
        await self.heartbeat.maybe_ping(self.clock(), healthy=not any(
            s.blind for s in self.supervisor.states()))
        purge_due = self.store.marked(Mark.RETENTION)
        now = self.clock()
        if purge_due is None or now - purge_due >= timedelta(days=1):
            keep = parse_duration(self.config.watcher.keep_seen)
            with self.store.transaction():
                removed = self.store.purge_seen(now - keep)
                self.store.mark(Mark.RETENTION, "", now)
            if removed:
                log.info("purged %d dedupe keys older than %s", removed,
                         self.config.watcher.keep_seen)

    async def run(self, once: bool = False, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        tick = parse_duration(self.config.watcher.tick).total_seconds()
        log.info("watching %d code(s) for %d person(s)", len(self.config.codes),
                 len(self.config.people))
        if once:
            for connector in self.connectors:
                if await self._start(connector):
                    await connector.poll_once()
            await self.poll_replay()
            await self.settle()
            log.info("stopped")
            return
        feeds_stop = asyncio.Event()
        tasks = self._run_connectors(feeds_stop)
        await self._start_web()
        try:
            while not stop.is_set():
                self._wake.clear()  # work arriving from here on wakes the sleep below
                try:
                    await self.poll_replay()
                    await self.supervise()
                    await self.settle()
                except StoreError as exc:
                    self._db_failure = str(exc)
                if self._db_failure is not None:
                    feeds_stop.set()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    if not await self._survive_db_failure(stop):
                        break
                    feeds_stop = asyncio.Event()
                    tasks = self._run_connectors(feeds_stop)
                await self._sleep(stop, tick)
        finally:
            feeds_stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.web is not None:
                await self.web.stop()
            await self.heartbeat.aclose()
        log.info("stopped")

    async def _start_web(self) -> None:
        """The page is how contacts without a chat answer; if it cannot start (the port is
        taken), the watch itself goes on and the reason is logged."""
        if self.web is None:
            return
        try:
            await self.web.start()
        except OSError as exc:
            log.error("the contacts' page could not start on %s: %s",
                      self.config.web.listen if self.config.web else "?",
                      exc.strerror or type(exc).__name__)

    def _run_connectors(self, stop: asyncio.Event) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._keep_running(c, stop), name=f"connector-{c.name}")
                for c in self.connectors]

    async def _survive_db_failure(self, stop: asyncio.Event) -> bool:
        """Stop taking events, say why to everyone, resume once the database is writable."""
        reason = self._db_failure or "unknown"
        log.critical("stopped taking events: %s", reason)
        await failsafe.tell_everyone(self.config, self.channels,
                                     failsafe.STOPPED.format(reason=reason), self.runner.guard)
        if not await failsafe.wait_until_writable(self.store, stop, self.clock,
                                                  self.probe_every):
            return False
        self._db_failure = None
        log.warning("the database can be written again: resuming")
        await failsafe.tell_everyone(self.config, self.channels, failsafe.RESUMED,
                                     self.runner.guard)
        return True

    async def _sleep(self, stop: asyncio.Event, tick: float) -> None:
        """Wait for the next tick, a step falling due sooner, new work, or the stop."""
        due = self.store.next_due()
        timeout = tick if due is None else \
            min(tick, max(0.0, (due - self.clock()).total_seconds()))
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def aclose(self) -> None:
        for connector in self.connectors:
            with contextlib.suppress(Exception):
                await connector.close()
        self.store.close()

    def close(self) -> None:
        self.store.close()
