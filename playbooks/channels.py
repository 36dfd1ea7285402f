"""Where alerts go: one small class per channel, each raising DeliveryError(message, permanent).

Each implements watcher.core.channel.Channel. Telegram, Signal and SMS channels are their
connectors (`Connector.channel()`); this module holds the ones that need no account (the
console) and Apprise for everything else.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import TextIO
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from watcher.core.config import Config, SecretRef, addresses
from watcher.core.logs import escape
from watcher.core.models import DeliveryError

__all__ = ["WAY_BACK", "AppriseChannel", "ConsoleChannel", "DeliveryError", "addresses",
           "apprise_url", "with_ack_action"]

# i14-web: how an alert's last line offers the contacts' page (PlaybookRunner._way_back).
WAY_BACK = "Acknowledge or stand down: "
_WAY_BACK_LINK = re.compile(re.escape(WAY_BACK) + r"(https?://\S+)\s*$")


def with_ack_action(url: str, text: str) -> str:
    """An ntfy URL gains an Acknowledge action that opens the alert's link on the page
    (ntfy shows it as a button on the notification); other services are left as they are."""
    found = _WAY_BACK_LINK.search(text)
    if found is None or not url.startswith(("ntfy://", "ntfys://")):
        return url
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k != "actions"]
    query.append(("actions", f"view, Acknowledge, {found.group(1)}"))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def apprise_url(config: Config, secrets: Mapping[str, str], contact: str, address: str) -> str:
    """The URL an apprise address (its index in contacts.X.apprise) stands for."""
    index = int(address)
    entry = config.contacts[contact].apprise[index]
    if isinstance(entry, SecretRef):
        return secrets[f"contacts.{contact}.apprise[{index}]"]
    return entry


class ConsoleChannel:
    """Prints the alert a contact would receive, clearly marked: the example needs no account.

    It is for trying the watcher and drills at a terminal. The text holds the survivor's
    matched words and the contacts' fields (an address), so on a standard output that is
    not a terminal (the system journal under systemd, a pipe, a file) only a one-line notice
    is printed, without the text. A stream handed in explicitly (tests, `watcher drill`) is
    the caller's choice and gets the text. Control characters are escaped either way: the
    survivor's words must not drive the terminal (docs/operations.md).
    """

    name = "console"

    def __init__(self, config: Config, stream: TextIO | None = None) -> None:
        self.config = config
        self.stream = stream

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        stream = self.stream or sys.stdout
        name = self.config.contacts[contact].name
        if self.stream is None and not _is_terminal(stream):
            which = f", alert #{incident}" if incident is not None else ""
            stream.write(f"ALERT to {name} (console channel{which}): text not shown, standard "
                         "output is not a terminal (docs/operations.md)\n")
        else:
            bar = "=" * 60
            shown = "\n".join(escape(line) for line in text.split("\n"))
            stream.write(f"{bar}\nALERT to {name} (console channel)\n{shown}\n{bar}\n")
        stream.flush()
        return None


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream: assume it is not
        return False


class AppriseChannel:
    """E-mail, ntfy, Matrix, SMS gateways, webhooks: every service Apprise speaks."""

    name = "apprise"

    def __init__(self, config: Config, secrets: Mapping[str, str]) -> None:
        self.config = config
        self.secrets = secrets

    def url(self, contact: str, address: str) -> str:
        return apprise_url(self.config, self.secrets, contact, address)

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        import apprise  # heavy import, only when a contact uses it

        client = apprise.Apprise()
        if not client.add(with_ack_action(self.url(contact, address), text)):
            raise DeliveryError(f"contacts.{contact}.apprise[{address}] is not a URL Apprise "
                                "understands", permanent=True)
        ok = await client.async_notify(body=text, title="Watcher alert")
        if not ok:
            raise DeliveryError(f"apprise delivery to contacts.{contact}.apprise[{address}] "
                                "failed")
        return None
