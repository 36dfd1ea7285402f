"""The store's typed rows and state names (i17-store): what Store methods return, and the
enums whose values the store passes to SQL as parameters, never spelt in a query."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from watcher.core.models import IncidentState


class Mark(enum.StrEnum):
    """The watcher's own bookkeeping moments (the `marks` table), each under a key."""

    RETENTION = "retention"            # key "": the last purge of old dedupe keys
    DIGEST = "digest"                  # key "": the last digest sent
    PROBE = "probe"                    # key "": the failsafe's last write test
    BLIND = "blind"                    # key feed: its blind watch was told (cleared: recovered)
    CHECKIN = "checkin"                # key "code:what": a check-in's moments
    UNCHECKED = "unchecked"            # key person: the contacts were last told of unchecked items
    CRASHLOOP = "crashloop"            # key connector: its crash loop was last told
    DRILL_REMINDER = "drill-reminder"  # key code: the last reminder that a drill is due


class RunStatus(enum.StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


# An incident that still needs someone: the playbook runs, or a contact is on it.
LIVE_STATES = (IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value)


# Rows some callers unpack as tuples: named tuples, so they read by name and those callers
# (and other branches') keep working.
class Notice(NamedTuple):
    id: int
    incident_id: int
    kind: str
    actor: str | None


class Place(NamedTuple):
    platform: str
    place: str
    person: str


class MatchRef(NamedTuple):
    id: int
    event_key: str
    at: datetime


class WebToken(NamedTuple):
    hash: str
    contact: str
    scope: str


@dataclass(frozen=True)
class DrillRecord:
    """A drill incident as its report and the contacts' page show it."""

    id: int
    code: str
    opened_at: datetime
    state: str
    acked_by: str | None
    acked_at: datetime | None

    @property
    def ack_seconds(self) -> float | None:
        return None if self.acked_at is None else \
            (self.acked_at - self.opened_at).total_seconds()
