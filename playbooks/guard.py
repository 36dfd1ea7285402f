"""The one guard every outgoing message passes, at the moment of sending.

A destination is refused when it is a watched person's configured address (any platform's
id, number, uuid, handle, did or other address), a watched chat, or a chat, group or address
in which a watched person has ever been seen (the store's `places`, learnt from events).
Load-time checks (watcher/core/config_checks.py) refuse what the config alone shows; this guard
also sees what only running shows (Sam given by uuid, whose number a contact was given; a
contact group Sam writes in), and URLs held as secrets. Every channel is checked here, in one
place, by the runner (`PlaybookRunner._deliver`), the database-failure notice
(watcher/supervision/failsafe.py) and the answers to contacts (watcher/app.py); only the
console channel, which prints on the watcher's own terminal, is exempt.
"""

from __future__ import annotations

import logging
import sqlite3

from playbooks.channels import apprise_url
from watcher.core.config import Config, addresses
from watcher.core.destinations import Watched, keys, side, url_keys, watched
from watcher.core.store import Store, StoreError

log = logging.getLogger("watcher.guard")
EXEMPT = frozenset({"console"})  # the watcher's own terminal reaches no one's phone


def apprise_parts(url: str) -> list[str]:
    """What Apprise itself makes of a URL's targets (e-mail recipients, chat ids, phone
    numbers), so a target spelt in a way our own split misses is still compared."""
    import apprise  # heavy import, only when a contact uses it

    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    except Exception:  # a URL Apprise cannot read sends nothing either
        return []
    if not plugin:
        return []
    found: list[str] = []
    for name in ("targets", "user", "host", "email", "from_addr", "to", "source"):
        _flatten(getattr(plugin, name, None), found)
    return found


def _flatten(value: object, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _flatten(item, out)


class Guard:
    """Says why a destination must not be sent to, or None when it may."""

    def __init__(self, config: Config, store: Store | None = None) -> None:
        self.config = config
        self.store = store
        self.configured = watched(config)
        self._learned: list[tuple[str, str, str]] = []

    def _watched(self) -> Watched:
        if self.store is not None:
            try:
                self._learned = self.store.places()
            except (sqlite3.Error, StoreError):
                # The places last read still hold: an unreadable database must not open a way.
                log.warning("could not read the watched places; using the last ones read")
        return self.configured.including(self._learned)

    def refusal(self, channel: str, contact: str, address: str) -> str | None:
        """Why this message must not go out (told to the other contacts), or None."""
        if channel in EXEMPT:
            return None
        try:
            candidate = self._keys(channel, contact, address)
        except (KeyError, ValueError, IndexError):
            return "not sent: its address is not in the config any more, so it cannot be checked"
        owner = self._watched().owner(candidate)
        if owner is None:
            return None
        return f"not sent: it would have reached {side(self.config, owner)}"

    def refuses_any(self, channel: str, contact: str) -> bool:
        """True when a contact's address on this channel is refused (answers go there)."""
        return any(self.refusal(name, contact, address) is not None
                   for name, address in addresses(self.config, contact) if name == channel)

    def _keys(self, channel: str, contact: str, address: str) -> set[str]:
        if channel == "telegram":
            return keys(address, phone=False)  # a chat id, never a phone number
        if channel == "apprise":
            url = apprise_url(self.config, self.config.secrets, contact, address)
            return url_keys(url, apprise_parts(url))
        return keys(address)  # Signal numbers, uuids and groups; any channel added later
