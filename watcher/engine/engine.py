"""Events in, incidents out: dedupe, detect, and record what fired in one transaction.

The event is marked seen in the same transaction as the incidents it opened and the
cursor that moved past it, so a crash at any point either redoes the whole event or
nothing of it: never a lost code, never a doubled alarm.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from detectors.codes import Filtered
from watcher.core.clock import utcnow
from watcher.core.config import Config, parse_duration
from watcher.core.models import DetectionFailed, Event, IncidentState, Match
from watcher.core.store import Store
from watcher.engine.checkins import CheckinClock
from watcher.engine.rules import armed, cooldown

log = logging.getLogger("watcher.engine")
# One image at a time: the memory bound of one image (docs/benchmarks.md) holds for the
# process, even while a job abandoned at the time limit is still running.
DETECT_THREADS = 1
REASON_MAX = 1000


@dataclass(frozen=True)
class Outcome:
    event: Event
    duplicate: bool
    matches: tuple[Match, ...] = ()
    incidents: tuple[int, ...] = ()
    failures: tuple[str, ...] = ()


def detect(detectors: Mapping[str, Filtered], event: Event) -> tuple[list[Match], list[str]]:
    """Run every code's detector on an event: pure, no store, usable by replay and audit.

    Each code is isolated: whatever one detector raises (a library's error on a hostile
    image, a bug) is that code's failure, and every other code still looks at the event.
    """
    matches: list[Match] = []
    failures: list[str] = []
    for name, detector in detectors.items():
        if not detector.applies(event):
            continue
        found = run_one(name, detector, event)
        if isinstance(found, str):
            failures.append(found)
        elif found is not None:
            matches.append(found)
    return matches, failures


def run_one(name: str, detector: Filtered, event: Event) -> Match | str | None:
    """One code on one event: a match, None, or the reason it could not look."""
    try:
        evidence = detector.match(event)
    except DetectionFailed as exc:
        return f"{name}: {exc}"
    except Exception as exc:  # contained by design: one item, one failure
        # Only the type: a library's message may quote what it choked on.
        return f"{name}: the check failed ({type(exc).__name__})"
    return None if evidence is None else _match(name, event, evidence)


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
        self.item_timeout = parse_duration(config.watcher.item_timeout).total_seconds()
        # A job abandoned at the time limit keeps its worker until it ends; jobs queued
        # behind it are cancelled at their own limit, never piled up.
        self._threads = ThreadPoolExecutor(max_workers=DETECT_THREADS,
                                           thread_name_prefix="detect")
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
            if failures:
                # The feed and the codes only: keys hold chat ids, reasons may name files.
                codes = ", ".join(f.partition(":")[0] for f in failures)
                log.warning("an item of %s/%s could not be checked for code(s) %s",
                            event.person, event.platform, codes)
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
        if failures:
            # With the seen mark and the cursor: passed, never lost, never re-read in a loop.
            self.store.add_unchecked(event, "; ".join(failures)[:REASON_MAX], now)
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
        """Every code that applies, each isolated; image work in threads, within the item's
        time limit.

        Codes that need no thread (phrases, reactions) run first, on the loop, so a caption
        is matched whatever happens to the photo under it.
        """
        applying = {n: d for n, d in self.detectors.items() if d.applies(event)}
        threaded = {n: d for n, d in applying.items() if event.images and d.needs_threads}
        matches, failures = detect({n: d for n, d in applying.items() if n not in threaded},
                                   event)
        if threaded:
            # A code that also reads images (a phrase with in_images) first looks at the
            # words, here: its caption must not wait behind a stuck image in the thread.
            worded, _ = detect(threaded, replace(event, images=()))
            matches.extend(worded)
            found = {m.code for m in worded}
            threaded = {n: d for n, d in threaded.items() if n not in found}
        if threaded:
            more, failed = await self._detect_in_threads(threaded, event)
            matches.extend(more)
            failures.extend(failed)
        return matches, failures

    async def _detect_in_threads(self, detectors: Mapping[str, Filtered], event: Event
                                 ) -> tuple[list[Match], list[str]]:
        """Image work (decode, hash, keypoints) off the loop, one job per code, all within
        `watcher.item_timeout`.

        A thread cannot be killed: a job past the limit is abandoned (it ends on its own,
        its cost bounded by the decoder's caps) and the event goes on without it, so the
        ingest lock and the feed are released on time. Jobs not yet started are cancelled:
        while an abandoned job still runs, later images wait for it, within their own limit.
        """
        loop = asyncio.get_running_loop()
        jobs = {name: asyncio.wrap_future(self._threads.submit(run_one, name, d, event),
                                          loop=loop)
                for name, d in detectors.items()}
        done, late = await asyncio.wait(jobs.values(), timeout=self.item_timeout)
        for job in late:
            job.cancel()
        matches: list[Match] = []
        failures: list[str] = []
        for name, job in jobs.items():
            if job not in done:
                failures.append(f"{name}: not checked within {self.config.watcher.item_timeout}"
                                " (watcher.item_timeout)")
                continue
            found = job.result()
            if isinstance(found, str):
                failures.append(found)
            elif found is not None:
                matches.append(found)
        return matches, failures
