"""The one way an alert leaves: a `Channel`.

The console, Apprise and every connector that can deliver (Telegram, Signal, SMS) implement
this one protocol; the playbook runner and the failsafe only ever see it. A connector says
whether it is a channel through `Connector.channel()`, so the app registers it without
guessing.
"""

from __future__ import annotations

from typing import Protocol


class Channel(Protocol):
    name: str

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        """Deliver to one of a contact's addresses; return the platform's id for the sent
        message (replies refer to it), or None where there is none.

        `incident` is the alert's number (None for reminders and notices): a channel with
        buttons offers "I'm on it" for it. Raise `DeliveryError(message, permanent)` on
        failure: permanent for an unknown chat, a blocked bot, a refused address.
        """
        ...
