"""E-mail: an IMAP mailbox read without changing it (docs/email.md).

One task per watched folder: connect, EXAMINE, catch up from the cursor, then wait in IDLE
(or sleep) at most `poll_interval` and catch up again, whatever woke it. IDLE only makes
it quicker; the catch-up from the cursor is what makes it complete, so a lost IDLE
notice, a dropped connection or a server restart costs time, never a mail.

The cursor of a folder (`email:<folder>`) is UIDVALIDITY, the last UID read, the latest
INTERNALDATE read and the baseline's floor; it is committed with each event. When the
UIDVALIDITY changes, the old UIDs mean nothing: the mails that arrived from (latest read
INTERNALDATE - REBASE_MARGIN) on, and after the floor, are read again; the ones already
handled have the same event id (from their headers, not their UID) and the store drops
them, so old mail does not fire and new mail is not missed.
"""

from __future__ import annotations

import asyncio
import functools
import imaplib
import logging
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web

from connectors.base import ConnectorError, Sink
from connectors.common import wait_or_stop
from connectors.email import translate
from connectors.email.client import AuthFailed, Fetched, Folder, FolderMissing, ImapReader
from watcher.core.backoff import Backoff
from watcher.core.channel import Channel
from watcher.core.clock import Clock, utcnow
from watcher.core.config import Config, parse_duration

log = logging.getLogger("watcher.email")
T = TypeVar("T")

IDLE_MAX = 25 * 60.0  # RFC 2177: re-issue IDLE before the server's 30-minute limit
REBASE_MARGIN = timedelta(hours=1)
RETRY_FIRST = 0.5
AUTH_PROBLEM = "the mailbox refused the password: check connectors.email.password"
TLS_PROBLEM = ("the mail server's certificate is not trusted or does not match its name: "
               "check connectors.email.host and ca_file")
UNREACHABLE = ("the mail server is unreachable ({kind}): check that it is up and that "
               "connectors.email.host and port are right; retrying")


class FolderError(ConnectorError):
    """One folder cannot be read; the others still can (and are)."""


@dataclass(frozen=True)
class Cursor:
    validity: int
    last_uid: int
    last_time: int  # epoch seconds, the latest INTERNALDATE handled
    floor: int  # epoch seconds: mail at or before this was in the folder at the baseline

    def encode(self) -> str:
        return f"{self.validity}:{self.last_uid}:{self.last_time}:{self.floor}"

    @staticmethod
    def decode(value: str | None) -> Cursor | None:
        try:
            parts = [int(p) for p in (value or "").split(":")]
            return Cursor(*parts) if len(parts) == 4 else None
        except ValueError:
            return None


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


