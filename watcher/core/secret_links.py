"""Secret links: who gets into the contacts' page.

A link carries a long random token (256 bits from `secrets`); the store keeps only its
SHA-256, so a copy of the database does not open the page. A token is looked up by its
hash and the hash compared again in constant time. Two scopes:

- "contact": the contact's own page link (`watcher web link`), everything on the page;
- "incident:N": the link an alert carries. Whoever sees the alert (a shared inbox, a lock
  screen) can open that one alert and acknowledge or stand it down, as that contact, and
  nothing else: no other alert, no feeds, no tests, no drills, no evidence.

`watcher web revoke` ends both kinds for a contact, and every session opened with them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from watcher.core.store import Store

TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # token_urlsafe(32): 43 characters
CONTACT = "contact"


@dataclass(frozen=True)
class Grant:
    digest: str
    contact: str
    scope: str

    @property
    def incident(self) -> int | None:
        """The one incident an alert's link opens, or None for a contact's page link."""
        kind, _, number = self.scope.partition(":")
        return int(number) if kind == "incident" and number.isdigit() else None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def mint(store: Store, contact: str, scope: str, now: datetime) -> str:
    """A new token for `contact`, stored hashed (in the caller's transaction)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    store.add_web_token(digest(token), contact, scope, now)
    return token


def incident_scope(incident: int) -> str:
    return f"incident:{incident}"


def check(store: Store, token: str) -> Grant | None:
    """The grant a token gives, or None (malformed, unknown or revoked)."""
    if not _TOKEN.match(token):
        return None
    wanted = digest(token)
    found = store.web_token(wanted)
    if found is None or not hmac.compare_digest(found[0], wanted):
        return None
    return Grant(found[0], found[1], found[2])


def still_valid(store: Store, grant: Grant) -> bool:
    """A session lives only as long as the link it was opened with."""
    found = store.web_token(grant.digest)
    return found is not None and hmac.compare_digest(found[0], grant.digest)


def link(base: str, token: str) -> str:
    return f"{base.rstrip('/')}/c/{token}"
