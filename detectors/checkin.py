"""Check-in codes: the person agreed to show a sign of life by a deadline.

The opposite of the other detectors: silence is the signal. This module is pure: which
events count as a check-in, and when the next deadline falls. The clock that watches the
deadlines (watcher/engine/checkins.py) keeps them in SQLite so a restart loses none.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from detectors.phrase import PhraseMatcher
from watcher.core.config import Checkin, parse_clock, parse_duration
from watcher.core.models import Event

CHECKIN_KINDS = ("message", "profile", "repost", "reaction", "follow")


class CheckinRule:
    def __init__(self, spec: Checkin, zone: ZoneInfo) -> None:
        self.spec = spec
        self.zone = zone
        self.grace = parse_duration(spec.grace)
        self._phrase = PhraseMatcher(spec.phrase) if spec.phrase else None
        if spec.by is not None:
            hour, minute = parse_clock(spec.by)
            # APScheduler's calendar arithmetic handles time zones and DST changes.
            self._daily: CronTrigger | None = CronTrigger(hour=hour, minute=minute,
                                                          timezone=zone)
        else:
            self._daily = None

    def qualifies(self, event: Event) -> bool:
        """Whether this event is the agreed sign of life."""
        if event.kind not in CHECKIN_KINDS or event.removed:
            return False
        if self._phrase is None:
            return True
        return event.kind in ("message", "profile") and self._phrase.find(event.text) is not None

    def deadline(self, last_checkin: datetime | None, after: datetime) -> datetime:
        """When the next check-in is overdue (grace included).

        `every`: counted from the last check-in (or from `after` if there was none yet).
        `by`: the next daily deadline after `after`.
        """
        if self._daily is None:
            every = parse_duration(self.spec.every or "0s")
            return (last_checkin or after) + every + self.grace
        fire: datetime | None = self._daily.get_next_fire_time(None, after - self.grace)
        assert fire is not None
        return fire + self.grace

    def window_start(self, deadline: datetime) -> datetime:
        """The start of the period a check-in must fall in for this deadline."""
        if self._daily is None:
            every = parse_duration(self.spec.every or "0s")
            return deadline - self.grace - every
        return deadline - self.grace - timedelta(days=1)
