"""What a reaction code's `on` names, in one spelling.

People copy links from apps in many spellings: with or without https:// or www., with
`?single` or a comment anchor, from inside a Telegram forum topic (`t.me/c/123/5/42`, the
topic id before the message id), through telegram.me. Comparing strings as written would
let a reaction code silently never fire; so both the configured `on` and every form the
connectors give for a reacted-to message are reduced to one canonical spelling here, and
`on` values that are none of the known forms are refused when the config loads.
"""

from __future__ import annotations

import re

FORMS = ("a Telegram message link (https://t.me/c/1234567890/42 or https://t.me/NAME/42), a "
         "Bluesky post or profile link (https://bsky.app/profile/HANDLE/post/ID), an at:// "
         "URI, a did:, or telegram:CHAT/MESSAGE or signal:AUTHOR/TIMESTAMP")

TELEGRAM_HOSTS = {"t.me", "telegram.me", "telegram.dog"}
_USERNAME = re.compile(r"[a-z][a-z0-9_]{3,31}")
_SCHEME = re.compile(r"^(?:https?://)?", re.IGNORECASE)


def canonical(value: str) -> str | None:
    """The one spelling of a reaction target, or None when it is not a form we know."""
    text = value.strip()
    lower = text.lower()
    if lower.startswith(("telegram:", "signal:")):
        scheme, _, rest = text.partition(":")
        author, slash, item = rest.strip().rpartition("/")
        return f"{scheme.lower()}:{author}/{item}" if slash and author and item else None
    if lower.startswith(("at://", "did:")):
        return text if " " not in text else None
    host, _, path = _SCHEME.sub("", text).partition("/")
    host = host.lower().removeprefix("www.")
    parts = [p for p in re.split(r"[?#]", path, maxsplit=1)[0].split("/") if p]
    if host in TELEGRAM_HOSTS:
        return _telegram(parts)
    if host == "bsky.app":
        return _bluesky(parts)
    return None


def _telegram(parts: list[str]) -> str | None:
    """t.me/c/CHAT/[TOPIC/]MESSAGE (private) or t.me/NAME/[TOPIC/]MESSAGE (public): the
    topic is dropped, because reactions do not say which topic their message is in."""
    if len(parts) < 2 or not all(p.isdigit() for p in parts[1:]):
        return None
    if parts[0] == "c" and len(parts) in (3, 4):
        return f"t.me/c/{parts[1]}/{parts[-1]}"
    name = parts[0].lower()
    if parts[0] != "c" and len(parts) in (2, 3) and _USERNAME.fullmatch(name):
        return f"t.me/{name}/{parts[-1]}"
    return None


def _bluesky(parts: list[str]) -> str | None:
    if len(parts) == 4 and parts[0] == "profile" and parts[2] == "post":
        return f"bsky.app/profile/{parts[1].lower()}/post/{parts[3]}"
    if len(parts) == 2 and parts[0] == "profile":
        return f"bsky.app/profile/{parts[1].lower()}"
    return None
