"""A local stand-in for SMS Gateway for Android (capcom6/android-sms-gateway) in Local Server mode.

Written from the app's source (commit 0cdc5d86, July 2026) and its documentation site
(android-sms-gateway/docs-web, docs/features/webhooks.md, reading-messages.md, health.md);
docs/sms.md lists the files read. It serves the app's local-server API and *sends* webhooks to
the URLs registered with it, exactly as the app does:

- the JSON body is Gson's (compact, nulls omitted, ``<>&='`` escaped as ``\\u003c``…);
- ``X-Timestamp`` is unix seconds taken at each attempt and ``X-Signature`` is the hex
  HMAC-SHA256 of ``body + timestamp`` under the signing key (PayloadSingingPlugin.kt);
- a failed attempt (non-2xx, refused, timeout) is retried after 5 s * 2^n (n = retries so far),
  15 retries then dropped (WebhookQueueRepository.kt, WebhooksSettings.kt), compressed here by
  ``time_factor``; no attempt is made while the phone is offline (WorkManager's network
  constraint), so an outage does not burn retries;
- ``messageId`` is the app's content hash (Java ``hashCode`` of sender, date, subscription and
  text), so two identical texts in the same second share it.

    async with FakeSmsGateway(time_factor=0.001) as gw:
        await gw.register_webhook(receiver_url)        # or POST /webhooks through the API
        sms = gw.receive_sms("+447700900001", "the network went down at work")
        await gw.wait_until(lambda: gw.completed(sms.event_ids[0]))

Everything runs on the test's event loop; queue times are ``time.monotonic()``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Literal, TypeVar

import aiohttp
from aiohttp import web

BASE_RETRY_DELAY = 5.0  # MIN_BACKOFF_DELAY_MS in WebhookQueueProcessorWorker.kt
DEFAULT_RETRY_COUNT = 15  # WebhooksSettings.retryCount default
REQUEST_TIMEOUT = 30.0  # PROCESSING_TIMEOUT_MS: the receiver must answer within 30 s
USER_AGENT = "me.capcom.smsgateway/1.0.0"
REALM = "Access to SMS Gateway"
EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping",
          "sms:data-received", "mms:received", "mms:downloaded", "app:started", "sms:cancelled")
_NANOID = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_GSON_HTML = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "=": "\\u003d", "'": "\\u0027",
              "\u2028": "\\u2028", "\u2029": "\\u2029"}
Status = Literal["pending", "processing", "failed", "completed", "permanently_failed"]
T = TypeVar("T")


# --------------------------------------------------------------------------- wire formats


def nanoid(size: int = 21) -> str:
    return "".join(secrets.choice(_NANOID) for _ in range(size))


def gson_dumps(value: Any) -> str:
    """Serialise like the app's Gson: compact, UTF-8, HTML-safe escapes, nulls dropped."""
    text = json.dumps(_drop_nulls(value), ensure_ascii=False, separators=(",", ":"))
    return "".join(_GSON_HTML.get(ch, ch) for ch in text)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def gson_date(epoch_ms: int, offset_minutes: int = 0) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSXXX`` in the device's zone (GsonBuilder.kt)."""
    tz = timezone(timedelta(minutes=offset_minutes))
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz)
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{epoch_ms % 1000:03d}"
    if offset_minutes == 0:
        return stamp + "Z"
    sign = "+" if offset_minutes > 0 else "-"
    hours, minutes = divmod(abs(offset_minutes), 60)
    return f"{stamp}{sign}{hours:02d}:{minutes:02d}"


