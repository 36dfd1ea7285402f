"""The small interface every platform connector implements, and what the app gives it.

A connector turns a platform into Events (and, where it can send, delivers alerts and
reports contacts' responses). It never imports the engine, detectors or playbooks: it
talks to the app through the Sink below.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiohttp import web

from watcher.core.channel import Channel
from watcher.core.errors import WatcherError
from watcher.core.models import Event, Response


class ConnectorError(WatcherError):
    """A connector cannot work. `permanent` (a bad login, a removed device) needs a person;
    otherwise (service unreachable) it will be retried."""


class Sink(Protocol):
    """What the app offers a connector."""

    async def event(self, event: Event, cursor: tuple[str, str] | None = None) -> None:
        """Process and durably store an event (and the cursor past it) before returning.

        Only after this returns may a connector acknowledge the event to its platform.
        """
        ...

    def response(self, response: Response) -> str | None:
        """Hand over a registered contact's response; returns a reply for them, if any."""
        ...

    def cursor(self, feed: str) -> str | None:
        """The stored cursor of a feed (None before the first read)."""
        ...

    def save_cursor(self, feed: str, value: str) -> None:
        """Store a cursor that moved without an event (e.g. only strangers' updates)."""
        ...

    def unreadable(self, platform: str, item: str, problem: str, person: str | None = None,
                   link: str | None = None) -> None:
        """An item the connector could not read at all (the SDK refused it, a malformed
        envelope or record): recorded as "could not be checked" and told to the contacts,
        before the connector moves past it. `item` names it on its platform (an update id, a
        record key) and `problem` the cause; never the item's content. `person` when known.
        """
        ...

    def feed_ok(self, feed: str) -> None:
        """A read of a feed that completed: everything it returned was handled and stored
        (supervision: the watch is not blind). Not a check made at start or on connect: the
        app ignores what a connector reports as fine while it starts, because a restart is
        not a recovery."""
        ...

    def place_seen(self, platform: str, place: str, person: str) -> None:
        """A watched person is in this chat, group or address: nothing is sent there."""
        ...

    def feed_failed(self, feed: str, problem: str, permanent: bool = False) -> None:
        """A failed read or a blind spot (missing right, revoked token, websocket gap).

        `problem` must say what is wrong and what to do, and never contain message text.
        """
        ...


class Connector(Protocol):
    """One platform. `name` is the channel name its alerts use (telegram, signal...)."""

    name: str

    def feeds(self) -> list[str]:
        """The feeds (person x platform) this connector watches, for supervision."""
        ...

    async def start(self, sink: Sink) -> None:
        """Check the connection and what can be seen; raise ConnectorError if it cannot work."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Receive until `stop` is set, reconnecting by itself after temporary failures."""
        ...

    async def poll_once(self) -> int:
        """Read what is available now, hand it to the sink, return how many events (--once)."""
        ...

    async def close(self) -> None: ...

    def channel(self) -> Channel | None:
        """The channel this connector delivers alerts through (itself, for Telegram, Signal
        and SMS), or None for a connector that only reads."""
        ...

    def web_routes(self) -> list[web.RouteDef]:
        """Routes this connector serves on the contacts' page's listener (an SMS gateway's
        webhook), or [] when it needs none."""
        ...
