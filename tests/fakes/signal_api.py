"""A local stand-in for signal-cli-rest-api, written from its published swagger spec.

Spec: /work/shared/specs/signal-cli-rest-api/swagger.json plus the corrections in SOURCE.txt
(receive returns an array / a websocket; /v2/send replies in two shapes; 404 on attachments).

    async with FakeSignalApi(number="+15550000001", mode="json-rpc") as api:
        api.inject(text_message(ALICE, "pineapple"))
        api.fault("send", status=429, challenge_tokens=["tok"])
        ...
        assert all(c.query.get("send_read_receipts") != "true" for c in api.receive_params())

Everything runs on the test's event loop; times are ``time.monotonic()``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import time
import uuid as uuidlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import WSMsgType, web

Mode = Literal["normal", "native", "json-rpc"]
ReplyShape = Literal["0.100", "list"]
ROUTES = ("about", "health", "receive", "attachments", "attachment", "delete_attachment", "send",
          "groups", "devices")
NO_ATTACHMENT = "No attachment with that name found"
_BODY = web.RequestKey("json_body", object)

# --------------------------------------------------------------------------- envelope builders


@dataclass(frozen=True)
class Contact:
    """A Signal user as envelopes show it; ``number`` is None when the user hides it."""

    uuid: str
    number: str | None = None
    name: str = ""


@dataclass(frozen=True)
class Blob:
    """Attachment bytes plus the metadata an envelope carries; see :func:`make_blob`."""

    id: str
    data: bytes
    content_type: str
    filename: str | None = None
    caption: str | None = None

    def meta(self) -> dict[str, Any]:
        return {"contentType": self.content_type, "filename": self.filename, "id": self.id,
                "size": len(self.data), "caption": self.caption, "width": 0, "height": 0,
                "uploadTimestamp": now_ms()}


_EXT = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp"}
_last_ts = 0


def now_ms() -> int:
    return int(time.time() * 1000)


def next_ts() -> int:
    """A fresh, strictly increasing message timestamp in epoch milliseconds."""
    global _last_ts
    _last_ts = max(_last_ts + 1, now_ms())
    return _last_ts


def make_contact(number: str | None = None, name: str = "") -> Contact:
    return Contact(uuid=str(uuidlib.uuid4()), number=number, name=name)


def make_blob(data: bytes, content_type: str = "image/jpeg", filename: str | None = None,
              caption: str | None = None) -> Blob:
    ext = _EXT.get(content_type, "")
    return Blob(secrets.token_urlsafe(15) + ext, data, content_type, filename, caption)


def rest_group_id(internal_id: str) -> str:
    """The REST API's recipient id for a group whose envelopes carry ``internal_id``."""
    return "group." + base64.b64encode(internal_id.encode()).decode()


def _envelope(sender: Contact, ts: int, **body: Any) -> dict[str, Any]:
    return {"source": sender.number or sender.uuid, "sourceNumber": sender.number,
            "sourceUuid": sender.uuid, "sourceName": sender.name, "sourceDevice": 1,
            "timestamp": ts, "serverReceivedTimestamp": ts + 5,
            "serverDeliveredTimestamp": ts + 9, **body}


def _data(ts: int, message: str | None, group_id: str | None = None,
          **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"timestamp": ts, "message": message, "expiresInSeconds": 0,
                            "viewOnce": False, **extra}
    if group_id is not None:
        data["groupInfo"] = {"groupId": group_id, "groupName": "", "revision": 1,
                             "type": "DELIVER"}
    return data


def text_message(sender: Contact, text: str, *, timestamp: int | None = None,
                 group_id: str | None = None) -> dict[str, Any]:
    ts = timestamp or next_ts()
    return _envelope(sender, ts, dataMessage=_data(ts, text, group_id))


def group_message(sender: Contact, group_id: str, text: str, *,
                  timestamp: int | None = None) -> dict[str, Any]:
    return text_message(sender, text, timestamp=timestamp, group_id=group_id)


def attachment_message(sender: Contact, blobs: Iterable[Blob], text: str | None = None, *,
                       timestamp: int | None = None) -> dict[str, Any]:
    """Pass the same blobs to :meth:`FakeSignalApi.inject` so their ids can be fetched."""
    ts = timestamp or next_ts()
    return _envelope(sender, ts, dataMessage=_data(ts, text,
                                                   attachments=[b.meta() for b in blobs]))


