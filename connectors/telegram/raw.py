"""A fallback reader for a batch PTB could not parse: one update at a time.

PTB turns a whole getUpdates batch into objects at once, so a single malformed update would
fail the batch forever and blind the watch. When that happens, the same batch is fetched as
plain JSON and parsed update by update; an unreadable one is logged by its id (never its
content) and skipped, and the ones after it are read.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import httpx
from telegram import Bot, Update
from telegram.error import NetworkError

from connectors.common import MALFORMED

log = logging.getLogger("connectors.telegram")


async def read_one_by_one(bot: Bot, api_url: str, token: str, offset: int | None,
                          allowed: Sequence[str]) -> list[tuple[int | None, Update | None]]:
    """The waiting updates as (update_id, Update or None when unreadable)."""
    body: dict[str, Any] = {"limit": 100, "timeout": 0, "allowed_updates": list(allowed)}
    if offset is not None:
        body["offset"] = offset
    try:
        async with httpx.AsyncClient(timeout=30, trust_env=False) as http:
            reply = await http.post(f"{api_url.rstrip('/')}/bot{token}/getUpdates", json=body)
        data = reply.json()
    except (httpx.HTTPError, ValueError):
        raise NetworkError("the Bot API could not be read") from None  # no URL: it has the token
    if not isinstance(data, dict) or not data.get("ok") or not isinstance(data.get("result"), list):
        raise NetworkError("the Bot API answered getUpdates with an error")
    out: list[tuple[int | None, Update | None]] = []
    for raw in data["result"]:
        update_id = raw.get("update_id") if isinstance(raw, dict) else None
        update_id = update_id if isinstance(update_id, int) else None
        try:
            out.append((update_id, Update.de_json(raw, bot)))
        except MALFORMED as exc:
            log.warning("skipped Telegram update %s: it could not be read (%s)", update_id,
                        type(exc).__name__)
            out.append((update_id, None))
    return out
