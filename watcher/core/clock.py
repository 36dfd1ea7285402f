"""Time, in one place: the clock the machinery is given, and how moments are written down.

Everything that asks "what time is it" can take a `Clock` (the system's by default), so a
test can hand it a clock it moves by hand instead of waiting. Moments are stored as
fixed-width UTC text so that text order is time order in SQL.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current moment, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals and timeouts."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()


def utcnow() -> datetime:
    return datetime.now(UTC)


def ts(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so that text order is time order in SQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