def parse_iso(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def java_string_hash(text: str) -> int:
    h = 0
    utf16 = text.encode("utf-16-be")
    for i in range(0, len(utf16), 2):
        h = (31 * h + int.from_bytes(utf16[i:i + 2], "big")) & 0xFFFFFFFF
    return _int32(h)


def inbox_text_hash(sender: str, date_ms: int, subscription_id: int | None, text: str) -> int:
    """InboxMessage.Text.hashCode(): the seed of both ``messageId`` and the inbox ``id``."""
    date_hash = _int32((date_ms & 0xFFFFFFFF) ^ (date_ms >> 32))
    result = java_string_hash(sender)
    result = _int32(31 * result + date_hash)
    result = _int32(31 * result + (subscription_id or 0))
    return _int32(31 * result + java_string_hash(text))


def webhook_message_id(h: int) -> str:
    return format(h & 0xFFFFFFFF, "x")  # hashCode().toUInt().toString(16)


def basic_auth(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def sign(key: str, body: bytes, timestamp: str) -> str:
    return hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


# --------------------------------------------------------------------------- state


@dataclass
class Sms:
    """A text in the phone's SMS store; ``processed`` once the app has seen it."""

    sender: str
    text: str
    date_ms: int  # the SMSC timestamp the PDU carries (Telephony.Sms.DATE_SENT)
    sim_number: int | None
    recipient: str | None
    processed: bool = False
    event_ids: list[str] = field(default_factory=list)

    @property
    def hash(self) -> int:
        return inbox_text_hash(self.sender, self.date_ms, self.sim_number, self.text)

    @property
    def message_id(self) -> str:
        return webhook_message_id(self.hash)

    @property
    def inbox_id(self) -> str:
        return f"text:{self.hash}"


@dataclass
class Webhook:
    id: str
    url: str
    event: str


@dataclass
class Queued:
    """One row of the app's webhook_queue: a webhook event and its delivery state."""

    event_id: str
    url: str
    body: str  # the stored JSON; re-serialised identically at each attempt
    next_attempt: float
    status: Status = "pending"
    retry_count: int = 0
    last_error: str | None = None


@dataclass
class Attempt:
    event_id: str
    url: str
    body: bytes
    headers: dict[str, str]
    at: float
    status: int | None = None
    error: str | None = None


@dataclass
class Outgoing:
    id: str
    text: str
    phone_numbers: list[str]
    sim_number: int | None
    state: str = "Pending"
    states: dict[str, str] = field(default_factory=dict)


class FakeSmsGateway:
    """The app in Local Server mode: API on 127.0.0.1, webhooks sent from a retry queue."""

    def __init__(self, *, username: str = "sms", password: str | None = None,
                 signing_key: str | None = None, device_id: str | None = None,
                 phone_number: str | None = "+447700900999", time_factor: float = 1.0,
                 retry_count: int = DEFAULT_RETRY_COUNT, request_timeout: float = REQUEST_TIMEOUT,
                 tz_offset_minutes: int = 0, auto_send: bool = True, port: int = 0) -> None:
        self.username = username
        self.password = password or nanoid(14)
        self.signing_key = signing_key or nanoid(8)  # the app's default: an 8-char NanoId
        self.device_id = device_id or secrets.token_hex(16)
        self.phone_number = phone_number
        self.time_factor = time_factor
        self.retry_count = retry_count
        self.request_timeout = request_timeout
        self.tz_offset_minutes = tz_offset_minutes
        self.auto_send = auto_send
        self.port = port
        self.sms_store: list[Sms] = []
        self.webhooks: dict[str, Webhook] = {}
        self.queue: dict[str, Queued] = {}  # by queue row id
        self.attempts: list[Attempt] = []
        self.outbox: dict[str, Outgoing] = {}
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status)
        self.health_status: Literal["pass", "warn", "fail"] = "pass"
        self.battery_level = 80
        self.online = True
        self.held = False
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._worker: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        """The Basic ``Authorization`` header a client of the local server sends."""
        return basic_auth(self.username, self.password)

    async def start(self) -> FakeSmsGateway:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await self._open_site()
        self._session = aiohttp.ClientSession()
        self._worker = asyncio.create_task(self._deliver_forever())
        return self

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeSmsGateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _open_site(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if self.port == 0:
            self.port = int(self._runner.addresses[0][1])

    # ------------------------------------------------------------------ script API

    def receive_sms(self, sender: str, text: str, *, sim_number: int | None = 1,
                    date_ms: int | None = None, app_running: bool = True) -> Sms:
        """A text reaches the phone. With ``app_running=False`` it lands only in Android's
        SMS store (the app was killed); ``POST /inbox/refresh`` or the export finds it."""
        sms = Sms(sender, text, date_ms if date_ms is not None else int(time.time()) * 1000,
                  sim_number, self.phone_number)
        self.sms_store.append(sms)
        if app_running:
            self._process(sms, trigger_webhooks=True)
        self._changed.set()
        return sms

    async def register_webhook(self, url: str, event: str = "sms:received") -> Webhook:
        hook = Webhook(nanoid(), url, event)
        self.webhooks[hook.id] = hook
        return hook

    async def go_offline(self) -> None:
        """The phone loses its network: the API refuses connections, nothing is sent."""
        self.online = False
        if self._site is not None:
            await self._site.stop()
            self._site = None
        if self._runner is not None and self._runner.server is not None:
            for conn in list(self._runner.server.connections):
                conn.force_close()  # kept-alive client connections die with the network

    async def go_online(self) -> None:
        self.online = True
        await self._open_site()
        self._wake.set()

    def hold(self) -> None:
        """Queue webhooks without sending them (then :meth:`release` them in any order)."""
        self.held = True

    def release(self, order: Literal["fifo", "reverse", "shuffle"] = "fifo",
                seed: int = 0) -> None:
        rows = [q for q in self.queue.values() if q.status in ("pending", "failed")]
        if order == "reverse":
            rows.reverse()
        elif order == "shuffle":
            random.Random(seed).shuffle(rows)
        base = time.monotonic()
        for i, row in enumerate(rows):
            row.next_attempt = base + i * 1e-6  # the queue sends by next_attempt ascending
        self.held = False
        self._wake.set()

    def redeliver(self, event_id: str) -> Queued:
        """Queue the same event again (same ``id``, fresh signature): what the app does when
        the receiver committed but the 2xx was lost or came after the 30 s timeout."""
        original = next(q for q in self.queue.values() if q.event_id == event_id)
        return self._enqueue(event_id, original.url, original.body)

    async def replay(self, attempt: Attempt, url: str | None = None) -> int:
        """An attacker re-sends a captured request byte for byte (old timestamp, old MAC)."""
        return await self.post_raw(url or attempt.url, attempt.body, attempt.headers)

    async def post_raw(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        assert self._session is not None
        async with self._session.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return resp.status

    def signed_headers(self, body: bytes, *, timestamp: int | None = None,
                       key: str | None = None) -> dict[str, str]:
        """Headers exactly as the app signs (for forged/stale variants in tests)."""
        ts = str(timestamp if timestamp is not None else int(time.time()))
        return {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                "X-Timestamp": ts, "X-Signature": sign(key or self.signing_key, body, ts)}

    def sms_received_body(self, sms: Sms, webhook_id: str = "", event_id: str = "") -> str:
        return gson_dumps({"id": event_id or nanoid(), "webhookId": webhook_id or nanoid(),
                           "event": "sms:received", "deviceId": self.device_id,
                           "payload": self._sms_payload(sms)})

    def completed(self, event_id: str) -> bool:
        return any(q.event_id == event_id and q.status == "completed"
                   for q in self.queue.values())

    def rows(self, event_id: str) -> list[Queued]:
        return [q for q in self.queue.values() if q.event_id == event_id]

    def attempts_for(self, event_id: str) -> list[Attempt]:
        return [a for a in self.attempts if a.event_id == event_id]

    def sent_to(self, number: str) -> list[Outgoing]:
        return [m for m in self.outbox.values() if number in m.phone_numbers]

    async def wait_until(self, predicate: Callable[[], T | None], timeout: float = 10.0) -> T:
        """Wait for a condition on the stand-in's state; woken by each change, no polling."""
        async with asyncio.timeout(timeout):
            while not (result := predicate()):
                self._changed.clear()
                await self._changed.wait()
        return result

    # ------------------------------------------------------------------ the app's behaviour

    def _sms_payload(self, sms: Sms) -> dict[str, Any]:
        # Field order as Gson writes SmsReceived: own fields first, then the superclass's.
        return {"message": sms.text,
                "receivedAt": gson_date(sms.date_ms, self.tz_offset_minutes),
                "messageId": sms.message_id, "sender": sms.sender,
                "recipient": sms.recipient, "simNumber": sms.sim_number,
                "phoneNumber": sms.sender}

    def _process(self, sms: Sms, trigger_webhooks: bool) -> None:
        """ReceiverService.process: the app skips a text whose content hash it has seen."""
        if any(s.processed and s.inbox_id == sms.inbox_id for s in self.sms_store):
            return
        sms.processed = True
        if trigger_webhooks:
            self._emit("sms:received", self._sms_payload(sms), sms)

    def _emit(self, event: str, payload: dict[str, Any], sms: Sms | None = None) -> None:
        for hook in list(self.webhooks.values()):
            if hook.event != event:
                continue
            event_id = nanoid()
            body = gson_dumps({"id": event_id, "webhookId": hook.id, "event": event,
                               "deviceId": self.device_id, "payload": payload})
            self._enqueue(event_id, hook.url, body)
            if sms is not None:
                sms.event_ids.append(event_id)

    def _enqueue(self, event_id: str, url: str, body: str) -> Queued:
        row = Queued(event_id, url, body, next_attempt=time.monotonic())
        self.queue[nanoid()] = row
        self._wake.set()
        return row

    def _due(self) -> list[Queued]:
        now = time.monotonic()
        rows = [q for q in self.queue.values()
                if q.status in ("pending", "failed") and q.next_attempt <= now]
        return sorted(rows, key=lambda q: q.next_attempt)[:20]  # BATCH_SIZE

    async def _deliver_forever(self) -> None:
        while True:
            if self.online and not self.held and (due := self._due()):
                for row in due:
                    if not self.online or self.held:
                        break
                    await self._attempt(row)
                continue
            waiting = [q.next_attempt for q in self.queue.values()
                       if q.status in ("pending", "failed")]
            timeout: float | None = None  # offline or held: sleep until woken
            if waiting and self.online and not self.held:
                timeout = max(0.0, min(waiting) - time.monotonic())
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _attempt(self, row: Queued) -> None:
        assert self._session is not None
        row.status = "processing"
        body = row.body.encode()
        headers = self.signed_headers(body)
        attempt = Attempt(row.event_id, row.url, body, headers, time.monotonic())
        self.attempts.append(attempt)
        try:
            timeout = aiohttp.ClientTimeout(total=self.request_timeout)
            async with self._session.post(row.url, data=body, headers=headers,
                                          timeout=timeout) as resp:
                await resp.read()
                attempt.status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            attempt.error = type(exc).__name__
        if attempt.status is not None and 200 <= attempt.status <= 299:
            row.status = "completed"
        elif row.retry_count < self.retry_count:
            delay = BASE_RETRY_DELAY * (1 << row.retry_count) * self.time_factor
            row.retry_count += 1
            row.status = "failed"
            row.last_error = attempt.error or f"status {attempt.status}"
            row.next_attempt = time.monotonic() + delay
        else:
            row.status = "permanently_failed"
        self._changed.set()

    # ------------------------------------------------------------------ HTTP API

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        try:
            if request.path != "/health" and not self._authorised(request):
                resp: web.StreamResponse = web.Response(
                    status=401,
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset=UTF-8'})
            else:
                resp = await handler(request)
        except web.HTTPException as exc:
            resp = exc
        except ValueError as exc:  # IllegalArgumentException → 400 via StatusPages
            resp = _json({"message": str(exc)}, 400)
        self.calls.append((request.method, request.path, resp.status))
        self._changed.set()
        return resp

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(f"{user}:{password}", f"{self.username}:{self.password}")

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/health", self._health)
        app.router.add_get("/", self._root)
        for prefix in ("/message", "/messages"):
            app.router.add_post(prefix, self._post_message)
            app.router.add_get(prefix + "/{id}", self._get_message)
        app.router.add_post("/messages/inbox/export", self._export)
        app.router.add_get("/inbox", self._inbox)
        app.router.add_post("/inbox/refresh", self._refresh)
        for prefix in ("/webhook", "/webhooks"):
            app.router.add_get(prefix, self._list_webhooks)
            app.router.add_post(prefix, self._post_webhook)
            app.router.add_delete(prefix + "/{id}", self._delete_webhook)

    async def _health(self, request: web.Request) -> web.Response:
        def check(status: str, value: int, unit: str, text: str) -> dict[str, Any]:
            return {"status": status, "observedValue": value, "observedUnit": unit,
                    "description": text}

        battery = "fail" if self.battery_level < 10 else (
            "warn" if self.battery_level < 25 else "pass")
        checks = {
            "messages:failed": check("pass", 0, "messages", "Failed messages for last hour"),
            "connection:status": check("pass", 1, "boolean", "Internet connection status"),
            "battery:level": check(battery, self.battery_level, "percent",
                                   "Battery level in percent"),
            "battery:charging": check("pass", 0, "flags", "Is the phone charging?"),
        }
        statuses = [c["status"] for c in checks.values()] + [self.health_status]
        overall = "fail" if "fail" in statuses else ("warn" if "warn" in statuses else "pass")
        body = {"version": "1.0.0", "releaseId": 1, "status": overall, "checks": checks}
        return _json(body, 500 if overall == "fail" else 200)

    async def _root(self, request: web.Request) -> web.Response:
        return _json({"status": "ok", "model": "Fake Pixel"})

    async def _post_message(self, request: web.Request) -> web.Response:
        data = await _body(request)
        text = (data.get("textMessage") or {}).get("text") or data.get("message")
        numbers = data.get("phoneNumbers") or []
        if not text:
            raise ValueError("Must specify exactly one of: textMessage, dataMessage, or message")
        if not isinstance(numbers, list) or not numbers:
            raise ValueError("Empty phone numbers list")
        if data.get("deviceId") not in (None, self.device_id):
            return _json({"message": "Invalid device ID"}, 400)
        msg_id = data.get("id") or nanoid()
        if msg_id in self.outbox:
            return _json({"message": f"Message with id {msg_id} already exists"}, 409)
        msg = Outgoing(msg_id, text, [str(n) for n in numbers], data.get("simNumber"))
        msg.states["Pending"] = gson_date(int(time.time() * 1000), self.tz_offset_minutes)
        self.outbox[msg_id] = msg
        if self.auto_send:
            self.advance(msg_id, "Sent")
        return _json(self._message_json(msg, state="Pending"), 202)

    def advance(self, msg_id: str, state: Literal["Sent", "Delivered", "Failed"],
                reason: str = "RESULT_ERROR_GENERIC_FAILURE") -> None:
        """Move an outgoing text on and emit its webhook (sms:sent/delivered/failed)."""
        msg = self.outbox[msg_id]
        msg.state = state
        now_ms = int(time.time() * 1000)
        msg.states[state] = gson_date(now_ms, self.tz_offset_minutes)
        for number in msg.phone_numbers:
            payload: dict[str, Any] = {"messageId": msg.id, "sender": self.phone_number,
                                       "recipient": number, "simNumber": msg.sim_number,
                                       "phoneNumber": number}
            at = gson_date(now_ms, self.tz_offset_minutes)
            if state == "Sent":
                self._emit("sms:sent", {"partsCount": 1, "sentAt": at, **payload})
            elif state == "Delivered":
                self._emit("sms:delivered", {"deliveredAt": at, **payload})
            else:
                self._emit("sms:failed", {"failedAt": at, "reason": reason, **payload})

    def _message_json(self, msg: Outgoing, state: str | None = None) -> dict[str, Any]:
        shown = state or msg.state
        return {"id": msg.id, "deviceId": self.device_id, "state": shown, "isHashed": False,
                "isEncrypted": False, "textMessage": {"text": msg.text},
                "recipients": [{"phoneNumber": n, "state": shown} for n in msg.phone_numbers],
                "states": msg.states}

    async def _get_message(self, request: web.Request) -> web.Response:
        msg = self.outbox.get(request.match_info["id"])
        if msg is None:
            return web.Response(status=404)
        return _json(self._message_json(msg))

    async def _inbox(self, request: web.Request) -> web.Response:
        query = request.query
        kind = query.get("type") or None
        if kind not in (None, "SMS", "DATA_SMS", "MMS", "MMS_DOWNLOADED"):
            return _json({"message": "Invalid type"}, 400)
        limit, offset = int(query.get("limit", "50")), int(query.get("offset", "0"))
        if not 1 <= limit <= 500:
            return _json({"message": "limit must be between 1 and 500"}, 400)
        if offset < 0:
            return _json({"message": "offset must be >= 0"}, 400)
        start, end = _range(query.get("from"), query.get("to"))
        if query.get("deviceId") not in (None, self.device_id):
            return _json({"message": "Invalid device ID"}, 400)
        rows = [s for s in self.sms_store
                if s.processed and start <= s.date_ms <= end and kind in (None, "SMS")]
        rows.sort(key=lambda s: (s.date_ms, s.inbox_id), reverse=True)  # createdAt DESC, id DESC
        page = [{"id": s.inbox_id, "type": "SMS", "sender": s.sender, "recipient": s.recipient,
                 "simNumber": s.sim_number, "contentPreview": s.text,
                 "createdAt": gson_date(s.date_ms, self.tz_offset_minutes)}
                for s in rows[offset:offset + limit]]
        return _json(page, headers={"X-Total-Count": str(len(rows))})

    async def _refresh(self, request: web.Request) -> web.Response:
        return await self._reprocess(request, trigger_default=False)

    async def _export(self, request: web.Request) -> web.Response:
        return await self._reprocess(request, trigger_default=True)

    async def _reprocess(self, request: web.Request, trigger_default: bool) -> web.Response:
        """ReceiverService.export: walk Android's SMS store by date; already-processed texts
        are skipped, so an export never re-sends a text whose webhook was given up on."""
        data = await _body(request)
        since, until = parse_iso(str(data.get("since"))), parse_iso(str(data.get("until")))
        if since is None or until is None:
            raise ValueError("since and until are required")
        if since > until:
            raise ValueError("since must be before until")
        trigger = data.get("triggerWebhooks")
        lo, hi = int(since.timestamp() * 1000), int(until.timestamp() * 1000)
        for sms in sorted(self.sms_store, key=lambda s: s.date_ms):
            if lo <= sms.date_ms <= hi:
                self._process(sms, trigger_default if trigger is None else bool(trigger))
        return web.Response(status=202)

    async def _list_webhooks(self, request: web.Request) -> web.Response:
        return _json([self._hook_json(h) for h in self.webhooks.values()])

    async def _post_webhook(self, request: web.Request) -> web.Response:
        data = await _body(request)
        url = str(data.get("url", ""))
        if not (url.startswith("https://") or url.startswith("http://127.0.0.1")):
            raise ValueError("url must start with https:// or http://127.0.0.1")
        if data.get("event") not in EVENTS:
            raise ValueError("Unsupported event")
        if data.get("deviceId") not in (None, self.device_id):
            raise ValueError("Device ID mismatch")
        hook = Webhook(data.get("id") or nanoid(), url, str(data["event"]))
        self.webhooks[hook.id] = hook
        return _json(self._hook_json(hook), 201)

    async def _delete_webhook(self, request: web.Request) -> web.Response:
        self.webhooks.pop(request.match_info["id"], None)
        return web.Response(status=204)

    @staticmethod
    def _hook_json(hook: Webhook) -> dict[str, Any]:
        return {"id": hook.id, "url": hook.url, "event": hook.event, "source": "Local"}


def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=gson_dumps(value), status=status, headers=headers,
                        content_type="application/json")


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType()
    try:
        data = await request.json()
    except json.JSONDecodeError as exc:
        raise ValueError("Invalid request body") from exc
    if not isinstance(data, dict):
        raise ValueError("Invalid request body")
    return data


def _range(start: str | None, end: str | None) -> tuple[int, int]:
    lo = parse_iso(start) if start is not None else datetime.fromtimestamp(0, UTC)
    hi = parse_iso(end) if end is not None else datetime.now(UTC)
    if lo is None:
        raise ValueError("Invalid from datetime")
    if hi is None:
        raise ValueError("Invalid to datetime")
    if lo > hi:
        raise ValueError("Start date cannot be after end date")
    return int(lo.timestamp() * 1000), int(hi.timestamp() * 1000)
