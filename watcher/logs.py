"""Logging that cannot leak: secret values are masked in every record on every handler.

Message text is never passed to a logger in the first place (events are logged by key);
this layer is the second line of defence for secrets that a library might echo.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

MASK = "[redacted]"


class Redactor(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for secret in self.secrets:
            text = text.replace(secret, MASK)
            if record.exc_text:
                record.exc_text = record.exc_text.replace(secret, MASK)
        record.msg, record.args = text, None
        return True


def setup(verbose: bool = False, secrets: Iterable[str] = ()) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    redactor = Redactor(secrets)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    # Libraries that echo URLs or tokens in their own words: we report their failures ourselves.
    for noisy in ("apprise", "httpx", "httpcore", "telegram", "websockets", "atproto", "hpack"):
        logging.getLogger(noisy).setLevel(logging.WARNING if verbose else logging.ERROR)
