"""The SMS Gateway for Android local-server API over httpx (docs/sms.md, "Local server").

Only what the watcher needs: health, the inbox (gap fill), an inbox refresh, sending, and
registering its own webhook. Errors carry the HTTP status and never a body (a body could
hold a number or a text).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from watcher.core.errors import WatcherError

INBOX_PAGE = 500  # the app's maximum `limit`
TIMEOUT = 20.0


class GatewayError(WatcherError):
    """A call failed. `permanent` (refused credentials, not this app) needs a person."""

    def __init__(self, message: str, permanent: bool = False, status: int | None = None
                 ) -> None:
        super().__init__(message, permanent)
        self.status = status


def iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


class GatewayClient:
    """One phone's local server. Give `http` to share or stand in a transport in tests."""

    def __init__(self, url: str, username: str, password: str,
                 http: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = http or httpx.AsyncClient(timeout=TIMEOUT)
        self._auth = httpx.BasicAuth(username, password)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, *, auth: bool = True,
                    **kwargs: Any) -> httpx.Response:
        try:
            resp = await self._http.request(method, self.url + path,
                                            auth=self._auth if auth else None, **kwargs)
        except httpx.TimeoutException as exc:
            raise GatewayError(f"{method} {path}: timed out") from exc
        except httpx.HTTPError as exc:
            raise GatewayError(f"{method} {path}: {type(exc).__name__}") from exc
        if resp.status_code in (401, 403):
            raise GatewayError(f"{method} {path}: the phone refused the user name or password "
                               f"(HTTP {resp.status_code})", permanent=True,
                               status=resp.status_code)
        return resp

    def _json(self, resp: httpx.Response, what: str) -> Any:
        try:
            return resp.json()
        except ValueError as exc:
            raise GatewayError(f"{what}: the answer is not JSON; is [connectors.sms] url the "
                               "SMS Gateway app?", status=resp.status_code) from exc

    async def health(self) -> str:
        """"pass", "warn" or "fail" (the app answers 500 with a body on "fail")."""
        resp = await self._call("GET", "/health", auth=False)
        if resp.status_code not in (200, 500):
            raise GatewayError(f"GET /health: HTTP {resp.status_code}", status=resp.status_code)
        body = self._json(resp, "GET /health")
        status = body.get("status") if isinstance(body, dict) else None
        if status not in ("pass", "warn", "fail"):
            raise GatewayError("GET /health: no status in the answer")
        return str(status)

    async def refresh(self, since: datetime, until: datetime) -> None:
        """Make the app read Android's SMS store for the period (texts it never saw, e.g.
        while it was killed) into its inbox, without webhooks."""
        resp = await self._call("POST", "/inbox/refresh",
                                json={"since": iso(since), "until": iso(until)})
        if resp.status_code >= 300:
            raise GatewayError(f"POST /inbox/refresh: HTTP {resp.status_code}",
                               status=resp.status_code)

    async def inbox(self, since: datetime, until: datetime) -> list[Any]:
        """Every received SMS row in the period, all pages."""
        rows: list[Any] = []
        while True:
            resp = await self._call("GET", "/inbox", params={
                "type": "SMS", "from": iso(since), "to": iso(until),
                "limit": str(INBOX_PAGE), "offset": str(len(rows))})
            if resp.status_code != 200:
                raise GatewayError(f"GET /inbox: HTTP {resp.status_code}",
                                   status=resp.status_code)
            page = self._json(resp, "GET /inbox")
            if not isinstance(page, list):
                raise GatewayError("GET /inbox: the answer is not a list")
            rows.extend(page)
            total = resp.headers.get("X-Total-Count", "")
            if not page or len(page) < INBOX_PAGE or (total.isdigit() and len(rows) >= int(total)):
                return rows

    async def send(self, message_id: str, number: str, text: str) -> str:
        resp = await self._call("POST", "/message", json={
            "id": message_id, "textMessage": {"text": text}, "phoneNumbers": [number],
            "withDeliveryReport": True})
        if resp.status_code == 409:
            return message_id  # this id is already in the phone's database: sent before
        if resp.status_code >= 300:
            raise GatewayError(f"POST /message: HTTP {resp.status_code}",
                               permanent=resp.status_code == 400, status=resp.status_code)
        body = self._json(resp, "POST /message")
        return str(body.get("id") or message_id) if isinstance(body, dict) else message_id

    async def ensure_webhook(self, url: str) -> None:
        """Register the watcher's `sms:received` webhook unless it is there already."""
        resp = await self._call("GET", "/webhooks")
        hooks = self._json(resp, "GET /webhooks") if resp.status_code == 200 else None
        if not isinstance(hooks, list):
            raise GatewayError(f"GET /webhooks: HTTP {resp.status_code}",
                               status=resp.status_code)
        if any(isinstance(h, dict) and h.get("url") == url and h.get("event") == "sms:received"
               for h in hooks):
            return
        resp = await self._call("POST", "/webhooks", json={"url": url, "event": "sms:received"})
        if resp.status_code >= 300:
            raise GatewayError(f"POST /webhooks: HTTP {resp.status_code} (the app takes only "
                               "https:// or http://127.0.0.1 URLs)", permanent=True,
                               status=resp.status_code)
