"""Thin async client for signal-cli-rest-api (https://github.com/bbernhard/signal-cli-rest-api).

Speaks only HTTP/websocket; knows nothing of the rest of duress-watcher. Errors are
:class:`SignalError` with ``permanent`` telling the caller whether retrying can help:
unreachable service, timeouts and 5xx are temporary; 4xx (unknown account, bad request, auth)
are permanent; 429 is temporary unless it carries captcha ``challenge_tokens``.

Reading never acknowledges with read receipts: ``send_read_receipts`` is always "false".
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote as urlquote
from urllib.parse import urlencode

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from watcher.core.errors import WatcherError

MODES = ("normal", "native", "json-rpc")
_QUOTE_KEYS = {"timestamp": "quote_timestamp", "author": "quote_author",
               "message": "quote_message", "mentions": "quote_mentions"}


class SignalError(WatcherError):
    def __init__(self, message: str, *, permanent: bool, status: int | None = None) -> None:
        super().__init__(message, permanent)
        self.status = status


class SignalUnreachable(SignalError):
    """Connection refused/reset, timeout, 5xx, websocket lost: retry later."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, permanent=False, status=status)


class SignalAuthError(SignalError):
    """401/403 (e.g. a reverse proxy in front of the service): fix the configuration."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message, permanent=True, status=status)


class SignalNotFound(SignalError):
    def __init__(self, message: str, status: int | None = 404) -> None:
        super().__init__(message, permanent=True, status=status)


class SignalRateLimited(SignalError):
    """429. With challenge tokens a captcha must be solved (permanent until then)."""

    def __init__(self, message: str, challenge_tokens: list[str],
                 retry_after: float | None) -> None:
        super().__init__(message, permanent=bool(challenge_tokens), status=429)
        self.challenge_tokens = challenge_tokens
        self.retry_after = retry_after


class SignalTooLarge(SignalError):
    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass
class SendResult:
    timestamp: str
    failed: list[dict[str, Any]] = field(default_factory=list)  # per-recipient errors


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_for(resp: httpx.Response, what: str) -> SignalError:
    status, tokens, detail = resp.status_code, [], resp.text[:300]
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = str(body.get("error", detail))
        tokens = [str(t) for t in body.get("challenge_tokens") or []]
    msg = f"{what}: HTTP {status}: {detail}"
    if status == 429:
        return SignalRateLimited(msg, tokens, _retry_after(resp.headers.get("retry-after")))
    if status in (401, 403):
        return SignalAuthError(msg, status)
    if status == 404:
        return SignalNotFound(msg, status)
    if status == 408 or status >= 500:
        return SignalUnreachable(msg, status)
    return SignalError(msg, permanent=True, status=status)


def _json(resp: httpx.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError as exc:
        raise SignalError(f"{what}: response is not JSON", permanent=True,
                          status=resp.status_code) from exc


def _parse_send(data: Any) -> SendResult:
    items = data if isinstance(data, list) else [data]  # newer releases: array; 0.100: object
    stamps = [i["timestamp"] for i in items if isinstance(i, dict) and "timestamp" in i]
    if not stamps:
        raise SignalError(f"send: unexpected reply {data!r:.200}", permanent=True, status=201)
    failed: list[dict[str, Any]] = []
    for item in items:
        errors = item.get("errors") if isinstance(item, dict) else None
        if isinstance(errors, dict):
            failed += [e for e in errors.get("recipients") or [] if isinstance(e, dict)]
    return SendResult(str(stamps[0]), failed)


class SignalClient:
    def __init__(self, base_url: str, number: str, http: httpx.AsyncClient | None = None,
                 timeout: float = 30, *, max_retry_wait: float = 5.0,
                 ping_interval: float | None = 20) -> None:
        self.base_url = base_url.rstrip("/")
        self.number = number
        self.timeout = timeout
        self.max_retry_wait = max_retry_wait  # GETs honour a 429 Retry-After up to this
        self.ping_interval = ping_interval
        self._owns_http = http is None
        # trust_env=False: never route the survivor's traffic through an ambient proxy
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)), trust_env=False)
        self._account = urlquote(number, safe="+")

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> SignalClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _request(self, method: str, path: str, what: str, *,
                       params: Mapping[str, str] | None = None, body: Any = None,
                       timeout: httpx.Timeout | None = None) -> httpx.Response:
        for attempt in (0, 1):
            try:
                resp = await self._http.request(
                    method, self.base_url + path, params=params, json=body,
                    timeout=timeout or httpx.USE_CLIENT_DEFAULT)
            except httpx.TimeoutException as exc:
                raise SignalUnreachable(f"{what}: timed out ({type(exc).__name__})") from exc
            except httpx.TransportError as exc:
                raise SignalUnreachable(f"{what}: {type(exc).__name__}: {exc}") from exc
            if resp.is_success:
                return resp
            err = _error_for(resp, what)
            # Only idempotent reads are retried: a repeated send could alert twice.
            if (method == "GET" and attempt == 0 and isinstance(err, SignalRateLimited)
                    and not err.permanent and err.retry_after is not None
                    and err.retry_after <= self.max_retry_wait):
                await asyncio.sleep(err.retry_after)
                continue
            raise err
        raise AssertionError("unreachable")

    async def about(self) -> dict[str, Any]:
        data = _json(await self._request("GET", "/v1/about", "about"), "about")
        if not isinstance(data, dict):
            raise SignalError(f"about: unexpected reply {data!r:.200}", permanent=True)
        return data

    async def health(self) -> bool:
        try:
            await self._request("GET", "/v1/health", "health")
        except SignalError:
            return False
        return True

    async def mode(self) -> str:
        mode = (await self.about()).get("mode")
        if mode not in MODES:
            raise SignalError(f"about: unknown mode {mode!r}", permanent=True)
        return str(mode)

    async def devices(self) -> list[dict[str, Any]]:
        """The account's linked devices (read-only; asks Signal's servers, so it fails
        with "Authorization failed" once this device was unlinked)."""
        data = _json(await self._request("GET", f"/v1/devices/{self._account}", "devices"),
                     "devices")
        if not isinstance(data, list):
            raise SignalError(f"devices: unexpected reply {data!r:.200}", permanent=True)
        return [d for d in data if isinstance(d, dict)]

    def _receive_params(self, ignore_attachments: bool) -> dict[str, str]:
        return {"ignore_attachments": "true" if ignore_attachments else "false",
                "ignore_stories": "true", "send_read_receipts": "false"}

    async def receive(self, timeout: int = 10, max_messages: int | None = None, *,
                      ignore_attachments: bool = False) -> list[dict[str, Any]]:
        """Normal/native mode: long-poll once. What is returned is acknowledged (gone)."""
        params = {"timeout": str(int(timeout)), **self._receive_params(ignore_attachments)}
        if max_messages is not None:
            params["max_messages"] = str(int(max_messages))
        limits = httpx.Timeout(self.timeout, read=self.timeout + timeout)
        resp = await self._request("GET", f"/v1/receive/{self._account}", "receive",
                                   params=params, timeout=limits)
        data = _json(resp, "receive")
        if isinstance(data, dict) and "envelope" in data:  # the swagger's (outdated) shape
            data = [data]
        if not isinstance(data, list) or not all(isinstance(i, dict) for i in data):
            raise SignalError(f"receive: unexpected reply {data!r:.200}", permanent=True)
        return data

    async def stream(self, *, ignore_attachments: bool = False, check_mode: bool = True,
                     on_open: Callable[[], None] | None = None
                     ) -> AsyncIterator[dict[str, Any]]:
        """json-rpc mode: yield each {envelope, account}; raise SignalUnreachable when the
        socket ends. Envelopes arriving while no socket is open are lost: reconnect fast.

        ``on_open`` is called once the socket is open: from then on nothing is lost, which a
        caller must know to end a reported gap without waiting for the next message."""
        if check_mode and (mode := await self.mode()) != "json-rpc":
            # a websocket GET on a normal-mode service would receive and discard messages
            raise SignalError(f"stream: service is in {mode!r} mode, not json-rpc",
                              permanent=True)
        url = (("ws" + self.base_url[4:]) if self.base_url.startswith("http") else
               self.base_url) + f"/v1/receive/{self._account}?"
        url += urlencode(self._receive_params(ignore_attachments))
        try:
            ws = await connect(url, open_timeout=self.timeout, ping_interval=self.ping_interval,
                               close_timeout=2, max_size=8 * 2**20, proxy=None)
        except InvalidStatus as exc:
            raise _error_for(httpx.Response(exc.response.status_code,
                                            content=bytes(exc.response.body or b"")),
                             "stream") from exc
        except InvalidURI as exc:
            raise SignalError(f"stream: {exc}", permanent=True) from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise SignalUnreachable(f"stream: {type(exc).__name__}: {exc}") from exc
        try:
            if on_open is not None:
                on_open()
            async for frame in ws:
                try:
                    item = json.loads(frame)
                except ValueError:
                    continue  # never tear down the socket over one odd frame
                if isinstance(item, dict):
                    yield item
            raise SignalUnreachable(f"stream: closed by the service ({ws.close_code})")
        except ConnectionClosed as exc:
            raise SignalUnreachable(f"stream: connection lost: {exc}") from exc
        finally:
            await ws.close()

    @staticmethod
    def _attachment_path(attachment_id: str) -> str:
        if attachment_id in ("", ".", "..") or any(c in attachment_id for c in "/\\?#%"):
            raise ValueError(f"suspicious attachment id {attachment_id!r}")
        return "/v1/attachments/" + urlquote(attachment_id, safe="")

    async def attachment(self, attachment_id: str, max_bytes: int) -> bytes:
        """Fetch an attachment, reading at most max_bytes (SignalTooLarge past that)."""
        url = self.base_url + self._attachment_path(attachment_id)
        what = f"attachment {attachment_id}"
        try:
            async with self._http.stream("GET", url,
                                         headers={"Accept-Encoding": "identity"}) as resp:
                if not resp.is_success:
                    await resp.aread()
                    raise _error_for(resp, what)
                declared = resp.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise SignalTooLarge(f"{what}: {declared} bytes > {max_bytes}")
                buf = bytearray()
                async for chunk in resp.aiter_bytes():
                    buf += chunk
                    if len(buf) > max_bytes:
                        raise SignalTooLarge(f"{what}: more than {max_bytes} bytes")
                return bytes(buf)
        except httpx.TimeoutException as exc:
            raise SignalUnreachable(f"{what}: timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise SignalUnreachable(f"{what}: {type(exc).__name__}: {exc}") from exc

    async def delete_attachment(self, attachment_id: str) -> bool:
        """Delete; False if it was already gone."""
        try:
            await self._request("DELETE", self._attachment_path(attachment_id),
                                f"delete attachment {attachment_id}")
        except SignalError as exc:
            if exc.status in (400, 404) and "no attachment" in exc.message.lower():
                return False
            raise
        return True

    async def groups(self) -> list[dict[str, Any]]:
        """The account's groups (GET /v1/groups/{number}): id, members and the rest."""
        data = _json(await self._request("GET", f"/v1/groups/{self._account}", "groups"),
                     "groups")
        if not isinstance(data, list) or not all(isinstance(g, dict) for g in data):
            raise SignalError(f"groups: unexpected reply {data!r:.200}", permanent=True)
        return data

    async def send(self, recipients: Sequence[str], message: str,
                   quote: Mapping[str, Any] | None = None) -> SendResult:
        """Send one text. Per-recipient failures come back in SendResult.failed (newer
        releases) or as a permanent SignalError (0.100, which may have reached others)."""
        if isinstance(recipients, str) or not recipients:
            raise ValueError("recipients must be a non-empty list")
        if self.number in recipients:
            raise ValueError("refusing to message the watched account itself")
        body: dict[str, Any] = {"message": message, "number": self.number,
                                "recipients": list(recipients), "text_mode": "normal"}
        for key, value in (quote or {}).items():
            if key not in _QUOTE_KEYS:
                raise ValueError(f"unknown quote field {key!r}; one of {sorted(_QUOTE_KEYS)}")
            body[_QUOTE_KEYS[key]] = value
        resp = await self._request("POST", "/v2/send", "send", body=body)
        return _parse_send(_json(resp, "send"))
