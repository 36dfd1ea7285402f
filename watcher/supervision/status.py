"""`watcher status` and the contacts' /status: every feed, open alerts, pending steps, drills."""

from __future__ import annotations

from typing import Any

from watcher.core.config import Config
from watcher.core.models import IncidentState
from watcher.core.store import Store
from watcher.supervision.supervisor import Supervisor


def status_data(config: Config, store: Store, supervisor: Supervisor) -> dict[str, Any]:
    feeds = [{"feed": s.feed, "watched": not s.blind,
              "last_ok": s.last_ok.isoformat() if s.last_ok else None,
              "last_event": s.last_event.isoformat() if s.last_event else None,
              "failures": s.failures, "problem": s.detail or None}
             for s in supervisor.states()]
    incidents = [{"id": i.id, "code": i.code, "person": i.person, "state": i.state.value,
                  "drill": i.drill, "opened_at": i.opened_at.isoformat(),
                  "acked_by": store.acked_by(i.id),
                  "playbook_ended": (e.isoformat() if (e := store.playbook_ended(i.id))
                                     else None)}
                 for state in (IncidentState.OPEN, IncidentState.ACKNOWLEDGED)
                 for i in store.incidents(state)]
    steps = [{"incident": r.incident_id, "playbook": r.playbook, "step": r.step,
              "due_at": r.due_at.isoformat()} for r in store.active_runs()]
    drills = {name: (d.isoformat() if (d := store.last_drill(name)) else None)
              for name, code in config.codes.items() if code.playbook is not None}
    return {"feeds": feeds, "incidents": incidents, "pending_steps": steps,
            "pending_messages": store.pending_messages(), "last_drill": drills}


def status_report(config: Config, store: Store, supervisor: Supervisor) -> str:
    data = status_data(config, store, supervisor)
    lines = ["Feeds:"]
    for f in data["feeds"]:
        state = "watched" if f["watched"] else "NOT WATCHED"
        lines.append(f"  {f['feed']:<24} {state:<12} last read {_t(f['last_ok'])}"
                     + (f"  problem: {f['problem']}" if f["problem"] else ""))
    if not data["feeds"]:
        lines.append("  (no live feeds configured)")
    lines.append("Open alerts:")
    for i in data["incidents"]:
        who = f", handled by {i['acked_by']}" if i["acked_by"] else ""
        drill = " [drill]" if i["drill"] else ""
        state = (f"nobody acknowledged; playbook ended at {_t(i['playbook_ended'])}"
                 if i["playbook_ended"] else i["state"])
        lines.append(f"  #{i['id']} {i['code']} ({i['person']}){drill}: {state}{who}, "
                     f"since {_t(i['opened_at'])}")
    if not data["incidents"]:
        lines.append("  none")
    lines.append(f"Pending steps: {len(data['pending_steps'])}; messages waiting to be sent: "
                 f"{data['pending_messages']}")
    for code, when in data["last_drill"].items():
        lines.append(f"Last drill of {code}: {_t(when) if when else 'never'}")
    return "\n".join(lines)


def _t(value: str | None) -> str:
    return value[:16].replace("T", " ") + " UTC" if value else "never"