class EmailConnector:
    name = "email"

    def __init__(self, config: Config, open_reader: Callable[[], ImapReader] | None = None,
                 clock: Clock = utcnow) -> None:
        section = config.connectors.email
        if section is None:
            raise ValueError("no [connectors.email] section in the config")
        self.config = config
        self.section = section
        self.port = section.port or (993 if section.tls == "tls" else 143)
        self.password = config.secrets.get("connectors.email.password", "")
        self.ca_file = str(config.resolve(section.ca_file)) if section.ca_file else None
        self.interval = parse_duration(section.poll_interval).total_seconds()
        self.clock = clock
        # The IMAP client (imaplib, in a worker thread): one session per folder, opened again
        # after a failure; a test may hand in its own way to open one.
        self._open_reader = open_reader or self._connect
        self.owners: dict[str, str] = {}  # lower-cased address -> person key
        self.require: dict[str, bool] = {}
        for key, person in config.people.items():
            if person.email is None:
                continue
            for address in person.email.addresses:
                self.owners.setdefault(address.strip().lower(), key)
            wanted = person.email.require_auth
            self.require[key] = section.require_auth if wanted is None else wanted
        # Its own threads: an IDLE wait holds one for up to poll_interval, and must not take
        # the loop's shared ones from other connectors.
        self.pool = ThreadPoolExecutor(max_workers=len(section.folders) + 1,
                                       thread_name_prefix="imap")
        self.readers: set[ImapReader] = set()
        self.failing: dict[str, str] = {}  # folder -> problem
        self.sent: list[str] = []  # every command any session sent (the allow-list test)
        self._sink: Sink | None = None

    def feeds(self) -> list[str]:
        return [f"{person}/email" for person in sorted(set(self.owners.values()))]

    @property
    def sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("EmailConnector.start() has not been called")
        return self._sink

    # -- sessions --------------------------------------------------------------------

    def _connect(self) -> ImapReader:
        return ImapReader(self.section.host, self.port, self.section.tls,
                          self.section.username, self.password, self.ca_file)

    def _open(self) -> ImapReader:
        reader = self._open_reader()
        self.readers.add(reader)
        return reader

    def _close(self, reader: ImapReader) -> None:
        self.readers.discard(reader)
        self.sent.extend(reader.sent)
        reader.logout()

    async def _call(self, work: Callable[..., T], *args: Any) -> T:
        """A blocking IMAP call in a thread, its failures sorted (ConnectorError)."""
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.pool, functools.partial(work, *args))
        except FolderMissing as exc:
            raise FolderError(f"the folder {exc} does not exist in the mailbox: check "
                              "connectors.email.folders", permanent=True) from None
        except AuthFailed:
            raise ConnectorError(AUTH_PROBLEM, permanent=True) from None
        except ssl.SSLCertVerificationError:
            raise ConnectorError(TLS_PROBLEM, permanent=True) from None
        except (OSError, EOFError, imaplib.IMAP4.error) as exc:
            raise ConnectorError(UNREACHABLE.format(kind=type(exc).__name__)) from None

    async def _quietly(self, work: Callable[..., None], *args: Any) -> None:
        await asyncio.get_running_loop().run_in_executor(self.pool, functools.partial(work, *args))

    # -- the Connector protocol ------------------------------------------------------

    async def start(self, sink: Sink) -> None:
        """Log in and set the baseline of each folder (nothing already there fires)."""
        self._sink = sink
        reader: ImapReader = await self._call(self._open)
        try:
            for folder in self.section.folders:
                try:
                    await self._catch_up(reader, folder)
                except FolderError as exc:  # a blind spot, not a reason to watch nothing
                    self._report(folder, exc)
        finally:
            await self._quietly(self._close, reader)

    async def poll_once(self) -> int:
        count = 0
        reader: ImapReader = await self._call(self._open)
        try:
            for folder in self.section.folders:
                try:
                    count += await self._catch_up(reader, folder)
                    self._report(folder, None)
                except FolderError as exc:
                    self._report(folder, exc)
        finally:
            await self._quietly(self._close, reader)
        return count

    async def run(self, stop: asyncio.Event) -> None:
        async def stopper() -> None:
            await stop.wait()
            for reader in list(self.readers):
                reader.abort()  # ends an IDLE wait in its thread at once

        watch = [asyncio.ensure_future(self._watch(f, stop)) for f in self.section.folders]
        ender = asyncio.ensure_future(stopper())
        try:
            await asyncio.gather(*watch)
        finally:
            ender.cancel()
            for task in watch:
                task.cancel()

    def channel(self) -> Channel | None:
        return None  # it only reads

    def web_routes(self) -> list[web.RouteDef]:
        return []

    async def close(self) -> None:
        for reader in list(self.readers):
            reader.abort()
        self.readers.clear()
        self.pool.shutdown(wait=False)

    # -- one folder ------------------------------------------------------------------

    async def _watch(self, folder: str, stop: asyncio.Event) -> None:
        backoff = Backoff(first=RETRY_FIRST, cap=self.interval)
        while not stop.is_set():
            reader: ImapReader | None = None
            try:
                reader = await self._call(self._open)
                while not stop.is_set():
                    await self._catch_up(reader, folder)
                    self._report(folder, None)
                    backoff.reset()
                    if self.section.idle and reader.can_idle:
                        await self._call(reader.idle, min(self.interval, IDLE_MAX))
                    else:
                        await wait_or_stop(stop, self.interval)
            except ConnectorError as exc:
                if stop.is_set():
                    return
                self._report(folder, exc)
                retry = backoff.failed()
                await wait_or_stop(stop, self.interval if exc.permanent else retry)
            finally:
                if reader is not None:
                    await self._quietly(self._close, reader)

    def _report(self, folder: str | None, failure: ConnectorError | None) -> None:
        """Health of every person's feed: blind while any folder cannot be read."""
        if folder is not None and failure is not None:
            if self.failing.get(folder) != failure.message:
                log.warning("email: %s: %s", folder, failure.message)
            self.failing[folder] = failure.message
            for feed in self.feeds():
                self.sink.feed_failed(feed, failure.message, failure.permanent)
            return
        if folder is not None and self.failing.pop(folder, None) is not None:
            log.info("email: %s: reading again", folder)
        if not self.failing:
            for feed in self.feeds():
                self.sink.feed_ok(feed)

    async def _catch_up(self, reader: ImapReader, folder: str) -> int:
        """Read every mail after the cursor; returns how many were a watched person's."""
        feed = f"email:{folder}"
        state = await self._call(reader.examine, folder)
        cursor = Cursor.decode(self.sink.cursor(feed))
        if cursor is None:
            uids: list[int] = await self._call(reader.uids_after, 0)
            # The floor: mail at or before it was already there (never fired, even when
            # a rebuilt mailbox is re-read by arrival time). An empty folder has none.
            newest, floor = _epoch(self.clock()), 0
            if uids:
                last: Fetched = await self._call(reader.headers, uids[-1])
                newest = floor = _epoch(last.at)
            top = max([state.next_uid - 1, *uids])
            self.sink.save_cursor(feed, Cursor(state.validity, top, newest, floor).encode())
            log.info("email: %s: watching from now on (%d mails already there are not read)",
                     folder, len(uids))
            return 0
        if cursor.validity != state.validity:
            return await self._rebase(reader, folder, cursor, state)
        count = 0
        for uid in await self._call(reader.uids_after, cursor.last_uid):
            cursor, fired = await self._one(reader, folder, cursor, uid)
            count += fired
        return count

    async def _rebase(self, reader: ImapReader, folder: str, old: Cursor, state: Folder) -> int:
        """The UIDVALIDITY changed: re-read by arrival time; the store drops the known.

        Until the end the cursor keeps the old UIDVALIDITY, so a crash half-way re-reads
        the same mails again (deduped) instead of trusting half-done UIDs."""
        since = max(old.last_time - int(REBASE_MARGIN.total_seconds()), old.floor)
        day = datetime.fromtimestamp(since, UTC) - timedelta(days=1)  # SEARCH is by day
        uids: list[int] = await self._call(reader.uids_since, day)
        log.warning("email: %s: the mailbox was rebuilt (UIDVALIDITY changed): re-reading "
                    "%d mails by arrival time", folder, len(uids))
        cursor = old
        count = 0
        for uid in uids:
            cursor, fired = await self._one(reader, folder, cursor, uid,
                                            after=since, floor=old.floor)
            count += fired
        # UIDs from the EXAMINE on are after this: a mail arriving now is read next time.
        done = replace(cursor, validity=state.validity,
                       last_uid=max([state.next_uid - 1, *uids]))
        self.sink.save_cursor(f"email:{folder}", done.encode())
        return count

    async def _one(self, reader: ImapReader, folder: str, cursor: Cursor, uid: int,
                   after: int | None = None, floor: int | None = None) -> tuple[Cursor, int]:
        """Hand one mail to the sink (if it is a watched person's); the cursor moves past it
        in the same transaction."""
        feed = f"email:{folder}"
        try:
            head: Fetched = await self._call(reader.headers, uid)
        except LookupError:  # expunged between SEARCH and FETCH
            head = Fetched(uid, datetime.fromtimestamp(cursor.last_time, UTC), 0, b"")
        at = _epoch(head.at)
        moved = replace(cursor, last_uid=max(cursor.last_uid, uid),
                        last_time=max(cursor.last_time, at))
        skip_old = after is not None and (at < after or (floor is not None and at <= floor))
        person, sender = self._owner(head.data)
        if person is None or skip_old or not head.data:
            self.sink.save_cursor(feed, moved.encode())
            return moved, 0
        if self.require.get(person) and not translate.authenticated(
                translate.parse(head.data), self.section.authserv_id or "", sender):
            log.warning("email: %s: a mail claimed to be from %s's address without a pass "
                        "from %s: not matched", folder, person, "the configured authserv_id")
            self.sink.save_cursor(feed, moved.encode())
            return moved, 0
        cap = self.section.max_message_bytes
        try:
            body: Fetched = await self._call(reader.message, uid, cap)
        except LookupError:
            self.sink.save_cursor(feed, moved.encode())
            return moved, 0
        event = translate.to_event(body.data, person=person, at=head.at,
                                   truncated=head.size > cap,
                                   max_image_bytes=self.config.watcher.max_image_bytes,
                                   sender=sender)
        await self.sink.event(event, (feed, moved.encode()))
        return moved, 1

    def _owner(self, headers: bytes) -> tuple[str | None, str]:
        for address in translate.senders(translate.parse(headers)):
            if address in self.owners:
                return self.owners[address], address
        return None, ""

