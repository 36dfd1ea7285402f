"""Acknowledge and stand down on behalf of someone who is not answering through a chat: the
operator at the watcher's machine (`watcher ack`, `watcher standdown`) or a contact on the
contacts' page.

Each action is one transaction: the incident's new state, its evidence-log entry (with who
acted and how) and the notice the playbook runner turns into messages for the contacts.
Whichever process holds the database's lock delivers those messages, so an action taken while
a watcher runs is carried out by that watcher, exactly like a contact's reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from watcher.core.models import IncidentState
from watcher.core.store import Store

ENDED = {IncidentState.STOOD_DOWN: "was stood down", IncidentState.RESOLVED: "was resolved"}


@dataclass(frozen=True)
class Outcome:
    """What happened: `done` when this action changed the incident; `text` says it plainly."""

    done: bool
    text: str
    known: bool = True  # False: there is no such incident
    ended: bool = False  # the incident had already ended: nothing could be done


def acknowledge(store: Store, incident_id: int, actor: str, via: str, now: datetime,
                names: dict[str, str]) -> Outcome:
    """`actor`: a contact key or OPERATOR; `via`: how they acted ("cli", "web"), logged."""
    incident = store.incident(incident_id)
    if incident is None:
        return Outcome(False, f"There is no alert #{incident_id}.", known=False)
    if incident.state in ENDED:
        return Outcome(False, f"Alert #{incident_id} has already ended (it "
                              f"{ENDED[incident.state]}): there is nothing to acknowledge.",
                       ended=True)
    with store.transaction():
        first = store.acknowledge(incident_id, actor, now, via)
        if first:
            store.finish_run(incident_id, now)
            store.add_notice(incident_id, "acknowledged", actor, now)
    if first:
        return Outcome(True, f"Acknowledged alert #{incident_id}; the escalation is stopped "
                             "and the contacts alerted are told.")
    acker = store.acked_by(incident_id) or "?"
    who = "you" if acker == actor else names.get(acker, acker)
    return Outcome(False, f"Alert #{incident_id} is already being handled by {who}.")


def stand_down(store: Store, incident_id: int, actor: str, now: datetime) -> Outcome:
    incident = store.incident(incident_id)
    if incident is None:
        return Outcome(False, f"There is no alert #{incident_id}.", known=False)
    if incident.state in ENDED:
        return Outcome(False, f"Alert #{incident_id} has already ended (it "
                              f"{ENDED[incident.state]}).", ended=True)
    with store.transaction():
        store.set_incident_state(incident_id, IncidentState.STOOD_DOWN, now, by=actor)
        store.add_notice(incident_id, "stood_down", actor, now)
    return Outcome(True, f"Stood down alert #{incident_id}; everyone alerted is told.")
