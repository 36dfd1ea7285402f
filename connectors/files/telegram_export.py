"""Events from a Telegram Desktop chat export (`result.json`), for `watcher audit`.

Telegram Desktop's "Export chat history" (JSON) writes one object with a `messages`
list; a message's `text` is a string or a list of strings and `{type, text}` entities.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from watcher.core.errors import WatcherError
from watcher.core.models import Event, FileImage, parse_time


class ExportFormatError(WatcherError, ValueError):
    pass


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p if isinstance(p, str) else str(p.get("text", "")) for p in value
                       if isinstance(p, str | dict))
    return ""


def is_export(path: Path) -> bool:
    return path.suffix == ".json"


def read_export(path: Path, people_by_user: Mapping[int, str]) -> Iterator[Event]:
    """The export's messages as events of the people they belong to; the file is read and
    its format checked here (ExportFormatError), before the first event is asked for.

    A chat export holds everyone's messages, so a message is someone's only by its sender's
    user id (`from_id`): counting a contact's messages as the watched person's would make an
    audit call a code noisy (or quiet) on someone else's words."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportFormatError(f"{path}: not a Telegram Desktop JSON export "
                                f"({type(exc).__name__})") from None
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list):
        raise ExportFormatError(f'{path}: no "messages" list; export the chat as JSON')
    return _events(path, data.get("id", "chat"), messages, people_by_user)


def _events(path: Path, chat: Any, messages: list[Any],
            people_by_user: Mapping[int, str]) -> Iterator[Event]:
    for message in messages:
        if not isinstance(message, dict) or message.get("type") != "message":
            continue
        person = _person(message, people_by_user)
        if person is None:
            continue
        images = tuple(FileImage(path.parent / str(message[key]), name=str(message[key]))
                       for key in ("photo",) if isinstance(message.get(key), str))
        try:
            at = parse_time(str(message.get("date", "")))
        except ValueError:
            continue
        yield Event(platform="telegram", person=person, kind="message",
                    id=f"export:{chat}/{message.get('id')}", at=at,
                    text=_text(message.get("text")), images=images,
                    edited="edited" in message)


def _person(message: Mapping[str, Any], people_by_user: Mapping[int, str]) -> str | None:
    sender = str(message.get("from_id", ""))
    if sender.startswith("user") and sender[4:].isdigit():
        return people_by_user.get(int(sender[4:]))
    return None
