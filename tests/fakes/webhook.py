"""A webhook stand-in: what Apprise's json:// posts to, and a heartbeat endpoint.

Records every request (path, headers, body); `fail_next(n)` answers the next n with 500.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from aiohttp import web


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeWebhook:
    hits: list[Hit] = field(default_factory=list)
    failures: int = 0
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def fail_next(self, times: int) -> None:
        self.failures = times

    async def _any(self, request: web.Request) -> web.Response:
        self.hits.append(Hit(request.method, request.path, dict(request.headers),
                             await request.read()))
        if self.failures > 0:
            self.failures -= 1
            return web.Response(status=500, text="down for maintenance")
        return web.Response(status=200, text="ok")

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
