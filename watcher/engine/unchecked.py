"""Items that could not be checked, and connectors that keep crashing: told to the contacts.

The engine records an item it could not fully check (an image that would not decode, a
check past `watcher.item_timeout`) and passes it. Here the person's contacts are told, in
plain words, to look at it themselves: one message per burst, not one per item, because a
hostile sender can post fifty bad images in a minute. Driven from App.supervise, through
the outbox like supervision's blind-watch messages.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta

from playbooks import outbox
from watcher.core.config import Config, NotifyStep
from watcher.core.rows import Mark
from watcher.core.store import Store, Unchecked

log = logging.getLogger("watcher.unchecked")

# A burst is gathered for this long after its first item, so it becomes one message...
GATHER = timedelta(seconds=30)
# ...and a person's contacts get at most one such message per this gap.
MIN_GAP = timedelta(minutes=5)
# Items listed in one message; the rest are counted.
LIST_MAX = 10

ONE = ("{name} posted something on {platform} at {at} that the watcher could not check: "
       "{link}. Please look at it yourself.")
MANY = ("{name} posted {count} things that the watcher could not check. Please look at "
        "them yourself:")
NO_LINK = "(no link: look in their {platform})"

CRASHES = 3
CRASH_WINDOW = 600.0  # seconds
CRASH_RETELL = timedelta(hours=1)
CRASH_LOOP = ("WATCH FAILING: the {platform} watch keeps failing on an unexpected error "
              "({count} times in {minutes} minutes); restarting. Until it runs again, a "
              "duress code sent there may NOT be seen. What to do: check the watcher's log "
              "on its server, update the watcher, and meanwhile check {platform} by hand.")


def contacts_of(config: Config, person: str) -> list[str]:
    """The contacts the person's codes alert (every contact if none is named)."""
    found: set[str] = set()
    for code in config.codes.values():
        playbook = config.playbooks.get(code.playbook or "")
        if code.person != person or playbook is None:
            continue
        for step in playbook.steps:
            if isinstance(step, NotifyStep):
                found.update(step.notify)
    found &= set(config.contacts)
    return sorted(found) if found else sorted(config.contacts)


class UncheckedNotices:
    def __init__(self, config: Config, store: Store, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.clock = clock

    def tick(self) -> int:
        """Tell each person's contacts about their pending items once the burst has
        gathered; return how many messages were queued."""
        now = self.clock()
        by_person: dict[str, list[Unchecked]] = {}
        for item in self.store.pending_unchecked():
            by_person.setdefault(item.person, []).append(item)
        sent = 0
        for person, items in by_person.items():
            if now - items[0].created_at < GATHER:
                continue
            last = self.store.marked(Mark.UNCHECKED, person)
            if last and now - last < MIN_GAP:
                continue
            with self.store.transaction():
                outbox.tell(self.config, self.store, contacts_of(self.config, person),
                            self.text(person, items), "unchecked", now)
                self.store.unchecked_told([i.id for i in items])
                self.store.mark(Mark.UNCHECKED, person, now)
            log.warning("told the contacts of %s about %d item(s) that could not be checked",
                        person, len(items))
            sent += 1
        return sent

    def text(self, person: str, items: list[Unchecked]) -> str:
        known = person in self.config.people
        # An item no connector could read may not say whose it was.
        name = self.config.people[person].name if known else (
            person or "Someone in a watched chat or account")
        zone = self.config.person_zone(person) if known else self.config.default_zone

        def where(item: Unchecked) -> tuple[str, str, str]:
            platform = item.platform.capitalize()
            return (platform, f"{item.at.astimezone(zone):%H:%M}",
                    item.link or NO_LINK.format(platform=platform))

        if len(items) == 1:
            platform, at, link = where(items[0])
            return ONE.format(name=name, platform=platform, at=at, link=link)
        lines = [MANY.format(name=name, count=len(items))]
        for item in items[:LIST_MAX]:
            platform, at, link = where(item)
            lines.append(f"- {platform} at {at}: {link}")
        if len(items) > LIST_MAX:
            lines.append(f"- and {len(items) - LIST_MAX} more.")
        return "\n".join(lines)


class CrashWatch:
    """Counts a connector's unexpected crashes; a loop of them is told to every contact."""

    def __init__(self, config: Config, store: Store, clock: Callable[[], datetime],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.monotonic = monotonic
        self._crashes: dict[str, deque[float]] = {}

    def crashed(self, connector: str) -> bool:
        """Record a crash; True when it made a loop that was told to the contacts."""
        recent = self._crashes.setdefault(connector, deque(maxlen=CRASHES))
        recent.append(self.monotonic())
        if len(recent) < CRASHES or recent[-1] - recent[0] > CRASH_WINDOW:
            return False
        now = self.clock()
        told = self.store.marked(Mark.CRASHLOOP, connector)
        if told and now - told < CRASH_RETELL:
            return False
        text = CRASH_LOOP.format(platform=connector.capitalize(), count=CRASHES,
                                 minutes=int(CRASH_WINDOW // 60))
        with self.store.transaction():
            outbox.tell(self.config, self.store, self.config.contacts, text, "crash_loop", now)
            self.store.mark(Mark.CRASHLOOP, connector, now)
        log.error("the %s connector keeps crashing; the contacts were told", connector)
        return True