def reaction(sender: Contact, emoji: str, target_author: Contact, target_ts: int, *,
             remove: bool = False, timestamp: int | None = None) -> dict[str, Any]:
    ts = timestamp or next_ts()
    react = {"emoji": emoji, "targetAuthor": target_author.number or target_author.uuid,
             "targetAuthorNumber": target_author.number,
             "targetAuthorUuid": target_author.uuid, "targetSentTimestamp": target_ts,
             "isRemove": remove}
    return _envelope(sender, ts, dataMessage=_data(ts, None, reaction=react))


def quote_reply(sender: Contact, text: str, quoted_author: Contact, quoted_ts: int,
                quoted_text: str, *, timestamp: int | None = None) -> dict[str, Any]:
    ts = timestamp or next_ts()
    quote = {"id": quoted_ts, "author": quoted_author.number or quoted_author.uuid,
             "authorNumber": quoted_author.number, "authorUuid": quoted_author.uuid,
             "text": quoted_text, "attachments": []}
    return _envelope(sender, ts, dataMessage=_data(ts, text, quote=quote))


def edit_message(sender: Contact, target_ts: int, new_text: str, *,
                 timestamp: int | None = None) -> dict[str, Any]:
    ts = timestamp or next_ts()
    return _envelope(sender, ts, editMessage={"targetSentTimestamp": target_ts,
                                              "dataMessage": _data(ts, new_text)})


def sync_sent(account: Contact, destination: Contact | None, text: str, *,
              group_id: str | None = None, timestamp: int | None = None) -> dict[str, Any]:
    """What a linked device sees when the account's own phone sends a message."""
    ts = timestamp or next_ts()
    sent = _data(ts, text, group_id)
    if destination is not None:
        sent |= {"destination": destination.number or destination.uuid,
                 "destinationNumber": destination.number, "destinationUuid": destination.uuid}
    return _envelope(account, ts, syncMessage={"sentMessage": sent})


def typing(sender: Contact, action: str = "STARTED", *, group_id: str | None = None,
           timestamp: int | None = None) -> dict[str, Any]:
    ts = timestamp or next_ts()
    msg: dict[str, Any] = {"action": action, "timestamp": ts}
    if group_id is not None:
        msg["groupId"] = group_id
    return _envelope(sender, ts, typingMessage=msg)


def receipt(sender: Contact, timestamps: list[int],
            kind: Literal["delivery", "read", "viewed"] = "read") -> dict[str, Any]:
    ts = next_ts()
    msg = {"when": ts, "isDelivery": kind == "delivery", "isRead": kind == "read",
           "isViewed": kind == "viewed", "timestamps": timestamps}
    return _envelope(sender, ts, receiptMessage=msg)


# --------------------------------------------------------------------------- records


