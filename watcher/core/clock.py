"""Time, in one place: the clock the machinery is given, and how moments are written down.

A clock is a function that returns the current moment (timezone-aware, UTC). Everything that
asks "what time is it" (the app, the engine, the playbook runner, supervision, the connectors)
takes one, `utcnow` by default, so a test hands it a clock it moves by hand instead of
waiting (tests/conftest.py: Clock). Only intervals that must never go backwards (a timeout, a
re-check period) read `time.monotonic()` directly. Moments are stored as fixed-width UTC text,
so that text order is time order in SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def ts(moment: datetime) -> str:
    """A fixed-width UTC timestamp, so that text order is time order in SQL."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
