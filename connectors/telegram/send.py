"""Alerts to contacts' private chats: the only place the Telegram connector ever writes.

Every send is checked against the watched ids again (the config already refuses them):
defence in depth for the one mistake that would tip off an abuser. Nothing is ever sent
through a business connection.
"""

from __future__ import annotations

import asyncio

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from connectors.telegram.safety import TOKEN_REFUSED, describe, retry_seconds
from connectors.telegram.translate import Directory
from watcher.core.config import Config
from watcher.core.models import DeliveryError

ACK_BUTTON = "I'm on it"
MAX_SEND_WAIT = 20.0  # the playbook runner gives a whole send 30 s


class AlertSender:
    def __init__(self, bot: Bot, config: Config, directory: Directory) -> None:
        self.bot = bot
        self.config = config
        self.directory = directory

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        chat_id = self.alert_chat(contact, address)
        markup = None
        if incident is not None:
            markup = InlineKeyboardMarkup(
                [[InlineKeyboardButton(ACK_BUTTON, callback_data=f"ack:{incident}")]])
        message = await self.deliver(chat_id, text, markup)
        return str(message.message_id)

    def alert_chat(self, contact: str, address: str) -> int:
        """Defence in depth (the config already refuses it): only a configured contact's
        chat, and never a watched person's or chat's."""
        try:
            chat_id = int(address)
        except ValueError:
            raise DeliveryError(f"telegram address of {contact} is not a chat id",
                                permanent=True) from None
        if chat_id in self.directory.watched:
            raise DeliveryError(f"refusing to send to watched chat {chat_id}: fix "
                                f"contacts.{contact}.telegram.chat_id", permanent=True)
        known = self.config.contacts.get(contact)
        if known is None or known.telegram is None or known.telegram.chat_id != chat_id:
            raise DeliveryError(f"chat {chat_id} is not contacts.{contact}.telegram.chat_id",
                                permanent=True)
        return chat_id

    async def deliver(self, chat_id: int, text: str,
                      markup: InlineKeyboardMarkup | None) -> Message:
        """sendMessage, waiting out one flood-control pause; errors become DeliveryError
        (permanent when retrying cannot help). Never a business_connection_id."""
        if chat_id in self.directory.watched:
            raise DeliveryError(f"refusing to send to watched chat {chat_id}", permanent=True)
        for attempt in (1, 2):
            try:
                # The runner may deliver before start() ran: open the clients if needed.
                await self.bot.initialize()
                return await self.bot.send_message(chat_id, text, reply_markup=markup)
            except RetryAfter as exc:
                wait = retry_seconds(exc)
                if attempt == 2 or wait > MAX_SEND_WAIT:
                    raise DeliveryError(f"Telegram flood control: retry in {wait:.0f} s"
                                        ) from None
                await asyncio.sleep(wait)
            except TelegramError as exc:
                raise delivery_error(exc, chat_id) from None
        raise AssertionError("unreachable")


def delivery_error(exc: TelegramError, chat_id: int) -> DeliveryError:
    """Map a PTB error to DeliveryError; PTB rewrites Telegram's wording, so match loosely."""
    text = exc.message.lower()
    if isinstance(exc, Forbidden):
        return DeliveryError(f"the bot cannot write to chat {chat_id} (blocked, or never "
                             "started): ask the contact to open the bot and press Start",
                             permanent=True)
    if isinstance(exc, ChatMigrated):
        return DeliveryError(f"chat {chat_id} became chat {exc.new_chat_id}: update the "
                             "contact's telegram.chat_id", permanent=True)
    if isinstance(exc, BadRequest):
        if "chat not found" in text:
            return DeliveryError(f"Telegram does not know chat {chat_id}: the contact must "
                                 "start a private chat with the bot, and chat_id must be "
                                 "theirs", permanent=True)
        return DeliveryError(f"Telegram refused the message ({describe(exc)})", permanent=True)
    if isinstance(exc, InvalidToken | EndPointNotFound):
        return DeliveryError(TOKEN_REFUSED)
    if isinstance(exc, NetworkError):
        return DeliveryError(f"cannot reach Telegram ({describe(exc)})")
    return DeliveryError(f"Telegram error ({describe(exc)})")