@dataclass
class Call:
    """One request as the stand-in saw it (websocket upgrades included)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    time: float
    route: str | None
    status: int | None = None


@dataclass
class Injected:
    """An injected envelope: when it became available and when (if) it went out."""

    item: dict[str, Any]
    blobs: tuple[Blob, ...]
    available_at: float
    delivered_at: float | None = None
    dropped: bool = False

    @property
    def timestamp(self) -> int:
        return int(self.item["envelope"]["timestamp"])


@dataclass
class Fault:
    status: int | None = None
    hang: float = 0.0
    drop: bool = False
    error: str | None = None
    challenge_tokens: list[str] = field(default_factory=list)
    retry_after: str | None = None


@dataclass
class _Listener:
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[Injected]
    fetch_attachments: bool


# --------------------------------------------------------------------------- the server


class FakeSignalApi:
    def __init__(self, number: str = "+15550000001", *, mode: Mode = "normal",
                 version: str = "0.100", reply_shape: ReplyShape = "0.100") -> None:
        self.number = number
        self.mode: Mode = mode
        self.version = version
        self.reply_shape: ReplyShape = reply_shape
        self.calls: list[Call] = []
        self.injected: list[Injected] = []
        self.attachments: dict[str, bytes] = {}
        self.recipient_errors: dict[str, str] = {}
        self.groups: list[dict[str, Any]] = []  # GroupEntry objects, as GET /v1/groups lists
        self.lost: str | None = None  # why the account is unusable (see lose_account)
        self._pending: list[Injected] = []
        self._faults: dict[str, list[Fault]] = {r: [] for r in ROUTES}
        self._listeners: list[_Listener] = []
        self._changed = asyncio.Event()  # set whenever something tests may wait on happens
        self._stopping = asyncio.Event()
        self._send_cursor = 0
        self._runner: web.AppRunner | None = None
        self.port = 0  # chosen at the first start; a restart reuses it, as a service would
        self.base_url = ""

    # ----------------------------------------------------------------------- lifecycle
    async def start(self) -> str:
        """Serve (again, after stop(): same port, same state)."""
        self._stopping = asyncio.Event()
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/v1/about", self._about, name="about")
        r.add_get("/v1/health", self._health, name="health")
        r.add_get("/v1/receive/{number}", self._receive, name="receive")
        r.add_get("/v1/devices/{number}", self._devices, name="devices")
        r.add_get("/v1/attachments", self._list_attachments, name="attachments")
        r.add_get("/v1/attachments/{id}", self._get_attachment, name="attachment")
        r.add_delete("/v1/attachments/{id}", self._delete_attachment, name="delete_attachment")
        r.add_post("/v2/send", self._send, name="send")
        r.add_get("/v1/groups/{number}", self._groups, name="groups")
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        host, self.port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{self.port}"
        return self.base_url

    async def stop(self) -> None:
        self._stopping.set()
        self._changed.set()
        for lst in list(self._listeners):
            await lst.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSignalApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ----------------------------------------------------------------------- script API
    def inject(self, envelope: dict[str, Any], blobs: Iterable[Blob] = ()) -> Injected:
        """Make an envelope arrive. In json-rpc mode it is pushed to every connected
        websocket, or DROPPED if none is connected (as the real service does)."""
        rec = Injected({"envelope": envelope, "account": self.number}, tuple(blobs),
                       time.monotonic())
        self.injected.append(rec)
        if self.mode != "json-rpc":
            self._pending.append(rec)
        elif not self._listeners:
            rec.dropped = True
        else:
            for lst in self._listeners:
                lst.queue.put_nowait(rec)
        self._notify()
        return rec

    def fault(self, route: str, *, status: int | None = None, times: int = 1,
              hang: float = 0.0, drop: bool = False, error: str | None = None,
              challenge_tokens: Iterable[str] = (), retry_after: str | None = None) -> None:
        """The next ``times`` calls of ``route`` (one of ROUTES) wait ``hang`` seconds, then
        drop the connection, answer ``status`` with an error body, or proceed normally."""
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; one of {ROUTES}")
        f = Fault(status, hang, drop, error, list(challenge_tokens), retry_after)
        self._faults[route].extend(f for _ in range(times))

    def lose_account(self, how: str = "unregistered") -> None:
        """The account stops working, as signal-cli reports it through the REST API (400
        with an error text): "unregistered" (the number was unregistered, or signal-cli
        marked it so after Signal refused it) or "unlinked" (the phone removed this linked
        device, or the number was registered elsewhere: Signal answers 401 to signal-cli).
        Receiving and sending fail until ``restore_account``; messages wait meanwhile."""
        if how not in ("unregistered", "unlinked"):
            raise ValueError(f"unknown way to lose the account {how!r}")
        self.lost = how

    def restore_account(self) -> None:
        self.lost = None
        self._notify()

    def _account_error(self) -> web.Response | None:
        if self.lost == "unregistered":
            return self._error(400, f"User {self.number} is not registered.")
        if self.lost == "unlinked":
            return self._error(400, f"Error while checking account {self.number}: [401] "
                                    "Authorization failed!\n")
        return None

    def fail_recipient(self, recipient: str, reason: str = "Unregistered user") -> None:
        self.recipient_errors[recipient] = reason

    async def cut_websockets(self, *, abrupt: bool = True, code: int = 1011) -> None:
        """Abrupt: drop TCP without a close frame (crash). Else a close frame with ``code``
        (1011 server error; 1000/1001 a tidy restart)."""
        for lst in list(self._listeners):
            if abrupt and lst.request.transport is not None:
                lst.request.transport.abort()
            else:
                await lst.ws.close(code=code, message=b"bye")

    def sends(self) -> list[Call]:
        return [c for c in self.calls if c.route == "send"]

    def receive_params(self) -> list[dict[str, str]]:
        return [c.query for c in self.calls if c.route == "receive"]

    def sent_to(self) -> set[str]:
        """Every recipient any send request named (successful or not)."""
        return {r for c in self.sends() if isinstance(c.body, dict)
                for r in c.body.get("recipients", []) if isinstance(r, str)}

    def record_for(self, timestamp: int) -> Injected:
        return next(r for r in self.injected if r.timestamp == timestamp)

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    async def next_send(self, timeout: float = 5.0) -> Call:
        """The next send request not yet returned by this method (waits for it)."""
        await self.wait_until(lambda: len(self.sends()) > self._send_cursor, timeout)
        self._send_cursor += 1
        return self.sends()[self._send_cursor - 1]

    async def wait_for_listeners(self, n: int = 1, timeout: float = 5.0) -> None:
        await self.wait_until(lambda: len(self._listeners) >= n, timeout)

    async def wait_delivered(self, rec: Injected, timeout: float = 5.0) -> None:
        await self.wait_until(lambda: rec.delivered_at is not None, timeout)

    async def wait_until(self, cond: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (without polling) until ``cond()`` holds, e.g. ``lambda: api.listeners == 0``."""
        async with asyncio.timeout(timeout):
            while not cond():
                await self._changed.wait()

    # ----------------------------------------------------------------------- internals
    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the stand-in stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def _deliver(self, rec: Injected, fetch_attachments: bool) -> None:
        rec.delivered_at = time.monotonic()
        if fetch_attachments:
            self.attachments.update({b.id: b.data for b in rec.blobs})
        self._notify()

    @staticmethod
    def _error(status: int, message: str, **extra: Any) -> web.Response:
        return web.json_response({"error": message, **extra}, status=status)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = request.match_info.route.name
        body: Any = None
        if request.body_exists:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
        request[_BODY] = body
        call = Call(request.method, request.path, dict(request.query), body, time.monotonic(),
                    route)
        self.calls.append(call)
        self._notify()
        resp = await self._apply_fault(request, route)
        if resp is None:
            try:
                resp = await handler(request)
            except web.HTTPException as exc:
                if exc.status not in (404, 405):
                    raise
                # gin answers unknown routes (and wrong methods) with a plain-text 404
                resp = web.Response(status=404, text="404 page not found")
        call.status = resp.status
        self._notify()
        return resp

    async def _apply_fault(self, request: web.Request,
                           route: str | None) -> web.StreamResponse | None:
        if route is None or not self._faults[route]:
            return None
        f = self._faults[route].pop(0)
        if f.hang:
            await self._sleep(f.hang)
        if f.drop:
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=599)  # never reaches the client
        if f.status is None:
            return None
        headers = {"Retry-After": f.retry_after} if f.retry_after else None
        extra: dict[str, Any] = {}
        if f.status == 429:
            extra = {"challenge_tokens": f.challenge_tokens, "account": self.number}
        default = NO_ATTACHMENT if route == "attachment" and f.status == 404 else "fault"
        return web.json_response({"error": f.error or default, **extra}, status=f.status,
                                 headers=headers)

    # ----------------------------------------------------------------------- handlers
    async def _about(self, request: web.Request) -> web.Response:
        return web.json_response({
            "versions": ["v1", "v2"], "build": 2, "mode": self.mode, "version": self.version,
            "capabilities": {"v2/send": ["quotes", "mentions"]}})

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        for key in ("ignore_attachments", "ignore_stories", "send_read_receipts"):
            if key in q and q[key] not in ("true", "false"):
                return self._error(400, f"Couldn't process request - {key} parameter "
                                        "needs to be either 'true' or 'false'")
        for key in ("timeout", "max_messages"):
            if key in q and not q[key].lstrip("-").isdigit():
                return self._error(400, f"Couldn't process request - {key} needs to be numeric!")
        if request.match_info["number"] != self.number:
            return self._error(400, f"User {request.match_info['number']} is not registered.")
        if (refused := self._account_error()) is not None:
            return refused
        fetch = q.get("ignore_attachments", "false") != "true"
        if self.mode == "json-rpc":
            return await self._websocket(request, fetch)
        if not self._pending:
            deadline = time.monotonic() + int(q.get("timeout", "1"))
            while not self._pending and not self._stopping.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    break
        limit = int(q["max_messages"]) if "max_messages" in q else None
        n = len(self._pending) if limit is None or limit <= 0 else limit
        batch, self._pending = self._pending[:n], self._pending[n:]
        for rec in batch:
            self._deliver(rec, fetch)
        return web.json_response([rec.item for rec in batch])

    async def _websocket(self, request: web.Request, fetch: bool) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            return self._error(400, "websocket: the client is not using the websocket protocol")
        await ws.prepare(request)
        lst = _Listener(ws, request, asyncio.Queue(), fetch)
        self._listeners.append(lst)
        self._notify()

        async def pump() -> None:
            while True:
                rec = await lst.queue.get()
                await ws.send_str(json.dumps(rec.item))
                self._deliver(rec, lst.fetch_attachments)

        pumper = asyncio.create_task(pump())
        try:
            async for msg in ws:  # the real service ignores what clients send
                if msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._listeners.remove(lst)
            pumper.cancel()
            self._notify()
        return ws

    async def _groups(self, request: web.Request) -> web.Response:
        return web.json_response(self.groups)

    async def _devices(self, request: web.Request) -> web.Response:
        """GET /v1/devices/{number}: the account's devices (signal-cli listDevices)."""
        if request.match_info["number"] != self.number:
            return self._error(400, f"User {request.match_info['number']} is not registered.")
        if (refused := self._account_error()) is not None:
            return refused
        seen = now_ms()
        return web.json_response([
            {"id": 1, "name": "", "creation_timestamp": seen - 86_400_000,
             "last_seen_timestamp": seen},
            {"id": 2, "name": "watcher", "creation_timestamp": seen - 3_600_000,
             "last_seen_timestamp": seen}])

    async def _list_attachments(self, request: web.Request) -> web.Response:
        return web.json_response(sorted(self.attachments))

    async def _get_attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(request.match_info["id"])
        if data is None:
            return self._error(404, NO_ATTACHMENT)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _delete_attachment(self, request: web.Request) -> web.Response:
        if self.attachments.pop(request.match_info["id"], None) is None:
            return self._error(400, NO_ATTACHMENT)
        return web.Response(status=204)

    async def _send(self, request: web.Request) -> web.Response:
        body = request.get(_BODY)
        if not isinstance(body, dict):
            return self._error(400, "Couldn't process request - invalid request")
        recipients = body.get("recipients")
        if not isinstance(body.get("message"), str) or not isinstance(recipients, list) \
                or not recipients or not isinstance(body.get("number"), str):
            return self._error(400, "Couldn't process request - invalid request")
        if body["number"] != self.number:
            return self._error(400, f"User {body['number']} is not registered.",
                               account=body["number"])
        if (refused := self._account_error()) is not None:
            return refused
        for r in recipients:
            if not _valid_recipient(r):
                return self._error(400, f"Invalid recipient {r!r}", account=self.number)
        ts = str(next_ts())
        failed = [{"uuid": "", "number": r, "username": "", "reason": self.recipient_errors[r]}
                  for r in recipients if r in self.recipient_errors]
        if self.reply_shape == "0.100":
            if failed:  # the old release reports any recipient failure as a 400
                return self._error(400, "Failed to send message: " + "; ".join(
                    f"{f['number']}: {f['reason']}" for f in failed), account=self.number)
            return web.json_response({"timestamp": ts}, status=201)
        return web.json_response([{"timestamp": ts, "errors": {"recipients": failed}}],
                                 status=201)


def _valid_recipient(r: object) -> bool:
    if not isinstance(r, str):
        return False
    if r.startswith("group."):
        try:
            return bool(base64.b64decode(r[6:], validate=True))
        except ValueError:
            return False
    if r.startswith("+"):
        return r[1:].isdigit() and 6 <= len(r) <= 16
    try:
        uuidlib.UUID(r)
    except ValueError:
        return False
    return True
