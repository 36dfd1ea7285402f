"""Who a destination would reach: the addresses of watched people, compared one way.

Pure functions over the config (no store, no I/O), shared by the load-time checks
(watcher/core/config_checks.py) and the send-time guard (playbooks/guard.py), so that "this is
Sam's address" means the same thing at load and at the moment of sending.

Every address is reduced to *keys*: lower-cased text without a leading "@" (ids, uuids,
handles, dids, e-mail addresses, group ids), and for anything that looks like a phone
number the last nine digits ("tel:..."), so "+44 7700 900123", "447700900123" and the UK
national "07700 900123" are one phone. Nine digits compares numbers written in national or
international form without knowing the country; two different phones sharing their last nine
digits would be refused too, which is the safe way to be wrong.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import unquote

from watcher.core.config_schema import Config, Person

# A person key for addresses that are watched but belong to nobody in particular
# (connectors.telegram.chats).
ANYONE = ""
_PHONE = re.compile(r"\+?\(?\d[\d\s\-().]{5,}\d")
_PHONE_DIGITS = 9
# What separates the parts of a URL; an e-mail address or a handle stays whole.
_URL_SPLIT = re.compile(r"[/?&=,;#\s:|\[\]<>\"']+")


def phone_key(text: str) -> str | None:
    """The key of a phone number, or None when the text is not one (at least 7 digits)."""
    stripped = text.strip()
    if stripped.startswith("-") or not _PHONE.fullmatch(stripped):
        return None
    digits = re.sub(r"\D", "", stripped)
    if len(digits) < 7:
        return None
    return "tel:" + digits[-_PHONE_DIGITS:]


def keys(address: str, phone: bool = True) -> set[str]:
    """Every key an address is known by (see the module docstring). `phone=False` for an
    address that is never a phone number (a Telegram id), so it cannot collide with one."""
    text = unquote(address).strip().lower()
    found = {text, text.lstrip("@")} - {""}
    if phone and (number := phone_key(text)) is not None:
        found.add(number)
    if text.startswith("mailto:"):
        found |= keys(text.removeprefix("mailto:"))
    return found


def url_keys(url: str, extra: Iterable[str] = ()) -> set[str]:
    """The keys of every part of a URL that could name a person (an Apprise URL's targets,
    user, host, query values), plus `extra` strings a URL parser found in it."""
    text = unquote(url).strip()
    _, sep, rest = text.partition("://")
    if not sep:
        _, _, rest = text.partition(":")  # mailto:sam@example.com
    found: set[str] = set()
    for part in [*_URL_SPLIT.split(rest), *extra]:
        if not part:
            continue
        found |= keys(part)
        if "@" in part:  # user:password@host, a number "@" a gateway
            for piece in part.split("@"):
                found |= keys(piece)
    for number in _PHONE.findall(rest):
        if (phone := phone_key(number)) is not None:
            found.add(phone)
    return found


@dataclass(frozen=True)
class Watched:
    """Every key that must never receive anything, with whose it is."""

    owners: Mapping[str, str]  # key -> person key (ANYONE for watched chats)

    def owner(self, candidate_keys: Iterable[str]) -> str | None:
        for key in sorted(candidate_keys):
            if key in self.owners:
                return self.owners[key]
        return None

    def including(self, places: Iterable[tuple[str, str, str]]) -> Watched:
        """These and learned (platform, address, person) places."""
        owners = dict(self.owners)
        for platform, address, person in places:
            for key in keys(address, phone=platform != "telegram"):
                owners.setdefault(key, person)
        return Watched(owners)


def person_addresses(person: Person) -> Iterator[tuple[str, str]]:
    """(address, TOML key under people.X) of everything configured that reaches the person."""
    if person.telegram:
        yield str(person.telegram.user_id), "telegram.user_id"
        for i, channel in enumerate(person.telegram.channels):
            yield str(channel), f"telegram.channels[{i}]"
    if person.signal:
        if person.signal.number:
            yield person.signal.number, "signal.number"
        if person.signal.uuid:
            yield person.signal.uuid, "signal.uuid"
    if person.bluesky:
        if person.bluesky.handle:
            yield person.bluesky.handle, "bluesky.handle"
        if person.bluesky.did:
            yield person.bluesky.did, "bluesky.did"
    if person.sms:
        for i, number in enumerate(person.sms.numbers):
            yield number, f"sms.numbers[{i}]"
    if person.email:
        for i, address in enumerate(person.email.addresses):
            yield address, f"email.addresses[{i}]"
    for i, address in enumerate(person.addresses):
        yield address, f"addresses[{i}]"


def watched(config: Config) -> Watched:
    """What the config alone says is on the watched people's side."""
    owners: dict[str, str] = {}
    for key, person in config.people.items():
        for address, where in person_addresses(person):
            for found in keys(address, phone=not where.startswith("telegram.")):
                owners.setdefault(found, key)
    section = config.connectors.telegram
    for chat in section.chats if section else []:
        owners.setdefault(str(chat), ANYONE)  # str(int): its only key
    return Watched(owners)


def side(config: Config, person: str) -> str:
    """How a refusal names whose side a destination is on (a name, never an address)."""
    found = config.people.get(person)
    return f"{found.name}'s side" if found else "a watched person's side"
