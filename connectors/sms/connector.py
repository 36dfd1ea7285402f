"""SMS, through SMS Gateway for Android on a contact's phone (docs/sms.md).

Texts arrive as signed `sms:received` webhooks (connectors/sms/webhook.py), each committed
through the Sink before the phone is answered 200. A gap (the watcher down, a webhook given
up on) is filled from the phone's own inbox (GET /inbox) at start and every poll_interval,
over the last FILL_MARGIN, which covers the app's whole retry schedule (about 45.5 hours):
the text's key makes the webhook and inbox copies one event. The phone's health endpoint is
checked every health_interval; a phone that has not answered for `stale_after` is a blind
watch. Contacts' replies from their configured numbers are acks; everyone else: silence.

The webhook is served on the contacts' page's listener when `[web]` is configured (the app
mounts `web_routes()` there and builds the connector with serve=False), else on the
connector's own small listener (`listen`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from aiohttp import web

from connectors.base import ConnectorError, Sink
from connectors.common import wait_or_stop
from connectors.sms.client import GatewayClient, GatewayError
from connectors.sms.send import SmsSending
from connectors.sms.translate import (
    PLATFORM,
    Directory,
    NotAText,
    Text,
    event_of,
    from_inbox,
    response_of,
)
from connectors.sms.webhook import WebhookHandler
from watcher.core.channel import Channel
from watcher.core.clock import utcnow
from watcher.core.config_schema import Config, parse_duration
from watcher.core.config_schema import SmsConnector as SmsSection
from watcher.core.models import DeliveryError, parse_time

log = logging.getLogger("watcher.sms")

CURSOR = "sms/inbox"  # the latest text time seen (ISO); the gap fill reads back from it
ANSWERED = "sms/answered"  # keys of contacts' replies already acted on, with their times
LAST_REPORT = "sms/last-report"  # when the phone last answered its health check
FILL_MARGIN = timedelta(hours=48)  # > the app's ~45.5 h of webhook retries
CLOCK_SKEW = timedelta(minutes=5)  # the phone's clock may run ahead of ours


def _duration_words(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"


def _recent(when: str, now: datetime) -> bool:
    try:
        return now - parse_time(when) <= FILL_MARGIN + CLOCK_SKEW
    except ValueError:
        return False


class SmsConnector:
    name = PLATFORM

    def __init__(self, config: Config, client: GatewayClient | None = None,
                 clock: Callable[[], datetime] = utcnow, serve: bool = True) -> None:
        section = config.connectors.sms
        if section is None:
            raise ValueError("no [connectors.sms] section in the config")
        self.config = config
        self.section: SmsSection = section
        self.clock = clock
        self.serve = serve  # False once the routes are mounted on the shared web server
        self.client = client or GatewayClient(
            section.url, section.username, config.secrets.get("connectors.sms.password", ""))
        self.directory = Directory.from_config(config)
        self.sending = SmsSending(self.client, self.directory, section.region)
        self.handler = WebhookHandler(config.secrets.get("connectors.sms.signing_key", ""),
                                      self._webhook_text)
        self.poll_interval = parse_duration(section.poll_interval).total_seconds()
        self.health_interval = parse_duration(section.health_interval).total_seconds()
        self.stale_after = parse_duration(section.stale_after)
        self._sink: Sink | None = None
        self._lock = asyncio.Lock()  # one text at a time: webhook and gap fill may overlap
        self._runner: web.AppRunner | None = None
        self._started_at: datetime | None = None
        self.port: int | None = None

    def feeds(self) -> list[str]:
        return [f"{key}/{PLATFORM}" for key, person in self.config.people.items() if person.sms]

    def web_routes(self) -> list[web.RouteDef]:
        return [web.post(self.section.webhook_path, self._handle)]

    async def _handle(self, request: web.Request) -> web.Response:
        return await self.handler(request)

    # -- starting and stopping ---------------------------------------------------------

    async def start(self, sink: Sink) -> None:
        self._sink = sink
        if self._started_at is None:
            self._started_at = self.clock()
        if sink.cursor(CURSOR) is None:
            # The watch begins now: texts from before it are not the watch's (no alarm for
            # a code used last week); from here on nothing is missed.
            sink.save_cursor(CURSOR, self.clock().isoformat())
        if self.serve and self._runner is None:
            await self._listen()
        if self.section.webhook_url:
            try:
                await self.client.ensure_webhook(self.section.webhook_url)
            except GatewayError as exc:
                log.warning("could not register the SMS webhook on the phone (%s); register "
                            "it in the app by hand (docs/sms.md)", exc.message)

    async def _listen(self) -> None:
        host, _, port = self.section.listen.rpartition(":")
        app = web.Application(client_max_size=1024 * 1024)
        app.add_routes(self.web_routes())
        runner = web.AppRunner(app, access_log=None)  # an access log would hold the path
        await runner.setup()
        try:
            site = web.TCPSite(runner, host or "127.0.0.1", int(port))
            await site.start()
        except (OSError, ValueError) as exc:
            await runner.cleanup()
            raise ConnectorError(f"cannot listen for SMS webhooks on {self.section.listen} "
                                 f"({type(exc).__name__}): is another program using that port? "
                                 "Check [connectors.sms] listen", permanent=True) from exc
        self._runner = runner
        addresses = runner.addresses
        self.port = int(addresses[0][1]) if addresses else None

    def channel(self) -> Channel | None:
        return self  # it delivers alerts too (send, below)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.client.aclose()

    def _need_sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("SmsConnector.start() has not been called")
        return self._sink

    # -- running -----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_fill = next_health = loop.time()
        while not stop.is_set():
            now = loop.time()
            if now >= next_health:
                await self.check_health()
                next_health = now + self.health_interval
            if now >= next_fill:
                await self._fill_reporting()
                next_fill = now + self.poll_interval
            await wait_or_stop(stop, min(next_fill, next_health) - loop.time())

    async def poll_once(self) -> int:
        await self.check_health()
        return await self._fill_reporting()

    # -- supervision -------------------------------------------------------------------

    def _phone(self) -> str:
        owner = self.config.contacts.get(self.section.owner or "")
        return f"{owner.name}'s phone" if owner else "The SMS gateway phone"

    def _report(self, problem: str, permanent: bool) -> None:
        sink = self._need_sink()
        for feed in self.feeds():
            sink.feed_failed(feed, problem, permanent)

    async def check_health(self) -> None:
        sink = self._need_sink()
        now = self.clock()
        try:
            status = await self.client.health()
        except GatewayError as exc:
            last = sink.cursor(LAST_REPORT)
            since = parse_time(last) if last else (self._started_at or now)
            if now - since >= self.stale_after:
                self._report(f"{self._phone()} has not reported for "
                             f"{_duration_words(self.stale_after)}: is the SMS Gateway app "
                             "running? What to do: check that the phone is on, online and on "
                             "the same network, and that the app's local server is started "
                             f"(docs/sms.md). Last error: {exc.message}", permanent=True)
            else:
                # Not blind yet: the app keeps every text and retries its webhooks for
                # about 45 hours, so a phone briefly out of reach loses nothing.
                for feed in self.feeds():
                    sink.feed_ok(feed)
            return
        sink.save_cursor(LAST_REPORT, now.isoformat())
        if status == "fail":
            self._report(f"{self._phone()} reports a failure (a battery below 10 %, no "
                         "connection or failed messages): charge it and check the SMS "
                         "Gateway app", permanent=False)
            return
        for feed in self.feeds():
            sink.feed_ok(feed)

    # -- texts -------------------------------------------------------------------------

    async def _webhook_text(self, text: Text) -> None:
        await self._take(text)

    async def _fill_reporting(self) -> int:
        try:
            return await self.fill()
        except GatewayError as exc:
            if exc.permanent:
                self._report(f"the SMS gateway at {self.section.url} refused the watcher "
                             "(check [connectors.sms] username and password against the "
                             "app's Local Server screen): texts that missed their webhook "
                             "cannot be read back", permanent=True)
            else:
                log.warning("SMS gap fill failed (%s); retried next poll", exc.message)
            return 0

    async def fill(self) -> int:
        """Read back the phone's inbox since the cursor (less FILL_MARGIN): texts whose
        webhook never reached us are handled now. Returns the texts of watched people read."""
        sink = self._need_sink()
        now = self.clock()
        stored = sink.cursor(CURSOR)
        # min(): a text stamped in the future (a phone with a wrong clock) must not move
        # the window past now.
        since = min(parse_time(stored) if stored else now, now) - FILL_MARGIN
        until = now + CLOCK_SKEW
        try:
            await self.client.refresh(since, until)  # texts the app itself never saw
        except GatewayError as exc:
            if exc.permanent:
                raise
            log.warning("SMS inbox refresh failed (%s); reading the inbox as it is",
                        exc.message)
        rows = await self.client.inbox(since, until)
        texts: list[Text] = []
        for row in rows:
            try:
                text = from_inbox(row)
            except NotAText as exc:
                log.warning("skipped an SMS inbox row that could not be read (%s)", exc)
                continue
            if text is not None:
                texts.append(text)
        count = 0
        for text in sorted(texts, key=lambda t: t.at):  # oldest first: the cursor moves up
            count += await self._take(text)
        return count

    async def _take(self, text: Text) -> int:
        """Handle one text, durably; 1 when it was a watched person's."""
        async with self._lock:
            sink = self._need_sink()
            person = self.directory.person_of(text.sender)
            if person is not None:
                await sink.event(event_of(text, person), (CURSOR, self._cursor_past(text)))
                return 1
            contact = self.directory.contact_of(text.sender)
            if contact is not None:
                await self._answer(text, contact)
            return 0  # a stranger's text: neither stored nor answered

    def _cursor_past(self, text: Text) -> str:
        stored = self._need_sink().cursor(CURSOR)
        if stored and parse_time(stored) >= text.at:
            return stored  # out of order: an earlier text never moves the cursor back
        return text.at.isoformat()

    def _answered(self) -> dict[str, str]:
        try:
            found = json.loads(self._need_sink().cursor(ANSWERED) or "{}")
        except ValueError:
            return {}
        return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}

    async def _answer(self, text: Text, contact: str) -> None:
        """A contact's reply is acted on once: webhook retries and the gap fill's copies
        are remembered for as long as the gap fill can read them back."""
        sink = self._need_sink()
        now = self.clock()
        if now - text.at > FILL_MARGIN:
            return  # older than anything remembered: it may have been acted on already
        answered = self._answered()
        if text.key in answered:
            return
        response = response_of(text, contact, self.config)
        reply = sink.response(response) if response is not None else None
        # Remembered only once acted on: a crash in between acts twice (an ack is
        # idempotent), never zero times.
        answered = {k: v for k, v in answered.items() if _recent(v, now)}
        answered[text.key] = text.at.isoformat()
        sink.save_cursor(ANSWERED, json.dumps(answered, sort_keys=True))
        if not reply or response is None or response.chat is None:
            return
        try:
            await self.sending.send(contact, response.chat, reply)
        except DeliveryError as exc:
            log.warning("could not answer contact %s by SMS: %s", contact, exc.message)

    # -- sending -------------------------------------------------------------------------

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        return await self.sending.send(contact, address, text, incident)
