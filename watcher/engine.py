"""Events in, incidents out: dedupe, detect, and record what fired in one transaction.

The event is marked seen in the same transaction as the incidents it opened and the
cursor that moved past it, so a crash at any point either redoes the whole event or
nothing of it: never a lost code, never a doubled alarm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.codes import Filtered
from watcher.checkins import CheckinClock
from watcher.config import Config, parse_duration
from watcher.models import DetectionFailed, Event, IncidentState, Match, utcnow
from watcher.rules import armed, cooldown
from watcher.store import Store

log = logging.getLogger("watcher.engine")


@dataclass(frozen=True)
class Outcome:
    event: Event
    duplicate: bool
    matches: tuple[Match, ...] = ()
    incidents: tuple[int, ...] = ()
    failures: tuple[str, ...] = ()


def detect(detectors: Mapping[str, Filtered], event: Event) -> tuple[list[Match], list[str]]:
    """Run every code's detector on an event: pure, no store, usable by replay and audit."""
    matches: list[Match] = []
    failures: list[str] = []
    for name, detector in detectors.items():
        if not detector.applies(event):
            continue
        try:
            evidence = detector.match(event)
        except DetectionFailed as exc:
            failures.append(f"{name}: {exc}")
            continue
        if evidence is not None:
            matches.append(_match(name, event, evidence))
    return matches, failures


def _match(code: str, event: Event, evidence: Mapping[str, Any]) -> Match:
    return Match(code=code, person=event.person, event_key=event.key, event_id=event.id,
                 platform=event.platform, kind=event.kind, at=event.at,
                 score=float(evidence.get("distance", 0) or 0), evidence=evidence,
                 link=event.link)


class Engine:
    def __init__(self, config: Config, store: Store, detectors: Mapping[str, Filtered],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.store = store
        self.detectors = detectors
        self.clock = clock
        self.checkins = CheckinClock(config, store, clock)
        # Detection awaits a thread between the "seen?" check and the commit: two feeds
        # delivering the same event (a poll and a stream) must not both open an incident.
        self._lock = asyncio.Lock()

    async def ingest(self, event: Event, cursor: tuple[str, str] | None = None) -> Outcome:
        """Process one event; `cursor` (feed, value) is committed with it."""
        return (await self.ingest_batch([(event, cursor)]))[0]

    async def ingest_batch(self, items: Sequence[tuple[Event, tuple[str, str] | None]]
                           ) -> list[Outcome]:
        """Process events in order and commit them, and the cursors past them, together.

        One transaction for many events: a crash keeps all of them or none, and a fast feed
        does not pay one disk sync per event.
        """
        async with self._lock:
            return await self._ingest_batch(items)

    async def _ingest_batch(self, items: Sequence[tuple[Event, tuple[str, str] | None]]
                            ) -> list[Outcome]:
        detected: list[tuple[Event, list[Match], list[str]] | Event] = []
        fresh: set[str] = set()
        for event, _ in items:
            if event.key in fresh or self.store.seen(event.key):
                detected.append(event)
                continue
            fresh.add(event.key)
            matches, failures = await self._detect(event)
            for failure in failures:
                # The event key, never its content: message text stays out of logs.
                log.warning("detection failed for event %s: %s", event.key, failure)
            live = [m for m in matches if armed(self.config.codes[m.code], m.at,
                                                self.config.person_zone(m.person))]
            detected.append((event, live, failures))
        now = self.clock()
        outcomes: list[Outcome] = []
        with self.store.transaction():
            for entry in detected:
                outcomes.append(self._record(entry, now))
            for _, cursor in items:
                if cursor is not None:
                    self.store.set_cursor(*cursor, now)
        for outcome in outcomes:
            for incident in outcome.incidents:
                log.info("incident %s opened", incident)
        return outcomes

    def _record(self, entry: tuple[Event, list[Match], list[str]] | Event,
                now: datetime) -> Outcome:
        if isinstance(entry, Event):
            return Outcome(entry, duplicate=True)
        event, live, failures = entry
        self.store.mark_seen(event, now)
        self.store.record_places(event, now)  # i13-guard: never send where they were seen
        self.store.feed_event(event.feed_name, now)
        self.checkins.observe(event)
        incidents: list[int] = []
        for match in live:
            incidents.extend(self._apply(match, now))
        return Outcome(event, False, tuple(live), tuple(incidents), tuple(failures))

    def _apply(self, match: Match, now: datetime) -> list[int]:
        """Record a match and act on it; return the incidents it opened. Inside a transaction."""
        code = self.config.codes[match.code]
        if code.stand_down:
            self._stand_down(match, now)
            return []
        if code.false_all_clear:
            for incident in self.store.open_incidents_of(match.person):
                self.store.add_notice(incident, "false_all_clear", match.code, now)
        opened = self._confirm_others(match, now)
        window = cooldown(code)
        joined = window and self.store.open_incident_of(match.code, match.person, now - window)
        if joined:
            self.store.add_match(joined, match)
        elif code.confirm is not None:
            opened.extend(self._needs_confirmation(match, now))
        elif code.playbook is not None:
            opened.append(self._open(match, now))
        else:
            self.store.add_match(None, match)  # a confirmer only: kept for its partner
        return opened

    def _open(self, match: Match, now: datetime, drill: bool = False) -> int:
        code = self.config.codes[match.code]
        return self.store.open_incident(match, code.playbook, now, drill=drill,
                                        matched=str(match.evidence.get("matched", "")))

    def _needs_confirmation(self, match: Match, now: datetime) -> list[int]:
        code = self.config.codes[match.code]
        assert code.confirm is not None
        within = parse_duration(code.confirm.within)
        partner = self.store.matches_between(code.confirm.code, match.person,
                                             match.at - within, match.at + within)
        if not partner:
            self.store.add_match(None, match)  # waits for its confirmation
            return []
        return [self._open(match, now)]

    def _confirm_others(self, match: Match, now: datetime) -> list[int]:
        """This match may be the confirmation another code's earlier match waited for."""
        opened = []
        for name, other in self.config.codes.items():
            if other.confirm is None or other.confirm.code != match.code or other.playbook is None:
                continue
            within = parse_duration(other.confirm.within)
            waiting = self.store.matches_between(name, match.person, match.at - within,
                                                 match.at + within, unconfirmed=True)
            if waiting:
                _, event_key, at = waiting[0]
                platform, _, event_id = event_key.partition(":")
                first = Match(code=name, person=match.person, event_key=event_key,
                              event_id=event_id, platform=platform, kind=match.kind, at=at,
                              evidence={"confirmed_by": match.code, **match.evidence},
                              link=match.link)
                incident = self._open(first, now)
                for waiting_id, _, _ in waiting:
                    self.store.attach_match(waiting_id, incident)
                opened.append(incident)
        return opened

    def _stand_down(self, match: Match, now: datetime) -> None:
        for incident in self.store.open_incidents_of(match.person):
            self.store.set_incident_state(incident, IncidentState.STOOD_DOWN, now,
                                          by=f"code:{match.code}")
            self.store.add_match(incident, match)
            self.store.add_notice(incident, "stood_down", f"code:{match.code}", now)
        log.info("stand-down code used for %s", match.person)

    async def _detect(self, event: Event) -> tuple[list[Match], list[str]]:
        # Image work (decode, hash, keypoints) takes tens of milliseconds: off the loop.
        if event.images and any(d.needs_threads for d in self.detectors.values()):
            return await asyncio.to_thread(detect, self.detectors, event)
        return detect(self.detectors, event)
