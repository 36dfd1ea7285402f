"""Alert texts: the configured template filled with an incident's fields.

Fields are substituted as plain values, never interpreted again, so survivor text that
contains braces, `%s`, HTML or Markdown reaches the contact verbatim.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from watcher.config import Config
from watcher.models import Incident


class _Values(dict[str, str]):
    def __missing__(self, key: str) -> str:
        # Unknown fields are refused at load; this only guards a field left empty.
        return ""


def incident_fields(config: Config, incident: Incident, when: datetime | None = None
                    ) -> dict[str, str]:
    person = config.people.get(incident.person)
    zone = config.person_zone(incident.person) if person else ZoneInfo("UTC")
    local = (when or incident.used_at).astimezone(zone)
    fields = dict(person.fields) if person else {}
    fields.update({
        "person": person.name if person else incident.person,
        "code": incident.code,
        "time": local.strftime("%H:%M %Z"),
        "date": local.strftime("%a %d %b %Y"),
        "link": incident.link or "no link",
        "matched": incident.matched,
        "platform": (incident.event_key or "").split(":", 1)[0],
        "incident": str(incident.id),
        "drill": "DRILL" if incident.drill else "",
    })
    return fields


def render(template: str, fields: Mapping[str, str], contact_key: str, config: Config,
           extra: Mapping[str, str] | None = None) -> str:
    contact = config.contacts[contact_key]
    values = _Values(fields)
    values.update(contact.fields)
    values["contact"] = contact.name
    values.update(extra or {})
    return string.Formatter().vformat(template, (), values)
