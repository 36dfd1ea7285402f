"""What the contacts' page shows, as plain data for the templates (no HTML here).

Only what a contact needs: feed health, alerts and their timelines, drills, channels. Of a
watched person's messages, only the matched snippet the incident stored is ever shown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from watcher.core.clock import from_ts
from watcher.core.config import Config, addresses, parse_duration
from watcher.core.models import Incident, IncidentState
from watcher.core.store import Store
from watcher.supervision.supervisor import Supervisor

STATE_WORDS = {IncidentState.OPEN: "open: nobody has acknowledged yet",
               IncidentState.ACKNOWLEDGED: "acknowledged",
               IncidentState.STOOD_DOWN: "stood down", IncidentState.RESOLVED: "resolved"}
MESSAGE_WORDS = {"alert": "Alert", "notice": "Notice", "failure": "Failure notice",
                 "reminder": "Drill reminder", "test": "Test message"}
BLIND_ADVICE = ("The watcher cannot read this feed, so a code used there would be missed. "
                "Check on the person another way until it is fixed, and ask whoever runs the "
                "watcher to look at its machine and this account's access.")
STALE_ADVICE = ("Nothing has been read from this feed for a while. That may be normal (a "
                "quiet chat); if it is not, ask whoever runs the watcher to check it.")


def when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else "never"


class Views:
    def __init__(self, config: Config, store: Store, supervisor: Supervisor,
                 clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.supervisor = supervisor
        self.clock = clock

    def names(self) -> dict[str, str]:
        return {key: c.name for key, c in self.config.contacts.items()}

    def name(self, contact: str) -> str:
        return self.config.actor_name(contact)

    def person(self, key: str) -> str:
        found = self.config.people.get(key)
        return found.name if found else key

    def people(self) -> list[tuple[str, str]]:
        return [(key, p.name) for key, p in self.config.people.items()]

    def addresses(self, contact: str) -> list[tuple[str, str]]:
        return addresses(self.config, contact)

    # -- the overview ------------------------------------------------------------------

    def overview(self) -> dict[str, Any]:
        live = [i for s in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)
                for i in self.store.incidents(s)]
        return {"feeds": self.feeds(),
                "incidents": [self._summary(i) for i in sorted(live, key=lambda i: -i.id)],
                "drills": self.drills(), "contacts": self.contacts(),
                "codes": sorted(k for k, c in self.config.codes.items() if c.playbook)}

    def feeds(self) -> list[dict[str, Any]]:
        stale_after = parse_duration(self.config.watcher.stale_after)
        now = self.clock()
        rows = []
        for state in self.supervisor.states():
            stale = not state.blind and state.last_ok is not None \
                and now - state.last_ok > stale_after
            rows.append({"feed": state.feed, "blind": state.blind, "stale": stale,
                         "last_ok": when(state.last_ok), "problem": state.detail or "",
                         "advice": BLIND_ADVICE if state.blind else
                         STALE_ADVICE if stale else ""})
        # What needs someone first: blind, then stale, then the healthy ones.
        return sorted(rows, key=lambda r: (not r["blind"], not r["stale"], r["feed"]))

    def drills(self, limit: int = 10) -> list[dict[str, Any]]:
        out = []
        for drill in self.store.drills(limit):
            seconds = drill.ack_seconds
            out.append({"id": drill.id, "code": drill.code, "at": when(drill.opened_at),
                        "acked_by": self.name(drill.acked_by) if drill.acked_by else None,
                        "response": f"{seconds:.0f} s" if seconds is not None else None})
        return out

    def contacts(self) -> list[dict[str, Any]]:
        out = []
        for key, contact in self.config.contacts.items():
            channels = []
            for channel, address in self.addresses(key):
                last = self.store.last_delivery(key, channel, address)
                channels.append({"channel": channel, "address": address,
                                 "label": self._label(channel, address),
                                 "last": self._last(last)})
            out.append({"key": key, "name": contact.name, "channels": channels})
        return out

    def _label(self, channel: str, address: str) -> str:
        # Never the number, chat id or URL itself: a service name and a position.
        return f"{channel} #{int(address) + 1}" if channel == "apprise" else channel

    def _last(self, row: dict[str, Any] | None) -> str:
        if row is None:
            return "nothing sent yet"
        kind = MESSAGE_WORDS.get(str(row["kind"]), str(row["kind"]))
        if row["status"] == "sent":
            return f"{kind} delivered {when(from_ts(row['sent_at']))}"
        if row["status"] == "failed":
            return f"{kind} FAILED: {row['error']}"
        retry = f" (retrying: {row['error']})" if row["error"] else ""
        return f"{kind} waiting to be sent{retry}"

    # -- one incident ------------------------------------------------------------------

    def _summary(self, incident: Incident) -> dict[str, Any]:
        ended = self.store.playbook_ended(incident.id)
        acker = self.store.acked_by(incident.id)
        state = (f"nobody acknowledged; playbook ended at {when(ended)}" if ended
                 else STATE_WORDS[incident.state])
        if acker:
            state = f"acknowledged by {self.name(acker)}"
        return {"id": incident.id, "code": incident.code, "person": self.person(incident.person),
                "drill": incident.drill, "opened": when(incident.opened_at), "state": state,
                "live": incident.state in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED),
                "open": incident.state == IncidentState.OPEN, "matched": incident.matched}

    def incident(self, number: int) -> dict[str, Any]:
        found = self.store.incident(number)
        assert found is not None
        return {"incident": self._summary(found), "timeline": self.timeline(number)}

    def timeline(self, number: int) -> list[dict[str, str]]:
        out = []
        for entry in self.store.evidence_entries(incident=number):
            line = self._line(entry.kind, entry.data)
            if line:
                out.append({"at": when(from_ts(entry.at)), "what": line})
        for row in self.store.deliveries(number):
            if row["status"] == "pending":
                kind = MESSAGE_WORDS.get(str(row["kind"]), str(row["kind"]))
                retry = f" (retrying: {row['error']})" if row["error"] else ""
                out.append({"at": when(from_ts(row["created_at"])),
                            "what": f"{kind} to {self.name(row['contact'])} via "
                                    f"{row['channel']}: waiting to be sent{retry}"})
        return out

    def _line(self, kind: str, data: dict[str, Any]) -> str:
        if kind in ("incident", "drill"):
            if data.get("playbook") == "ended":
                return "The playbook ran out: nobody acknowledged."
            state = data.get("state")
            by = f" by {self.name(str(data['by']))}" if data.get("by") else ""
            if state == "open":
                what = "Drill started" if kind == "drill" else "Fired"
                return f"{what}: code '{data.get('code', '')}'"
            return f"{str(state).replace('_', ' ').capitalize()}{by}"
        if kind == "delivery":
            label = MESSAGE_WORDS.get(str(data.get("message")), "Message")
            result = "delivered" if data.get("status") == "sent" else \
                f"FAILED ({data.get('error')})"
            return f"{label} to {self.name(str(data.get('contact')))} via " \
                   f"{data.get('channel')}: {result}"
        if kind == "ack":
            via = f" (via {data['channel']})" if data.get("channel") else ""
            return f"Acknowledged by {self.name(str(data.get('contact')))}{via}"
        return ""
