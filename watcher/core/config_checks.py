"""Cross-checks of the config: what one section says about another.

Each check returns every problem it finds, named by its TOML key path and saying what to
do; the loader reports them all at once.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.core.config_schema import (
    TEMPLATE_FIELDS,
    Config,
    Contact,
    NotifyStep,
    WaitAckStep,
    parse_duration,
    working_channels,
)
from watcher.core.destinations import keys, side, url_keys, watched
from watcher.core.reaction_target import FORMS, canonical


def _known(kind: str, names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return f"known {kind}: {listed}" if listed else f"no {kind} are configured"


def _check_watcher(config: Config) -> list[str]:
    problems = []
    zones = [("watcher.timezone", config.watcher.timezone)] + [
        (f"people.{k}.timezone", p.timezone) for k, p in config.people.items() if p.timezone
    ]
    for where, zone in zones:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f'{where}: unknown time zone "{zone}"; use a name like Europe/London')
    try:
        if parse_duration(config.watcher.tick).total_seconds() < 1:
            problems.append("watcher.tick: must be at least 1s")
    except ValueError as exc:
        problems.append(f"watcher.tick: {exc}")
    for key in ("stale_after", "heartbeat_every", "keep_seen", "item_timeout"):
        try:
            if parse_duration(getattr(config.watcher, key)).total_seconds() < 1 and \
                    key == "item_timeout":  # 0s would pass every image unchecked
                problems.append(f"watcher.{key}: must be at least 1s")
        except ValueError as exc:
            problems.append(f"watcher.{key}: {exc}")
    return problems


def _check_codes(config: Config) -> list[str]:
    problems = []
    for key, code in config.codes.items():
        where = f"codes.{key}"
        if not config.exists("people", code.person):
            problems.append(f'{where}.person: no person "{code.person}"; '
                            f"{_known('people', config.declared.get('people', ()))}")
        kinds = code.detector_kinds()
        if len(kinds) != 1:
            problems.append(f"{where}: give exactly one of phrase, image, reaction or checkin "
                            f"(found {len(kinds)})")
        confirmer = any(c.confirm and c.confirm.code == key for c in config.codes.values())
        if code.stand_down and code.false_all_clear:
            problems.append(f"{where}: a code cannot be both stand_down and false_all_clear")
        if code.stand_down and code.playbook is not None:
            problems.append(f"{where}.playbook: a stand_down code ends incidents and tells "
                            "everyone who was alerted; it takes no playbook")
        if code.playbook is None and not (code.stand_down or confirmer):
            problems.append(f"{where}.playbook: required key is missing")
        elif code.playbook is not None and not config.exists("playbooks", code.playbook):
            problems.append(f'{where}.playbook: no playbook "{code.playbook}"; '
                            f"{_known('playbooks', config.declared.get('playbooks', ()))}")
        if code.reaction is not None and canonical(code.reaction.on) is None:
            problems.append(f'{where}.reaction.on: "{code.reaction.on}" is not a message, '
                            f"post or profile the watcher can recognise; give {FORMS}")
        if code.phrase is not None and not [p for p in code.phrase if p.strip()]:
            problems.append(f"{where}.phrase: list at least one non-empty phrase")
        for i, image in enumerate(code.image or []):
            if not config.resolve(image).is_file():
                problems.append(f"{where}.image[{i}]: reference photo {config.resolve(image)} "
                                "does not exist")
        if code.image is not None and not code.image:
            problems.append(f"{where}.image: list at least one reference photo")
        if code.confirm is not None and not config.exists("codes", code.confirm.code):
            problems.append(f'{where}.confirm.code: no code "{code.confirm.code}"; '
                            f"{_known('codes', config.declared.get('codes', ()))}")
        elif code.confirm is not None and code.confirm.code == key:
            problems.append(f"{where}.confirm.code: a code cannot confirm itself")
        if code.checkin is not None and (code.checkin.every is None) == (code.checkin.by is None):
            problems.append(f'{where}.checkin: give exactly one of every = "24h" or by = "10:00"')
    return problems


def _template_problems(where: str, template: str, fields: set[str], whose: str) -> list[str]:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return [f"{where}: template cannot be read ({exc}); write a literal brace as {{{{ or }}}}"]
    problems = []
    for name in dict.fromkeys(names):
        if name not in fields:
            problems.append(f"{where}: unknown field {{{name}}} {whose}; "
                            f"available: {', '.join('{' + f + '}' for f in sorted(fields))}")
    return problems


def _person_fields(config: Config, playbook: str) -> set[str]:
    """Fields every person whose codes use this playbook defines (any may be the one)."""
    people = [config.people[c.person] for c in config.codes.values()
              if c.playbook == playbook and c.person in config.people]
    if not people:
        return set()
    return set.intersection(*(set(p.fields) for p in people))


def _check_playbooks(config: Config) -> list[str]:
    problems = []
    for key, book in config.playbooks.items():
        base = set(TEMPLATE_FIELDS) | _person_fields(config, key)
        notifies: list[tuple[str, list[str], str, Mapping[str, str]]] = [
            (f"playbooks.{key}.steps[{i}]", s.notify, s.message, s.messages)
            for i, s in enumerate(book.steps) if isinstance(s, NotifyStep)
        ]
        if book.on_ack:
            notifies.append((f"playbooks.{key}.on_ack", book.on_ack.notify, book.on_ack.message,
                             {}))
        for where, who, message, per_contact in notifies:
            for j, contact in enumerate(who):
                if contact not in config.contacts:
                    if config.exists("contacts", contact):
                        continue
                    problems.append(f'{where}.notify[{j}]: no contact "{contact}"; '
                                    f"{_known('contacts', config.declared.get('contacts', ()))}")
                    continue
                text = per_contact.get(contact, message)
                which = f"messages.{contact}" if contact in per_contact else "message"
                fields = base | set(config.contacts[contact].fields)
                problems.extend(_template_problems(f"{where}.{which}", text, fields,
                                                   f"(for contact {contact})"))
            for contact in per_contact:
                if contact not in who:
                    problems.append(f"{where}.messages.{contact}: not in this step's notify list")
        for i, step in enumerate(book.steps):
            if isinstance(step, WaitAckStep) and step.repeat_from is not None:
                if step.repeat_from >= i:
                    problems.append(f"playbooks.{key}.steps[{i}].repeat_from: must point to an "
                                    f"earlier step (0 to {i - 1}; steps count from 0)")
                if step.times is None:
                    problems.append(f"playbooks.{key}.steps[{i}].times: required with "
                                    "repeat_from, so that a playbook can never loop forever")
        if not any(isinstance(s, NotifyStep) and s.notify for s in book.steps):
            problems.append(f"playbooks.{key}.steps: no step notifies anyone")
    return sorted(set(problems), key=problems.index)


def _check_reach(config: Config) -> list[str]:
    """A code whose playbook reaches nobody on a working channel would be a silent failure."""
    problems = []
    for key, code in config.codes.items():
        book = config.playbooks.get(code.playbook or "")
        if book is None:
            continue
        contacts = {c for s in book.steps if isinstance(s, NotifyStep) for c in s.notify}
        if not any(working_channels(config, config.contacts[c]) for c in contacts
                   if c in config.contacts) and all(c in config.contacts for c in contacts):
            problems.append(f"codes.{key}.playbook: playbook {code.playbook} reaches no contact "
                            "on a working channel; configure the contacts' connectors "
                            "([connectors.telegram], [connectors.signal]) or add apprise")
    return problems


def _check_connectors(config: Config) -> list[str]:
    problems = []
    for key, contact in config.contacts.items():
        for platform in ("telegram", "signal", "sms"):
            if getattr(contact, platform) and getattr(config.connectors, platform) is None:
                problems.append(f"contacts.{key}.{platform}: there is no [connectors.{platform}] "
                                f"section, so {contact.name} cannot be reached there")
        if contact.signal and (contact.signal.number is None) == (contact.signal.group is None):
            problems.append(f'contacts.{key}.signal: give exactly one of number = "+44..." or '
                            'group = "group.ID"')
        problems.extend(_signal_account_clash(config, key, contact))
        problems.extend(_signal_contact_uuid(config, key, contact))
    for key, person in config.people.items():
        if person.signal and not (person.signal.uuid or person.signal.number):
            problems.append(f"people.{key}.signal: give uuid (preferred) or number")
        if person.bluesky and (person.bluesky.handle is None) == (person.bluesky.did is None):
            problems.append(f"people.{key}.bluesky: give exactly one of handle or did")
    problems.extend(_check_sms(config))
    for where, value in _connector_durations(config):
        try:
            parse_duration(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return problems


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _signal_contact_uuid(config: Config, key: str, contact: Contact) -> list[str]:
    """i13-act: in a group only the uuid tells a contact's own messages from the others'."""
    signal = contact.signal
    if signal is None:
        return []
    if signal.uuid is None:
        if signal.group is not None:
            return [f"contacts.{key}.signal.uuid: {contact.name} is reached in a group, where "
                    "only their uuid tells their messages from other members' (see "
                    "docs/signal.md, How contacts answer)"]
        return []
    if not _UUID.fullmatch(signal.uuid.lower()):
        return [f"contacts.{key}.signal.uuid: not a Signal uuid (8-4-4-4-12 hex digits)"]
    for person_key, person in config.people.items():
        if person.signal and person.signal.uuid and \
                person.signal.uuid.lower() == signal.uuid.lower():
            return [f"contacts.{key}.signal.uuid: this is watched person {person_key}'s uuid"]
    return []


def _same_number(a: str, b: str) -> bool:
    return re.sub(r"[\s\-().]", "", a) == re.sub(r"[\s\-().]", "", b)


def _signal_account_clash(config: Config, key: str, contact: Contact) -> list[str]:
    """Signal alerts go out from [connectors.signal] number: never from a watched person's
    own account (they would show on their phone), never to the account itself."""
    section = config.connectors.signal
    if contact.signal is None or section is None:
        return []
    for pkey, person in config.people.items():
        if person.signal and person.signal.number and _same_number(person.signal.number,
                                                                   section.number):
            return [f"contacts.{key}.signal: [connectors.signal] number is watched person "
                    f"{pkey}'s own account, so alerts sent from it would show on their phone; "
                    "reach contacts by another channel (docs/signal.md)"]
    if contact.signal.number and _same_number(contact.signal.number, section.number):
        return [f"contacts.{key}.signal.number: this is [connectors.signal] number itself; a "
                "linked account cannot alert its own owner: give this contact another channel"]
    return []


def _connector_durations(config: Config) -> list[tuple[str, str]]:
    found = []
    c = config.connectors
    if c.telegram:
        found.append(("connectors.telegram.profile_photo_interval",
                      c.telegram.profile_photo_interval))
        found.append(("connectors.telegram.access_check_interval",
                      c.telegram.access_check_interval))
    if c.signal:
        found.append(("connectors.signal.poll_interval", c.signal.poll_interval))
    if c.bluesky:
        found.append(("connectors.bluesky.poll_interval", c.bluesky.poll_interval))
    if c.sms:
        found.extend((f"connectors.sms.{name}", getattr(c.sms, name))
                     for name in ("poll_interval", "health_interval", "stale_after"))
    if c.email:
        found.append(("connectors.email.poll_interval", c.email.poll_interval))
    return found


def _check_contacts(config: Config) -> list[str]:
    problems = []
    for key, contact in config.contacts.items():
        if not (contact.console or contact.telegram or contact.signal or contact.apprise
                or contact.sms):
            problems.append(f"contacts.{key}: no channel to reach {contact.name}; add telegram, "
                            "signal, apprise or console")
        problems.extend(_watched_addresses(config, key, contact))
    return problems


def _watched_addresses(config: Config, key: str, contact: Contact) -> list[str]:
    """Refuse an alert address that belongs to a watched person: it would tip off the abuser."""
    problems = []
    telegram = config.connectors.telegram
    if contact.telegram and telegram and contact.telegram.chat_id in telegram.chats:
        problems.append(f"contacts.{key}.telegram.chat_id: this is a watched chat "
                        "(connectors.telegram.chats); alerts must never go there")
    for pkey, person in config.people.items():
        if (contact.telegram and person.telegram
                and contact.telegram.chat_id == person.telegram.user_id):
            problems.append(f"contacts.{key}.telegram.chat_id: this is the private chat of "
                            f"watched person {pkey}; alerts must never go there")
        if (contact.telegram and person.telegram
                and contact.telegram.chat_id in person.telegram.channels):
            problems.append(f"contacts.{key}.telegram.chat_id: this is a channel of watched "
                            f"person {pkey}; alerts must never go there")
        if (contact.signal and person.signal and person.signal.number
                and contact.signal.number
                and keys(contact.signal.number) & keys(person.signal.number)):
            problems.append(f"contacts.{key}.signal.number: this is the number of watched "
                            f"person {pkey}; alerts must never go there")
    return problems


def _check_destinations(config: Config) -> list[str]:
    """What load can tell of a destination on the watched people's side (the send-time guard,
    playbooks/guard.py, checks every message again, with what the watcher has learnt)."""
    problems = []
    found = watched(config)
    for key, contact in config.contacts.items():
        if contact.telegram and contact.telegram.chat_id < 0:
            problems.append(
                f"contacts.{key}.telegram.chat_id: {contact.telegram.chat_id} is a group or "
                "channel; alerts go only to a contact's own private chat with the bot (their "
                "user id, a positive number). Anyone in a group may be, or may later become, "
                "on the watched person's side, and the watcher cannot see who reads it "
                "(docs/operations.md)")
        if contact.signal and contact.signal.group:
            owner = found.owner(keys(contact.signal.group))
            if owner is not None:
                problems.append(f"contacts.{key}.signal.group: this is an address of "
                                f"{side(config, owner)}; alerts must never go there")
        elif contact.signal and contact.signal.number:
            owner = found.owner(keys(contact.signal.number))
            if owner is not None and not _named_person_number(config, contact.signal.number):
                problems.append(f"contacts.{key}.signal.number: this is an address of "
                                f"{side(config, owner)}; alerts must never go there")
        if contact.sms and (owner := found.owner(keys(contact.sms.number))) is not None:
            problems.append(f"contacts.{key}.sms.number: this is a number of "
                            f"{side(config, owner)}; alerts must never go there")
        for i, url in enumerate(contact.apprise):
            if not isinstance(url, str):
                continue  # a secret: checked when it is resolved, at send (playbooks/guard.py)
            owner = found.owner(url_keys(url))
            if owner is not None:
                problems.append(f"contacts.{key}.apprise[{i}]: this URL sends to an address of "
                                f"{side(config, owner)}; alerts must never go there")
    return problems


def secret_destinations(config: Config, secrets: Mapping[str, str]) -> list[str]:
    """Apprise URLs given as secrets, checked once resolved; the URL is never repeated."""
    found = watched(config)
    problems = []
    for key, contact in config.contacts.items():
        for i, entry in enumerate(contact.apprise):
            url = secrets.get(f"contacts.{key}.apprise[{i}]")
            if isinstance(entry, str) or url is None:
                continue
            owner = found.owner(url_keys(url))
            if owner is not None:
                problems.append(f"contacts.{key}.apprise[{i}]: the URL in this secret sends to "
                                f"an address of {side(config, owner)}; alerts must never go "
                                "there")
    return problems


def _named_person_number(config: Config, number: str) -> bool:
    """Reported by _watched_addresses already (with its own wording)."""
    return any(p.signal and p.signal.number and keys(number) & keys(p.signal.number)
               for p in config.people.values())


def _check_email(config: Config) -> list[str]:
    """i15-email: plain IMAP only on this machine; a required pass needs whose pass."""
    section = config.connectors.email
    if section is None:
        return []
    problems = []
    if section.tls == "none" and section.host not in ("127.0.0.1", "::1", "localhost"):
        problems.append('connectors.email.tls: "none" sends the password in clear; it is '
                        'only allowed to 127.0.0.1; use "tls" or "starttls"')
    wanted = section.require_auth or any(
        p.email and p.email.require_auth for p in config.people.values())
    if wanted and not section.authserv_id:
        problems.append("connectors.email.authserv_id: require_auth needs the receiving "
                        "server's authserv-id (the first word of its Authentication-Results "
                        'header, e.g. "mx.example.org")')
    return problems


CHECKS: tuple[Callable[[Config], list[str]], ...] = (
    _check_watcher, _check_codes, _check_playbooks, _check_contacts, _check_connectors,
    _check_reach, _check_destinations, _check_email,
)


def _check_sms(config: Config) -> list[str]:
    """i15-sms: every number must read as a phone number (E.164, or local with a region),
    else a text from it could never be recognised."""
    from watcher.core.phones import e164  # phonenumbers: only imported when SMS is configured

    problems = []
    section = config.connectors.sms
    default = section.region if section else None
    for key, person in config.people.items():
        if person.sms is None:
            continue
        for i, number in enumerate(person.sms.numbers):
            if e164(number, person.sms.region or default) is None:
                problems.append(f"people.{key}.sms.numbers[{i}]: not a phone number; write it "
                                'as "+44..." or set people.' f"{key}.sms.region")
    for key, contact in config.contacts.items():
        if contact.sms and e164(contact.sms.number, default) is None:
            problems.append(f'contacts.{key}.sms.number: not a phone number; write it as "+44..."')
    if section and section.owner is not None and section.owner not in config.contacts:
        problems.append(f"connectors.sms.owner: {section.owner} is not a contact")
    return problems
