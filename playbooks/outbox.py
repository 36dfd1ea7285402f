"""The one place a message for a contact is queued.

Every message the watcher sends (an alert, an escalation, a drill reminder, a blind-watch
warning, a digest, a "could not be checked" notice, a test from the contacts' page) is queued
here, as one `outbox` row per address, inside the caller's transaction; the playbook runner
delivers the rows, each through the guard (playbooks/guard.py) just before it is sent. So
two rules hold in one place each:

- only configured contacts, at the addresses their config gives, are ever queued: a name
  that is not a contact, or an address that is not one of the contact's, is dropped here
  (a mistyped key in a playbook or a forged form field on the page queues nothing);
- nothing reaches a watched person's side: the guard refuses it at delivery, when the
  places a watched person has been seen in are as fresh as they can be.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from watcher.core.config import Config, NotifyStep, addresses
from watcher.core.store import Store

# (contact, channel) -> the text for that channel (an alert is rendered per channel, to fit
# each one's length limit); a plain string is the same text everywhere.
Text = str | Callable[[str, str], str]


def tell(config: Config, store: Store, contacts: Iterable[str], text: Text, kind: str,
         now: datetime, incident: int | None = None,
         only: tuple[str, str] | None = None) -> int:
    """Queue `text` for every address of every contact (or only the one `(channel,
    address)`); return how many rows were queued. Inside the caller's transaction."""
    queued = 0
    for contact in contacts:
        if contact not in config.contacts:
            continue
        for channel, address in addresses(config, contact):
            if only is not None and (channel, address) != only:
                continue
            body = text if isinstance(text, str) else text(contact, channel)
            store.enqueue(incident, contact, channel, address, body, now, kind)
            queued += 1
    return queued


def playbook_contacts(config: Config, playbook: str | None) -> list[str]:
    """Every contact a playbook's notify steps name, in a stable order."""
    book = config.playbooks.get(playbook or "")
    if book is None:
        return []
    return sorted({c for s in book.steps if isinstance(s, NotifyStep) for c in s.notify})
