"""Drills: run a code's whole playbook, marked as a drill everywhere, and report on it.

Alarm owners test their panels; contacts should rehearse too. A drill is an ordinary
incident with the drill flag, so it exercises exactly the path a real alert takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from watcher.core.clock import ts
from watcher.core.config import Config, parse_duration
from watcher.core.models import Match
from watcher.core.rows import Mark
from watcher.core.store import Store


@dataclass(frozen=True)
class DrillReport:
    incident: int
    code: str
    started: datetime
    state: str
    acked_by: str | None
    ack_seconds: float | None
    deliveries: list[dict[str, object]]

    def text(self, config: Config, ending: str | None = None) -> str:
        """The report. `ending` says why nobody acknowledged (timeout, playbook ended);
        the headline is the outcome, never the stored state ("resolved" would read as if
        someone had dealt with it)."""
        outcome = "acknowledged" if self.acked_by else "NOT acknowledged"
        lines = [f"Drill of code '{self.code}' (alert #{self.incident}), started "
                 f"{self.started:%Y-%m-%d %H:%M:%S} UTC: {outcome}"]
        for row in self.deliveries:
            name = config.contacts[str(row["contact"])].name \
                if row["contact"] in config.contacts else row["contact"]
            when = row["sent_at"] or "not sent"
            error = f" ({row['error']})" if row["error"] else ""
            lines.append(f"  {row['status']:<8} to {name} via {row['channel']} at {when}{error}")
        if self.acked_by:
            name = config.actor_name(self.acked_by)
            lines.append(f"Acknowledged by {name} after {self.ack_seconds:.0f} s.")
        else:
            lines.append(ending or "Nobody acknowledged the drill.")
        return "\n".join(lines)


def start_drill(config: Config, store: Store, code: str, now: datetime) -> int:
    spec = config.codes[code]
    if spec.playbook is None:
        raise ValueError(f"code {code} has no playbook to drill")
    match = Match(code=code, person=spec.person, event_key=f"drill:{code}:{ts(now)}",
                  event_id=f"{code}:{ts(now)}", platform="drill", kind="message", at=now,
                  evidence={"detector": "drill"}, link=None)
    with store.transaction():
        return store.open_incident(match, spec.playbook, now, drill=True, matched="(drill)")


def report(store: Store, incident_id: int) -> DrillReport:
    drill = store.drill(incident_id)
    if drill is None:
        raise ValueError(f"alert #{incident_id} is not a drill")
    return DrillReport(incident_id, drill.code, drill.opened_at, drill.state, drill.acked_by,
                       drill.ack_seconds, store.deliveries(incident_id))


def last_drill(store: Store, code: str) -> datetime | None:
    return store.last_drill(code)


def due_reminders(config: Config, store: Store, now: datetime) -> list[tuple[str, str]]:
    """Codes whose drill is overdue and not yet reminded in this period: (code, last drill)."""
    due = []
    for name, code in config.codes.items():
        if not code.drill_every or code.playbook is None:
            continue
        period = parse_duration(code.drill_every)
        last = last_drill(store, name)
        reminded = store.marked(Mark.DRILL_REMINDER, name)
        if last is not None and now - last < period:
            continue
        if reminded is not None and now - reminded < period:
            continue
        due.append((name, f"{last:%Y-%m-%d}" if last else "never"))
    return due
