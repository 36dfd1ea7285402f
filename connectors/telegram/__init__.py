"""Telegram, through python-telegram-bot: the connector and its parts."""
