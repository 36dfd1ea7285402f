"""Alerts by text through the phone's gateway, to contacts only.

The runner's send guard (playbooks/guard.py) checks every outbox row before this is called;
this module checks once more, in E.164, against every watched person's SMS numbers, so a
watched number written another way than in the config is refused here too.
"""

from __future__ import annotations

import secrets

from connectors.sms.client import GatewayClient, GatewayError
from connectors.sms.translate import Directory
from watcher.core.models import DeliveryError
from watcher.core.phones import e164


class SmsSending:
    def __init__(self, client: GatewayClient, directory: Directory,
                 region: str | None = None) -> None:
        self.client = client
        self.directory = directory
        self.region = region

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        number = e164(address, self.region)
        if number is None:
            raise DeliveryError("sms: the contact's number is not a phone number",
                                permanent=True)
        if self.directory.is_watched(number) or self.directory.is_watched(address):
            raise DeliveryError("sms: not sent: the number is a watched person's",
                                permanent=True)
        # A fresh id per attempt: a retry after a lost answer may send twice, never zero
        # times (the app answers 409 only for an id it already holds).
        message_id = secrets.token_hex(10)
        try:
            return await self.client.send(message_id, number, text)
        except GatewayError as exc:
            raise DeliveryError(f"sms: {exc.message}", permanent=exc.permanent) from exc
