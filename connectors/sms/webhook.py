"""The `sms:received` webhook: verify, commit, then (and only then) answer 200.

The signature is the app's (PayloadSingingPlugin.kt): X-Signature is the hex HMAC-SHA256 of
the raw body followed by the X-Timestamp string, under the signing key. Anything unsigned,
forged, tampered with or more than 5 minutes from our clock is refused with 401 before the
body is read as JSON; only the reason is logged. A retried or replayed delivery of a stored
text is answered 200 again and does nothing more (the text's key dedupes it).

Answers: 200 the text is stored (or is not a text: another event, a stranger's text, handled
reply); 400 a signed body we cannot read (the app retries; it is logged); 401 not from the
phone; 413 too big; 503 the text could not be stored (the app retries).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from connectors.sms.translate import NotAText, Text, describe, from_webhook

log = logging.getLogger("watcher.sms")
MAX_BODY = 256 * 1024  # a joined text is at most a few tens of kB of JSON
WINDOW = 300  # seconds either side of our clock (the app's docs advise ±5 minutes)


def signature(key: str, body: bytes, timestamp: str) -> str:
    return hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()


def refusal(key: str, body: bytes, timestamp: str | None, given: str | None,
            now: float) -> str | None:
    """Why a request is not the phone's (a reason for the log, no content), or None."""
    if not key:
        return "no signing key configured"
    if not timestamp or not given:
        return "unsigned request"
    if not timestamp.isdigit() or len(timestamp) > 12:
        return "bad X-Timestamp"
    if abs(now - int(timestamp)) > WINDOW:
        return "stale or future X-Timestamp"
    if not hmac.compare_digest(signature(key, body, timestamp).encode(),
                               given.strip().lower().encode()):
        return "bad signature"
    return None


class WebhookHandler:
    """`store(text)` commits a text (through the Sink) and returns once it is durable."""

    def __init__(self, key: str, store: Callable[[Text], Awaitable[None]],
                 clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self.store = store
        self.clock = clock

    async def __call__(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            log.warning("SMS webhook refused: body too large")
            return web.Response(status=413)
        try:
            body = await request.content.read(MAX_BODY + 1)
        except (OSError, ValueError):
            return web.Response(status=400)
        if len(body) > MAX_BODY:
            log.warning("SMS webhook refused: body too large")
            return web.Response(status=413)
        why = refusal(self.key, body, request.headers.get("X-Timestamp"),
                      request.headers.get("X-Signature"), self.clock())
        if why is not None:
            log.warning("SMS webhook refused (401): %s", why)
            return web.Response(status=401)
        try:
            text = from_webhook(json.loads(body))
        except (ValueError, RecursionError) as exc:
            reason = describe(exc) if isinstance(exc, NotAText) else "not JSON"
            log.warning("SMS webhook signed but unreadable (400): %s", reason)
            return web.Response(status=400)
        if text is None:
            return web.Response(status=200)  # another event type: nothing to watch in it
        try:
            await self.store(text)
        except Exception as exc:  # not stored: the app must retry, so never a 200
            log.warning("SMS webhook could not be stored (503): %s", type(exc).__name__)
            return web.Response(status=503)
        return web.Response(status=200)
