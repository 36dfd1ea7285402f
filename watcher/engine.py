"""Events in, incidents out: dedupe, detect, and record what fired in one transaction.

The event is marked seen in the same transaction as the incidents it opened and the
cursor that moved past it, so a crash at any point either redoes the whole event or
nothing of it: never a lost code, never a doubled alarm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from detectors.codes import Filtered
from watcher.config import Config
from watcher.models import DetectionFailed, Event, Match, utcnow
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
        self.on_incident: list[Callable[[int], None]] = []

    async def ingest(self, event: Event, cursor: tuple[str, str] | None = None) -> Outcome:
        """Process one event; `cursor` (feed, value) is committed with it."""
        if self.store.seen(event.key):
            if cursor is not None:
                with self.store.transaction():
                    self.store.set_cursor(*cursor, self.clock())
            return Outcome(event, duplicate=True)
        matches, failures = await self._detect(event)
        for failure in failures:
            # The event key, never its content: message text stays out of logs.
            log.warning("detection failed for event %s: %s", event.key, failure)
        incidents = []
        now = self.clock()
        with self.store.transaction():
            self.store.mark_seen(event, now)
            for match in matches:
                code = self.config.codes[match.code]
                incidents.append(self.store.open_incident(
                    match, code.playbook, now, matched=str(match.evidence.get("matched", ""))))
            if cursor is not None:
                self.store.set_cursor(*cursor, now)
        for incident in incidents:
            log.info("incident %s opened", incident)
            for callback in self.on_incident:
                callback(incident)
        return Outcome(event, False, tuple(matches), tuple(incidents), tuple(failures))

    async def _detect(self, event: Event) -> tuple[list[Match], list[str]]:
        # Image work (decode, hash, keypoints) takes tens of milliseconds: off the loop.
        if event.images and any(d.needs_threads for d in self.detectors.values()):
            return await asyncio.to_thread(detect, self.detectors, event)
        return detect(self.detectors, event)
