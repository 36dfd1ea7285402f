"""The check-in clock: deadlines kept in SQLite, checked every tick, fired exactly once.

A missed check-in opens an incident. If the person's feeds were blind during the period,
the watcher cannot know whether they checked in: it says so to the contacts instead of
firing (a false alarm) or staying silent (a missed one). Only the live feeds that exist are
judged (an identity on a platform whose connector is configured): a person watched through
replay files, or named on a platform without a connector, has no live feed to go blind, and
a health row left by replayed events of some platform says nothing about a watch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from detectors.checkin import CheckinRule
from playbooks import outbox
from watcher.core.clock import from_ts, ts, utcnow
from watcher.core.config import Config
from watcher.core.models import Event, Match
from watcher.core.rows import Mark
from watcher.core.store import Store
from watcher.supervision.supervisor import expected_feeds

log = logging.getLogger("watcher.checkins")

BLIND = ("{person}'s check-in '{code}' was due by {deadline}, but {person}'s watch was blind "
         "({detail}), so the watcher cannot tell whether they checked in. Please check on "
         "{person} another way.")


class CheckinClock:
    def __init__(self, config: Config, store: Store,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.rules = {name: CheckinRule(code.checkin, config.person_zone(code.person))
                      for name, code in config.codes.items() if code.checkin is not None}
        self.live_feeds = expected_feeds(config)

    def observe(self, event: Event) -> None:
        """Record a check-in. Call inside the transaction that marks the event seen."""
        for name, rule in self.rules.items():
            code = self.config.codes[name]
            if code.person != event.person or not rule.qualifies(event):
                continue
            last = self._get(name, "last")
            if last is None or event.at > last:
                self._set(name, "last", event.at)
                if rule.spec.every is not None:
                    self._set(name, "deadline", rule.deadline(event.at, event.at))

    def tick(self) -> int:
        """Check every deadline that has passed; return how many were handled."""
        handled = 0
        for name, rule in self.rules.items():
            now = self.clock()
            deadline = self._get(name, "deadline")
            if deadline is None:
                with self.store.transaction():
                    self._set(name, "deadline", rule.deadline(self._get(name, "last"), now))
                continue
            if now < deadline:
                continue
            with self.store.transaction():
                self._due(name, rule, deadline, now)
            handled += 1
        return handled

    def _due(self, name: str, rule: CheckinRule, deadline: datetime, now: datetime) -> None:
        code = self.config.codes[name]
        last = self._get(name, "last")
        start = rule.window_start(deadline)
        if last is None or last <= start:
            blind = self._blind(code.person, start)
            if blind:
                self._tell_blind(name, deadline, blind, now)
            else:
                self._missed(name, deadline, last, now)
        # A missed `every` check-in is asked for again one full period later.
        basis = now if (last is None or last <= start) else last
        self._set(name, "deadline", rule.deadline(basis, max(now, deadline)))

    def _missed(self, name: str, deadline: datetime, last: datetime | None,
                now: datetime) -> None:
        code = self.config.codes[name]
        key = f"checkin:{name}:{ts(deadline)}"
        evidence = {"detector": "checkin", "deadline": deadline.isoformat(),
                    "last_checkin": last.isoformat() if last else None}
        match = Match(code=name, person=code.person, event_key=key, event_id=key,
                      platform="checkin", kind="message", at=deadline, evidence=evidence)
        incident = self.store.open_incident(match, code.playbook, now, matched="(no check-in)")
        log.info("check-in %s missed: incident %s opened", name, incident)

    def _blind(self, person: str, since: datetime) -> str | None:
        rows = {str(r["feed"]): r for r in self.store.health()}
        for feed in self.live_feeds:
            if not feed.startswith(f"{person}/"):
                continue
            row = rows.get(feed, {})
            last_ok = from_ts(row["last_ok"]) if row.get("last_ok") else None
            if row.get("blind_since") or last_ok is None or last_ok < since:
                return f"{feed}: {row.get('detail') or 'not read since the period began'}"
        return None

    def _tell_blind(self, name: str, deadline: datetime, detail: str, now: datetime) -> None:
        code = self.config.codes[name]
        person = self.config.people[code.person].name
        local = deadline.astimezone(self.config.person_zone(code.person))
        text = BLIND.format(person=person, code=name, deadline=f"{local:%H:%M %a %d %b}",
                            detail=detail)
        outbox.tell(self.config, self.store, outbox.playbook_contacts(self.config, code.playbook),
                    text, "checkin-blind", now)
        log.warning("check-in %s could not be verified: watch blind", name)

    def _get(self, name: str, what: str) -> datetime | None:
        return self.store.marked(Mark.CHECKIN, f"{name}:{what}")

    def _set(self, name: str, what: str, moment: datetime) -> None:
        self.store.mark(Mark.CHECKIN, f"{name}:{what}", moment)
