"""Core types shared by every layer: events in, matches and incidents out.

This module imports none of the machinery (store, engine, connectors), so that
detectors and connectors can depend on it without pulling anything else in.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from watcher.core.errors import WatcherError

EVENT_KINDS = ("message", "reaction", "repost", "follow", "profile")


class ImageTooLarge(Exception):
    """An image exceeded the byte cap before it was read whole."""


class DetectionFailed(Exception):
    """A detector could not examine an event (an unreadable image): a failure, not a no."""


class ImageSource(Protocol):
    """Lazy, size-capped access to an event's image bytes.

    Connectors implement this so that detectors fetch only what they need and
    never read an unbounded body (a decompression bomb starts as a big file).
    """

    @property
    def name(self) -> str: ...

    def read(self, max_bytes: int) -> bytes:
        """Return the bytes, or raise ImageTooLarge once more than max_bytes arrive."""
        ...


@dataclass(frozen=True)
class FileImage:
    """An image stored in a local file (replay feeds, reference photos)."""

    path: Path
    name: str = ""

    def read(self, max_bytes: int) -> bytes:
        size = self.path.stat().st_size
        if size > max_bytes:
            raise ImageTooLarge(f"{self.name or self.path.name}: {size} bytes > {max_bytes}")
        return self.path.read_bytes()


@dataclass(frozen=True)
class BytesImage:
    """An image a connector already holds in memory."""

    data: bytes
    name: str = ""

    def read(self, max_bytes: int) -> bytes:
        if len(self.data) > max_bytes:
            raise ImageTooLarge(f"{self.name}: {len(self.data)} bytes > {max_bytes}")
        return self.data


@dataclass(frozen=True)
class Event:
    """One piece of a watched person's activity, as a connector saw it.

    `id` is stable and unique within the platform; `key` (platform:id) is the
    dedupe key, so an edited message must carry an id of its own edit.
    """

    platform: str
    person: str
    kind: str
    id: str
    at: datetime
    text: str = ""
    alt: tuple[str, ...] = ()
    images: tuple[ImageSource, ...] = ()
    target: str | None = None
    target_aliases: tuple[str, ...] = ()
    emoji: str | None = None
    link: str | None = None
    edited: bool = False
    removed: bool = False
    feed: str = ""
    # Where the person was seen: the chat, group or address the event happened in, as the
    # platform's send address (a Telegram chat id, a Signal group id or their own number).
    # Kept in the store: nothing is ever sent to a place where a watched person has been.
    places: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.id}"

    @property
    def feed_name(self) -> str:
        """The feed (person x platform, or a finer source) this event came from."""
        return self.feed or f"{self.person}/{self.platform}"


@dataclass(frozen=True)
class Match:
    """A code recognised in an event, with the evidence of why."""

    code: str
    person: str
    event_key: str
    event_id: str
    platform: str
    kind: str
    at: datetime
    score: float = 1.0
    evidence: Mapping[str, Any] = field(default_factory=dict)
    link: str | None = None


class IncidentState(enum.StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    STOOD_DOWN = "stood_down"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class Incident:
    id: int
    code: str
    person: str
    state: IncidentState
    opened_at: datetime
    drill: bool = False
    event_key: str | None = None
    link: str | None = None
    matched: str = ""
    event_at: datetime | None = None

    @property
    def used_at(self) -> datetime:
        """When the code was used (the event's time), which is what contacts need to know."""
        return self.event_at or self.opened_at


class DeliveryError(WatcherError):
    """A message could not be delivered; `permanent` when retrying cannot help."""


@dataclass(frozen=True)
class Response:
    """A registered contact's message, reaction or button press on a channel.

    Connectors build these only for registered contacts, recognised by a stable id (a
    Telegram user id, a Signal uuid): a stranger's message is dropped unread and never
    answered. `contact` is who spoke; `chat` is where, spelt as the outbox `address` of
    that channel (a Telegram chat id, a Signal number or group), because a platform's
    message ids (`reply_to`) are only unique within one chat. `group` marks a shared chat
    (a Signal contact group), where contacts also talk among themselves.
    """

    channel: str
    contact: str
    text: str = ""
    reply_to: str | None = None
    emoji: str | None = None
    incident: int | None = None
    chat: str | None = None
    group: bool = False


def parse_time(value: str) -> datetime:
    """Parse an ISO-8601 time; a time without a zone is taken as UTC."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
