"""Pure translation: an SMS Gateway webhook or inbox row -> a text, its unique key, whose it is.

No I/O here. The key is what makes the app's copies of one text one event: a webhook, its
retries, its re-export, and the same text's row in GET /inbox (docs/sms.md, "messageId is a
32-bit hash, not an id").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from watcher.core.config_schema import Config
from watcher.core.models import Event, Response
from watcher.core.phones import e164

PLATFORM = "sms"
MAX_TEXT = 40_000  # 255 parts of 153 characters, the most a joined multipart text can be


class NotAText(ValueError):
    """A payload or row that is not a readable received text (said without its content)."""


@dataclass(frozen=True)
class Text:
    """One received text, as the app reports it."""

    sender: str  # as the network gave it (may be local form or a name)
    message: str
    at: datetime  # the network's timestamp, UTC
    sim: int | None

    @property
    def key(self) -> str:
        """Unique per text: sender as sent, the instant to the millisecond, the SIM slot and
        the whole text. The device id is left out: the inbox rows do not carry it, and one
        connector reads one phone."""
        millis = int(self.at.timestamp() * 1000)
        parts = [self.sender, str(millis), "" if self.sim is None else str(self.sim),
                 self.message]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def _time(value: object) -> datetime:
    if not isinstance(value, str) or not value or len(value) > 40:
        raise NotAText("no receivedAt")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise NotAText("receivedAt is not a time") from exc
    if parsed.tzinfo is None:
        raise NotAText("receivedAt has no offset")
    return parsed.astimezone(UTC)


def _sim(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise NotAText("simNumber is not a number")
    return value


def _text(sender: object, message: object, at: object, sim: object) -> Text:
    if not isinstance(sender, str) or not sender or len(sender) > 64:
        raise NotAText("no sender")
    if not isinstance(message, str) or len(message) > MAX_TEXT:
        raise NotAText("no message")
    return Text(sender, message, _time(at), _sim(sim))


def from_webhook(data: object) -> Text | None:
    """The text of an `sms:received` webhook; None for another event (not ours to read).
    Raises NotAText for a body that claims to be one and is not readable."""
    if not isinstance(data, Mapping):
        raise NotAText("the body is not a JSON object")
    event = data.get("event")
    if not isinstance(event, str):
        raise NotAText("no event name")
    if event != "sms:received":
        return None
    payload = data.get("payload")
    if not isinstance(payload, Mapping):
        raise NotAText("no payload")
    return _text(payload.get("sender"), payload.get("message"), payload.get("receivedAt"),
                 payload.get("simNumber"))


def from_inbox(row: object) -> Text | None:
    """The text of a GET /inbox row (`contentPreview` is the whole body of an SMS); None for
    other kinds (MMS, data)."""
    if not isinstance(row, Mapping):
        raise NotAText("an inbox row is not an object")
    if row.get("type") != "SMS":
        return None
    return _text(row.get("sender"), row.get("contentPreview"), row.get("createdAt"),
                 row.get("simNumber"))


@dataclass(frozen=True)
class Directory:
    """Whose number is whose, in E.164."""

    people: Mapping[str, str]  # E.164 -> person key
    contacts: Mapping[str, str]  # E.164 -> contact key
    regions: tuple[str | None, ...]  # every region a local-form sender is read with

    @classmethod
    def from_config(cls, config: Config) -> Directory:
        section = config.connectors.sms
        default = section.region if section else None
        people: dict[str, str] = {}
        regions: list[str | None] = [default]
        for key, person in config.people.items():
            if person.sms is None:
                continue
            region = person.sms.region or default
            regions.append(region)
            for number in person.sms.numbers:
                if (found := e164(number, region)) is not None:
                    people.setdefault(found, key)
        contacts = {found: key for key, contact in config.contacts.items()
                    if contact.sms and (found := e164(contact.sms.number, default))}
        return cls(people, contacts, tuple(dict.fromkeys(regions)))

    def forms(self, sender: str) -> list[str]:
        """Every E.164 reading of a sender (one per region for a local-form number)."""
        return list(dict.fromkeys(f for r in self.regions if (f := e164(sender, r))))

    def person_of(self, sender: str) -> str | None:
        return next((self.people[f] for f in self.forms(sender) if f in self.people), None)

    def contact_of(self, sender: str) -> str | None:
        # A number that is also a watched person's is theirs, never a contact's.
        if self.person_of(sender) is not None:
            return None
        return next((self.contacts[f] for f in self.forms(sender) if f in self.contacts), None)

    def is_watched(self, number: str) -> bool:
        return self.person_of(number) is not None


def event_of(text: Text, person: str) -> Event:
    """A watched person's text as an Event; their number as sent is a place of theirs (the
    send guard then refuses it in whatever form the network wrote it)."""
    return Event(platform=PLATFORM, person=person, kind="message", id=text.key, at=text.at,
                 text=text.message, feed=f"{person}/{PLATFORM}", places=(text.sender,))


def response_of(text: Text, contact: str, config: Config) -> Response | None:
    """A configured contact's reply ("OK", "/ack 3"); answers go to their configured number."""
    found = config.contacts.get(contact)
    if found is None or found.sms is None or not text.message.strip():
        return None
    # group=True: the phone is a person's own, and contacts text its owner about other
    # things too; like in a shared chat, only commands and acks get an answer, chatter
    # gets silence.
    return Response(PLATFORM, contact, text=text.message, chat=found.sms.number, group=True)


def describe(exc: Exception) -> str:
    """A failure named without the content it was about (for logs)."""
    return str(exc) if isinstance(exc, NotAText) else type(exc).__name__
