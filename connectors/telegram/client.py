"""The Telegram client: python-telegram-bot's Bot, built the way the connector needs it.

The connector takes a Bot (a test may hand it one pointed at the stand-in); without one it
builds this. PTB's HTTP stack still does all the talking to the Bot API.
"""

from __future__ import annotations

from telegram import Bot
from telegram.request import HTTPXRequest


def make_bot(token: str, api_url: str) -> Bot:
    """Two HTTP clients: a parked long poll must never hold up an alert (PTB's default
    pool for a plain Bot is one connection)."""
    api = api_url.rstrip("/")
    return Bot(token, base_url=f"{api}/bot", base_file_url=f"{api}/file/bot",
               request=HTTPXRequest(connection_pool_size=8, read_timeout=20.0,
                                    write_timeout=20.0, connect_timeout=10.0, pool_timeout=5.0),
               get_updates_request=HTTPXRequest(connection_pool_size=1, read_timeout=10.0,
                                                connect_timeout=10.0, pool_timeout=5.0))
