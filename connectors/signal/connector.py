"""Signal, through signal-cli-rest-api (https://github.com/bbernhard/signal-cli-rest-api).

Watches the envelopes the service's account receives: a watched person's messages, photos,
reactions and edits become Events; a registered contact's replies and reactions become
Responses; everything else is dropped unread. Alerts go out as plain messages.

Nothing is lost across a crash: normal-mode receive acknowledges what it returns, so each
batch is written to the store (cursor ``signal/inbox``) before it is handled, and shrinks in
the same transaction as each event it yields. The journal holds the survivor's message text,
so once it is empty the store deletes it and scrubs the WAL of its earlier versions (a
cursor named ``*/inbox`` is a journal: watcher/core/store.py). json-rpc mode drops what
arrives while no websocket is open; every cut is reported as a possible gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from connectors.base import ConnectorError, Sink
from connectors.common import MALFORMED, UnreadImage, until_stopped, wait_or_stop
from connectors.signal.client import (
    SignalClient,
    SignalError,
    SignalNotFound,
    SignalTooLarge,
    SignalUnreachable,
)
from connectors.signal.send import SignalSending
from connectors.signal.translate import (
    PLATFORM,
    Directory,
    Draft,
    Reply,
    attachment_ids,
    contact_reply,
    person_draft,
    slim,
    stills,
)
from watcher.core.backoff import Backoff
from watcher.core.channel import Channel
from watcher.core.clock import Clock, utcnow
from watcher.core.config import Config, parse_duration
from watcher.core.config import SignalConnector as SignalSection
from watcher.core.models import DeliveryError, Event, ImageSource

log = logging.getLogger("watcher.signal")

GROUPS_FEED = "signal-contact-groups"  # a contact group with a watched person in it
INBOX = "signal/inbox"  # the journal holding a received batch until every item is handled
# Number-only contacts' uuids, learnt from their first message: kept, so that after a
# restart the same number under another uuid is still refused.
CONTACT_UUIDS = "signal/contact-uuids"
CLIENT_TIMEOUT = 20.0
MAX_BATCH = 100  # envelopes per receive: bounds what one crash could have to replay
ONCE_SECONDS = 2.0  # how long `watcher run --once` listens in json-rpc mode
# Reconnect at once after a cut or a single failure; then 1 s doubling to 30 s.
BACKOFF = Backoff(first=1.0, cap=30.0, free=1)
# json-rpc mode: how often the account itself is checked (GET /v1/devices). An open
# websocket says nothing about the account: once the phone unlinks this device the service
# may simply go quiet. Normal mode needs no check: every receive fails at once.
ACCOUNT_CHECK = 300.0


def lost_account(text: str) -> bool:
    """signal-cli's words for an account it can no longer use: unregistered ("User … is not
    registered."), or refused by Signal ("[401]/[403] Authorization failed!": the linked
    device was removed, or the number registered elsewhere)."""
    low = text.lower()
    return "not registered" in low or "authorization failed" in low


class SignalConnector:
    name = "signal"

    def __init__(self, config: Config, client: SignalClient | None = None,
                 clock: Clock = utcnow) -> None:
        section = config.connectors.signal
        if section is None:
            raise ValueError("no [connectors.signal] section in the config")
        self.config = config
        self.section: SignalSection = section
        self.url = section.url.rstrip("/")
        self.client = client or SignalClient(self.url, section.number, timeout=CLIENT_TIMEOUT)
        self.clock = clock
        self.directory = Directory.from_config(config, section.number)
        self.sending = SignalSending(self.client, self.directory, self.url)
        self.interval = parse_duration(section.poll_interval).total_seconds()
        self.max_bytes = min(config.watcher.max_image_bytes, section.max_attachment_bytes)
        self.mode = "normal"
        self._sink: Sink | None = None
        self._down = False  # a blind spot is being reported (log once down, once back)
        self._opened = False

    def feeds(self) -> list[str]:
        return [f"{key}/signal" for key, person in self.config.people.items() if person.signal]

    # -- starting ----------------------------------------------------------------------

    async def start(self, sink: Sink) -> None:
        self._sink = sink
        self.sending.report = sink.feed_failed
        self.sending.ok = sink.feed_ok
        try:
            saved = json.loads(sink.cursor(CONTACT_UUIDS) or "{}")
        except ValueError:
            saved = {}  # unreadable: learnt again, as on a first start
        self.directory.restore(saved if isinstance(saved, dict) else {})
        try:
            actual = await self.client.mode()
        except SignalError as exc:
            raise self._start_error(exc) from exc
        self.mode = "json-rpc" if actual == "json-rpc" else "normal"
        wanted = self.section.mode
        if wanted != "auto" and wanted != self.mode:
            raise ConnectorError(
                f"signal-cli-rest-api at {self.url} runs in {actual} mode but [connectors.signal] "
                f'mode = "{wanted}"; set mode = "auto" or start the service with '
                f"MODE={wanted} (docs/signal.md)", permanent=True)
        if not await self.client.health():
            raise ConnectorError(f"signal-cli-rest-api at {self.url} is not ready (health "
                                 "check failed); will retry")
        self._warn_unmatchable()
        await self._check_contact_groups(sink)
        if self.mode == "json-rpc":
            log.warning("Signal runs in json-rpc mode: messages that arrive while the watcher "
                        "is not connected are lost; normal mode keeps them (docs/signal.md)")

    def _start_error(self, exc: SignalError) -> ConnectorError:
        if exc.permanent:
            return self._fatal(exc)
        return ConnectorError(f"cannot reach signal-cli-rest-api at {self.url} ({exc.message});"
                              " is its container running? Will retry")

    def _fatal(self, exc: SignalError) -> ConnectorError:
        """A failure a person must fix, with what to do."""
        text = exc.message
        if lost_account(text):
            # The service's text names the number: not repeated (it would reach the logs).
            return ConnectorError(self._lost_account(text), permanent=True)
        if exc.status == 404:
            why = "this does not look like signal-cli-rest-api; check [connectors.signal] url"
        elif exc.status in (401, 403):
            why = ("the watcher was refused access (HTTP 401/403): whatever stands in front of "
                   "the service (a reverse proxy, an API key) no longer lets it in; nothing is "
                   "watched on Signal until that is fixed")
        elif " mode" in text:
            why = 'the service changed mode; set [connectors.signal] mode = "auto"'
        else:
            why = "see docs/signal.md"
        return ConnectorError(f"signal-cli-rest-api at {self.url}: {text}: {why}",
                              permanent=True)

    def _lost_account_of(self, text: str, _person: str) -> str:
        return self._lost_account(text)

    def _lost_account(self, text: str) -> str:
        """The account was unregistered, its linked device removed, or the number registered
        elsewhere: nothing can be read until a person links it again. (The number itself is
        not repeated: it would reach the logs.)"""
        how = ("Signal refused its login: the linked device was removed from the phone, or "
               "the number was registered on another device" if "authorization" in
               text.lower() else "it is not registered or linked on the service")
        return (f"the Signal account in [connectors.signal] number cannot be used ({how}): "
                "nothing is watched on Signal and no alert goes out there. What to do: link "
                f"the service again ({self.url}/v1/qrcodelink?device_name=watcher, then scan "
                "it in Signal on the phone: Settings, Linked devices) or register the number "
                "again; check [connectors.signal] number. Talk to the survivor safely first: "
                "whoever removed the device may have noticed it. A code sent before it is "
                "linked again may never reach the watcher")

    def _warn_unmatchable(self) -> None:
        for key, person in self.config.people.items():
            if person.signal and not person.signal.uuid:
                log.warning("people.%s.signal has no uuid: messages from %s are missed whenever "
                            "Signal hides their number; add the uuid (docs/signal.md)", key, key)

    async def _check_contact_groups(self, sink: Sink) -> None:
        """A contact group with a watched person in it would show them every alert: each one
        found is handed to the app as a place of theirs (the send guard refuses it) and
        reported, so that the contacts are told to fix it."""
        wanted = {c.signal.group: key for key, c in self.config.contacts.items()
                  if c.signal and c.signal.group}
        if not wanted:
            return
        try:
            groups = await self.client.groups()
        except SignalError as exc:
            log.warning("could not list the Signal groups to check the contact groups' "
                        "members (%s); alerts are still refused once a watched person is "
                        "seen in one", type(exc).__name__)
            return
        problems = []
        for group in groups:
            contact = wanted.get(str(group.get("id")))
            members = [*(group.get("members") or []), *(group.get("pending_invites") or [])]
            for member in members if contact else []:
                found = {"sourceUuid": str(member), "sourceNumber": str(member)}
                person = self.directory.person_of(found)
                if person is not None:
                    sink.place_seen(PLATFORM, str(group["id"]), person)
                    problems.append(f"contacts.{contact}.signal.group has watched person "
                                    f"{person} in it")
        if problems:
            sink.feed_failed(GROUPS_FEED, "; ".join(sorted(set(problems))) + ": no alert is "
                             "sent there; give those contacts a group without them, or "
                             "their own number (docs/signal.md)", True)
        else:
            sink.feed_ok(GROUPS_FEED)

    def _need_sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("SignalConnector.start() has not been called")
        return self._sink

    # -- health --------------------------------------------------------------------------

    def _went_down(self, problem: Callable[[str], str], permanent: bool = False) -> None:
        """Report a blind spot on every failure (the app logs it once per outage): events
        read since the last report cleared it, so a new failure is a new outage."""
        self._down = True
        sink = self._need_sink()
        for feed in self.feeds():
            sink.feed_failed(feed, problem(feed.partition("/")[0]), permanent)

    def _all_ok(self) -> None:
        sink = self._need_sink()
        for feed in self.feeds():
            sink.feed_ok(feed)
        if self._down:
            self._down = False
            log.info("Signal: receiving again from %s", self.url)

    def _clock(self, person: str) -> str:
        zone = self.config.person_zone(person)
        return f"{self.clock().astimezone(zone):%H:%M} ({zone.key})"

    # -- handling what arrives ------------------------------------------------------------

    def _reply_of(self, envelope: dict[str, Any]) -> Reply | None:
        if self.directory.own_person is not None:
            return None  # the survivor's own account: contacts talk to *them*, not to us
        return contact_reply(self.directory, self.config, envelope)

    def _relevant(self, envelope: dict[str, Any]) -> bool:
        return (self.directory.person_of(envelope) is not None
                or self._reply_of(envelope) is not None)

    def _journal(self) -> list[dict[str, Any]]:
        stored = json.loads(self._need_sink().cursor(INBOX) or "[]")
        return [i for i in stored if isinstance(i, dict)] if isinstance(stored, list) else []

    async def _handle_batch(self, items: list[dict[str, Any]]) -> int:
        """Journal the batch, then handle it item by item; return the events stored."""
        envelopes = [_dict(i.get("envelope")) for i in items if isinstance(i, dict)]
        kept = []
        for envelope in envelopes:
            try:
                if self._relevant(envelope):
                    kept.append({"envelope": slim(envelope)})
            except MALFORMED as exc:
                log.warning("skipped a Signal envelope that could not be read (%s)",
                            type(exc).__name__)
                self._unreadable(envelope, exc)
        if kept:
            self._need_sink().save_cursor(INBOX, json.dumps(kept))
        count = await self._drain(kept)
        # Strangers' attachments are never looked at; do not leave them on the disk.
        await self._delete([a for e in envelopes if not self._relevant(e)
                            for a in attachment_ids(e)])
        return count

    async def _drain(self, items: list[dict[str, Any]]) -> int:
        count = 0
        for index, item in enumerate(items):
            rest = (INBOX, json.dumps(items[index + 1:]))
            try:
                count += await self._handle(_dict(item.get("envelope")), rest)
            except MALFORMED as exc:
                # One envelope we cannot read must not stop the watch: logged by its type
                # (never its content), skipped, and the next one is read.
                log.warning("skipped a Signal envelope that could not be read (%s)",
                            type(exc).__name__)
                self._unreadable(_dict(item.get("envelope")), exc)
                self._need_sink().save_cursor(*rest)
        return count

    def _unreadable(self, envelope: Mapping[str, Any], exc: Exception) -> None:
        """Told to the contacts as "could not be checked" (by its time, never its content)."""
        stamp = envelope.get("timestamp")
        item = f"envelope {stamp}" if isinstance(stamp, int) else "an envelope"
        self._need_sink().unreadable(
            "signal", item, f"the envelope could not be read ({type(exc).__name__})")

    async def _handle(self, envelope: dict[str, Any], rest: tuple[str, str]) -> int:
        sink = self._need_sink()
        person = self.directory.person_of(envelope)
        draft = person_draft(self.directory, person, envelope) if person else None
        if draft is not None:
            await sink.event(await self._with_images(draft), rest)
        else:
            sink.save_cursor(*rest)
            if person is None and (reply := self._reply_of(envelope)) is not None:
                await self._respond(reply)
        await self._delete(attachment_ids(envelope))  # only now: the event is stored
        return 0 if draft is None else 1

    async def _with_images(self, draft: Draft) -> Event:
        images: list[ImageSource] = []
        for attachment in draft.attachments:
            try:
                data = await self.client.attachment(attachment.id, self.max_bytes)
                images.extend(stills(attachment, data, self.max_bytes))  # i16-frames
            except SignalTooLarge:
                images.append(UnreadImage(attachment.id, f"over {self.max_bytes} bytes", True))
            except SignalNotFound:
                images.append(UnreadImage(attachment.id, "no longer on the service", False))
        return replace(draft.event, images=tuple(images))

    async def _delete(self, ids: list[str]) -> None:
        for attachment_id in ids:
            try:
                await self.client.delete_attachment(attachment_id)
            except (SignalError, ValueError) as exc:
                log.warning("could not delete Signal attachment %s: %s", attachment_id, exc)

    async def _respond(self, reply: Reply) -> None:
        learnt = json.dumps(self.directory.learnt(), sort_keys=True)
        if learnt != (self._need_sink().cursor(CONTACT_UUIDS) or "{}"):
            self._need_sink().save_cursor(CONTACT_UUIDS, learnt)
        answer = self._need_sink().response(reply.response)
        if not answer:
            return
        try:
            await self.sending.send(reply.address, answer)
        except DeliveryError as exc:
            log.warning("could not answer contact %s on Signal: %s", reply.response.contact,
                        exc.message)

    # -- normal (and native) mode: long-polling --------------------------------------------

    async def _poll(self, timeout: int) -> int:
        count = await self._drain(self._journal())  # what a crash left half-handled
        items = await self.client.receive(timeout=timeout, max_messages=MAX_BATCH)
        count += await self._handle_batch(items)
        self._all_ok()
        return count

    async def _run_polling(self, stop: asyncio.Event) -> None:
        failures = 0
        timeout = max(1, math.ceil(self.interval))
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            started = loop.time()
            try:
                # Never cancelled by `stop`: the service acknowledges what a receive takes,
                # so abandoning one mid-way could lose messages. It ends within `timeout`.
                count = await self._poll(timeout)
            except SignalError as exc:
                if exc.permanent:
                    raise self._fatal(exc) from exc
                failures += 1
                self._went_down(self._unreachable(exc))
                await wait_or_stop(stop, max(1.0, BACKOFF.delay(failures)))
                continue
            failures = 0
            if count == 0:
                await wait_or_stop(stop, self.interval - (loop.time() - started))

    def _unreachable(self, exc: SignalError) -> Callable[[str], str]:
        if "timed out" in exc.message:
            # The service may have completed (and so acknowledged) a receive we gave up on.
            text = (f"a receive from signal-cli-rest-api at {self.url} timed out; messages it "
                    "returned after we stopped waiting may be lost. What to do: check that "
                    "the service is not overloaded; ask the survivor's contacts to check "
                    "recent messages by hand")
        else:
            text = (f"cannot receive from signal-cli-rest-api at {self.url} ({exc.message}); "
                    "retrying. Nothing is lost in normal mode: it is read once the service "
                    "is back")
        return lambda _person: text

    # -- json-rpc mode: one websocket ------------------------------------------------------

    def _on_open(self) -> None:
        self._opened = True
        self._all_ok()

    async def _consume(self, counter: list[int]) -> None:
        counter[0] += await self._drain(self._journal())
        stream: AsyncIterator[dict[str, Any]] = self.client.stream(on_open=self._on_open)
        async for item in stream:
            counter[0] += await self._handle_batch([item])
        raise SignalUnreachable("stream: ended")

    def _gap(self, exc: SignalError) -> None:
        was_open = self._opened
        self._went_down(lambda person: (
            (f"the Signal websocket was cut at {self._clock(person)}" if was_open else
             f"cannot open the Signal websocket ({self._clock(person)})") +
            f" ({exc.message}); messages sent while it was down may be lost (json-rpc mode "
            "keeps nothing for an absent reader). Check the person's messages from that time "
            "by other means; normal mode avoids this (docs/signal.md)"))

    async def _watch_account(self, stop: asyncio.Event) -> None:
        lost = False
        while not stop.is_set():
            await wait_or_stop(stop, ACCOUNT_CHECK)
            if stop.is_set():
                return
            try:
                await self.client.devices()
            except SignalError as exc:
                if lost_account(exc.message):
                    lost = True
                    self._went_down(functools.partial(self._lost_account_of, exc.message),
                                    permanent=True)
                continue  # anything else: the websocket reports its own troubles
            if lost:
                lost = False
                self._all_ok()

    async def _run_stream(self, stop: asyncio.Event) -> None:
        checker = asyncio.create_task(self._watch_account(stop), name="signal-account")
        try:
            await self._stream_loop(stop)
        finally:
            checker.cancel()
            await asyncio.gather(checker, return_exceptions=True)

    async def _stream_loop(self, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            self._opened = False
            try:
                if await until_stopped(self._consume([0]), stop):
                    return
            except SignalError as exc:
                if exc.permanent:
                    raise self._fatal(exc) from exc
                failures = 0 if self._opened else failures + 1
                self._gap(exc)
            await wait_or_stop(stop, BACKOFF.delay(failures))

    # -- the Connector protocol ------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        if self.mode == "json-rpc":
            await self._run_stream(stop)
        else:
            await self._run_polling(stop)

    async def poll_once(self) -> int:
        counter = [0]
        try:
            if self.mode != "json-rpc":
                return await self._poll(1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ONCE_SECONDS):
                    await self._consume(counter)
        except SignalError as exc:
            if exc.permanent:
                message = self._fatal(exc).message
                self._went_down(lambda _person: message, permanent=True)
            elif self.mode == "json-rpc":
                self._gap(exc)
            else:
                self._went_down(self._unreachable(exc))
        return counter[0]

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        return await self.sending.send(address, text)

    def channel(self) -> Channel | None:
        return self  # it delivers alerts too (send, below)

    def web_routes(self) -> list[web.RouteDef]:
        return []

    async def close(self) -> None:
        await self.client.aclose()




def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
