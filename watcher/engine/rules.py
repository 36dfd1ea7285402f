"""Rules on top of detectors: armed windows, cooldowns and confirmations (pure helpers)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from watcher.core.config import Code, parse_duration, parse_window


def armed(code: Code, at: datetime, zone: ZoneInfo) -> bool:
    """Whether the code is armed at this moment, in the person's time zone."""
    if not code.armed:
        return True
    local = at.astimezone(zone)
    minute = local.hour * 60 + local.minute
    for window in code.armed:
        (sh, sm), (eh, em) = parse_window(window)
        start, end = sh * 60 + sm, eh * 60 + em
        inside = start <= minute < end if start <= end else (minute >= start or minute < end)
        if inside:
            return True
    return False


def cooldown(code: Code) -> timedelta | None:
    return parse_duration(code.cooldown) if code.cooldown else None
