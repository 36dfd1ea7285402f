"""Alert texts: the configured template filled with an incident's fields.

Fields are substituted as plain values, never interpreted again, so survivor text that
contains braces, `%s`, HTML or Markdown reaches the contact verbatim. What the survivor
wrote is cleaned first (`clean_survivor_text`): a right-to-left override or a run of
newlines must not make an alert say something it does not. Every alert fits its channel
(`LIMITS`): the quoted survivor text is shortened, with an ellipsis, never the alert lost.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from watcher.core.config import Config
from watcher.core.models import Incident

ELLIPSIS = "…"
# Fields whose value comes from what the survivor posted (not from the config).
SURVIVOR_FIELDS = ("matched", "link")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Limit:
    """The longest message a channel delivers whole, counted in its own unit."""

    size: int
    unit: str  # "utf16": UTF-16 code units (Telegram); "utf8": bytes

    def measure(self, text: str) -> int:
        if self.unit == "utf16":
            return len(text.encode("utf-16-le")) // 2
        return len(text.encode("utf-8"))


# Telegram: 4096 characters per message (counted here in UTF-16 units, which is never
# fewer). Signal: clients drop a body over 2 KiB of UTF-8, and signal-cli cuts at 2000
# bytes. Apprise reaches services from SMS gateways to e-mail: a conservative 1000 bytes
# that every notification service takes whole. The console has no limit.
LIMITS: dict[str, Limit] = {"telegram": Limit(4096, "utf16"), "signal": Limit(2000, "utf8"),
                            "apprise": Limit(1000, "utf8")}


def clean_survivor_text(value: str) -> str:
    """Survivor text as one plain line: no bidi overrides or isolates, zero-width or other
    invisible format characters, no control characters; newlines and runs of spacing
    become one space. (Emoji joined by a zero-width joiner come apart: a small price.)"""
    kept = []
    for char in value:
        kind = unicodedata.category(char)
        if kind in ("Cf", "Cs", "Co", "Cn") and not char.isspace():
            continue  # invisible or unassigned: shown as nothing, or as anything
        kept.append(" " if kind.startswith(("C", "Z")) else char)
    return _SPACES.sub(" ", "".join(kept)).strip()


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        # Unknown fields are refused at load; this only guards a field left empty.
        return ""


_Fill = Callable[[Mapping[str, str]], str]


def incident_fields(config: Config, incident: Incident, when: datetime | None = None
                    ) -> dict[str, str]:
    person = config.people.get(incident.person)
    zone = config.person_zone(incident.person) if person else ZoneInfo("UTC")
    local = (when or incident.used_at).astimezone(zone)
    fields = dict(person.fields) if person else {}
    fields.update({
        "person": person.name if person else incident.person,
        "code": incident.code,
        "time": local.strftime("%H:%M %Z"),
        "date": local.strftime("%a %d %b %Y"),
        "link": clean_survivor_text(incident.link or "") or "no link",
        "matched": clean_survivor_text(incident.matched),
        "platform": (incident.event_key or "").split(":", 1)[0],
        "incident": str(incident.id),
        "drill": "DRILL" if incident.drill else "",
    })
    return fields


def render(template: str, fields: Mapping[str, str], contact_key: str, config: Config,
           extra: Mapping[str, str] | None = None, channel: str | None = None,
           prefix: str = "") -> str:
    """The text for one contact; with `channel`, shortened to fit that channel's limit."""
    contact = config.contacts[contact_key]
    values = _Values(fields)
    values.update(contact.fields)
    values["contact"] = contact.name
    values.update(extra or {})
    limit = LIMITS.get(channel or "")

    def fill(shorter: Mapping[str, str]) -> str:
        return prefix + string.Formatter().vformat(template, (), _Values({**values, **shorter}))

    text = fill({})
    if limit is None or limit.measure(text) <= limit.size:
        return text
    return _fit(fill, values.get("matched", ""), limit)


def _fit(fill: _Fill, matched: str, limit: Limit) -> str:
    """The longest start of the quoted text that lets the alert fit (found by bisection:
    the length only grows with the quote); if even an empty quote is too long (a huge
    template), the alert itself is cut."""
    low, high = 0, len(matched)
    while low < high:
        middle = (low + high + 1) // 2
        if limit.measure(fill({"matched": matched[:middle] + ELLIPSIS})) <= limit.size:
            low = middle
        else:
            high = middle - 1
    text = fill({"matched": matched[:low] + ELLIPSIS if matched else ""})
    if limit.measure(text) <= limit.size:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if limit.measure(text[:middle] + ELLIPSIS) <= limit.size:
            low = middle
        else:
            high = middle - 1
    return text[:low] + ELLIPSIS
