"""The outside heartbeat: a dead home server is noticed by something that is not on it.

Pings `heartbeat_url` every `heartbeat_every` (healthchecks-style: a GET; when a watch is
blind, the `/fail` variant, which healthchecks.io and its self-hosted twin understand).
"""

from __future__ import annotations

import logging
from datetime import datetime

import httpx

from watcher.core.config import Config, SecretRef, parse_duration

log = logging.getLogger("watcher.heartbeat")


class Heartbeat:
    def __init__(self, config: Config) -> None:
        url = config.watcher.heartbeat_url
        self.url = config.secrets.get("watcher.heartbeat_url") if isinstance(url, SecretRef) \
            else url
        self.every = parse_duration(config.watcher.heartbeat_every)
        self.last: datetime | None = None
        self.down = False
        self._http: httpx.AsyncClient | None = None

    async def maybe_ping(self, now: datetime, healthy: bool) -> None:
        if not self.url or (self.last is not None and now - self.last < self.every):
            return
        self.last = now
        self._http = self._http or httpx.AsyncClient(timeout=10, trust_env=False)
        target = self.url if healthy else self.url.rstrip("/") + "/fail"
        try:
            response = await self._http.get(target)
            response.raise_for_status()
        except httpx.HTTPError as exc:
            if not self.down:  # log once when it goes down, once when it recovers
                log.warning("heartbeat ping failed (%s)", type(exc).__name__)
            self.down = True
            return
        if self.down:
            log.info("heartbeat ping works again")
        self.down = False

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
