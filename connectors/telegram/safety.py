"""Keeping the bot token and message text out of logs and error messages (NO LEAK).

Three libraries under the Telegram connector log more than they should for this project:
httpx logs every request URL at INFO (the URL carries the bot token), PTB's Bot logger logs
call parameters and results at DEBUG (message text) and a whole failed batch at CRITICAL,
and PTB puts the token into InvalidToken's message. `guard_logs` scrubs those loggers; the
error helpers below build our own messages from the error's class, never from raw text.
"""

from __future__ import annotations

import logging
import re
import warnings
from datetime import timedelta

from telegram.error import RetryAfter, TelegramError
from telegram.warnings import PTBDeprecationWarning

# Loggers that can see URLs (token) or payloads (message text). A logger's filters apply
# only to records created on that very logger, hence each name is listed.
GUARDED_LOGGERS = ("httpx", "telegram", "telegram.Bot", "telegram.request",
                   "telegram.request.BaseRequest", "telegram.request.HTTPXRequest")
# PTB templates that carry a payload: only the part before the payload is kept.
_PAYLOAD = re.compile(r"(with parameters|with return value|Received data was|invalid JSON data)"
                      r".*", re.S)
TOKEN_REFUSED = ("the bot token was revoked (Telegram answers 401 Unauthorized; or it is "
                 "mistyped): nothing is watched on Telegram and no alert goes out there. "
                 "What to do: create a new token with @BotFather (/mybots, API Token), put "
                 "it in connectors.telegram.token and restart the watcher")
_TOKEN_SHAPE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")


class _Scrub(logging.Filter):
    """Rewrites a record in place: payloads cut, tokens replaced; the record is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def clean(self, text: str) -> str:
        for token in self.tokens:
            text = text.replace(token, "<token>")
        return _TOKEN_SHAPE.sub("<token>", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken format string must not break logging
            text = str(record.msg)
        record.msg, record.args = self.clean(_PAYLOAD.sub(r"\1 [hidden]", text)), None
        if record.exc_info and not record.exc_text:
            # Formatted once here, scrubbed, and kept: formatters reuse exc_text as is.
            record.exc_text = self.clean(logging.Formatter().formatException(record.exc_info))
        return True


_SCRUB = _Scrub()


def guard_logs(token: str) -> None:
    """Install the scrubbing filter (once) on every logger that could leak, for this token."""
    _SCRUB.tokens.add(token)
    for name in GUARDED_LOGGERS:
        logger = logging.getLogger(name)
        if _SCRUB not in logger.filters:
            logger.addFilter(_SCRUB)


def clean(text: str) -> str:
    """A text with every known token (and anything shaped like one) replaced."""
    return _SCRUB.clean(text)


def describe(exc: BaseException) -> str:
    """A short, safe description of an error for logs and health details.

    Telegram's own error descriptions ("Bad Request: chat not found") never echo message
    text; PTB's InvalidToken does echo the token, so every text is scrubbed.
    """
    if isinstance(exc, TelegramError):
        return clean(f"{type(exc).__name__}: {exc.message}")[:200]
    return type(exc).__name__


def retry_seconds(exc: RetryAfter) -> float:
    """How long Telegram asked us to wait (PTB 22 warns about the attribute's future type)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
