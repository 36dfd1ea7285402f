"""Replay connector: events from JSON-lines files, followed as they grow (like `tail -f`).

One JSON object per line with the Event fields; `images` are paths relative to the
file. The cursor is the byte offset after the last whole line, so a line still being
written is left for the next read and a restart resumes exactly where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watcher.core.config_schema import PLATFORMS
from watcher.core.errors import WatcherError
from watcher.core.models import EVENT_KINDS, Event, FileImage, parse_time

MAX_LINE_BYTES = 1_000_000
_FIELDS = {"platform", "person", "kind", "id", "at", "text", "alt", "images", "target", "emoji",
           "link", "edited", "removed"}


class EventFormatError(WatcherError, ValueError):
    """A line that is not a valid event; the message says what is wrong, never its content."""


@dataclass(frozen=True)
class Position:
    offset: int = 0
    line: int = 0

    def encode(self) -> str:
        return f"{self.offset} {self.line}"

    @classmethod
    def decode(cls, value: str | None) -> Position:
        if not value:
            return cls()
        offset, line = value.split()
        return cls(int(offset), int(line))


@dataclass(frozen=True)
class LineError:
    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def _text(obj: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise EventFormatError(f'missing "{key}"')
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise EventFormatError(f'"{key}" must be a string')
    return str(value)


def parse_event(obj: Any, base_dir: Path) -> Event:
    """Turn one decoded JSON line into an Event; raise EventFormatError saying why not."""
    if not isinstance(obj, dict):
        raise EventFormatError("a line must be a JSON object")
    unknown = set(obj) - _FIELDS
    if unknown:
        raise EventFormatError(f"unknown field(s): {', '.join(sorted(unknown))}")
    platform = _text(obj, "platform") or "replay"
    if platform not in PLATFORMS:
        # An unknown platform would never match a code limited to `platforms`, and a typo
        # ("telgram") would silently test nothing: refuse it, naming the ones there are.
        raise EventFormatError(f'"platform" must be one of {", ".join(PLATFORMS)}')
    kind = _text(obj, "kind") or "message"
    if kind not in EVENT_KINDS:
        raise EventFormatError(f'"kind" must be one of {", ".join(EVENT_KINDS)}')
    when = _text(obj, "at", required=True) or ""
    try:
        at = parse_time(when)
    except ValueError:
        raise EventFormatError('"at" must be an ISO-8601 time such as '
                               '2026-11-22T14:02:00Z') from None
    images = obj.get("images") or []
    alt = obj.get("alt") or []
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise EventFormatError('"images" must be a list of file paths')
    if not isinstance(alt, list) or not all(isinstance(i, str) for i in alt):
        raise EventFormatError('"alt" must be a list of strings')
    for flag in ("edited", "removed"):
        if not isinstance(obj.get(flag, False), bool):
            raise EventFormatError(f'"{flag}" must be true or false')
    return Event(
        platform=platform,
        person=_text(obj, "person", required=True) or "",
        kind=kind,
        id=_text(obj, "id", required=True) or "",
        at=at,
        text=_text(obj, "text") or "",
        alt=tuple(alt),
        images=tuple(FileImage((base_dir / p).resolve(), name=p) for p in images),
        target=_text(obj, "target"),
        emoji=_text(obj, "emoji"),
        link=_text(obj, "link"),
        edited=bool(obj.get("edited", False)),
        removed=bool(obj.get("removed", False)),
    )


def parse_line(raw: bytes, path: Path) -> Event:
    if len(raw) > MAX_LINE_BYTES:
        raise EventFormatError(f"line longer than {MAX_LINE_BYTES} bytes")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise EventFormatError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise EventFormatError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    return parse_event(obj, path.parent)


class ReplayFile:
    """Reads the whole lines added to one file since a position.

    `people`: the configured people's keys; a line for anyone else is a LineError (the one
    check `watcher run` and `watcher replay` share). None reads every person's lines."""

    def __init__(self, path: Path, people: Collection[str] | None = None) -> None:
        self.path = path.resolve()
        self.feed = f"replay:{self.path}"
        self.people = None if people is None else frozenset(people)

    def read(self, start: Position) -> Iterator[tuple[Event | LineError, Position]]:
        """Yield each new whole line as an Event or a LineError, with the position after it."""
        try:
            with self.path.open("rb") as handle:
                size = handle.seek(0, 2)
                if size < start.offset:
                    # Truncated or replaced: start again; dedupe keeps old lines from re-firing.
                    start = Position()
                handle.seek(start.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        position = start
        cut = data.rfind(b"\n")
        for raw in data[: cut + 1].splitlines(keepends=True):
            position = Position(position.offset + len(raw), position.line + 1)
            if not raw.strip():
                continue
            try:
                event = parse_line(raw.rstrip(b"\r\n"), self.path)
            except EventFormatError as exc:
                yield LineError(self.path, position.line, str(exc)), position
                continue
            if self.people is not None and event.person not in self.people:
                known = ", ".join(sorted(self.people)) or "none"
                problem = f'no person "{event.person}" in the config; known people: {known}'
                yield LineError(self.path, position.line, problem), position
                continue
            yield event, position
