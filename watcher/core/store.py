"""All durable state in one SQLite file: seen events, cursors, incidents, steps, outbox, health.

One process writes (the watcher's event loop); WAL and a busy timeout keep readers such as
`watcher status` from ever seeing "database is locked". Every write that must be atomic
with another goes through `transaction()`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from watcher.core import evidence
from watcher.core.clock import from_ts, ts
from watcher.core.errors import WatcherError
from watcher.core.migrations import MIGRATIONS
from watcher.core.models import Event, Incident, IncidentState, Match
from watcher.core.rows import (
    LIVE_STATES,
    DeliveryStatus,
    DrillRecord,
    Mark,
    MatchRef,
    Notice,
    Place,
    RunStatus,
    WebToken,
)

log = logging.getLogger("watcher.store")

# A cursor whose feed name ends so is a journal of received items, message text included
# (signal/inbox): deleted when emptied, and the WAL scrubbed (Store.scrub).
JOURNAL_SUFFIX = "/inbox"


class StoreError(WatcherError):
    """The database cannot be opened or written (full disk, read-only file, corruption)."""




class ImageCache(MutableMapping[str, str]):
    """Reference-photo hashes by content hash, so a restart does not hash them again."""

    def __init__(self, store: Store) -> None:
        self.conn = store.conn

    def __getitem__(self, key: str) -> str:
        row = self.conn.execute("SELECT value FROM image_cache WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        (value,) = row
        return str(value)

    def __setitem__(self, key: str, value: str) -> None:
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO image_cache (key, value) VALUES (?, ?)",
                              (key, value))

    def __delitem__(self, key: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM image_cache WHERE key = ?", (key,))

    def __iter__(self) -> Iterator[str]:
        return iter([str(key) for (key,) in self.conn.execute("SELECT key FROM image_cache")])

    def __len__(self) -> int:
        (count,) = self.conn.execute("SELECT COUNT(*) FROM image_cache").fetchone()
        return int(count)


@dataclass(frozen=True)
class Run:
    incident_id: int
    playbook: str
    step: int
    due_at: datetime
    waiting: bool
    repeats: dict[str, int]


@dataclass(frozen=True)
class Delivery:
    id: int
    incident_id: int | None
    contact: str
    channel: str
    address: str
    text: str
    attempts: int
    kind: str = "alert"


def os_reason(exc: OSError) -> str:
    """What went wrong, with the path it went wrong on (which may be a parent folder)."""
    reason = exc.strerror or type(exc).__name__
    return f"{reason} ({exc.filename})" if exc.filename else reason


@dataclass(frozen=True)
class Unchecked:
    id: int
    event_key: str
    person: str
    platform: str
    at: datetime
    link: str | None
    reason: str
    created_at: datetime


def _create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does, so it is never world-readable.

    A database (or its -wal/-shm) that others can read is tightened, with a warning: it holds
    the evidence, the outbox and cursors (i13-leaks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(part.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            part.chmod(0o600)
            log.warning("%s was readable by others (mode %o): now readable by its owner only",
                        part.name, mode)


class Store:
    def __init__(self, path: Path | None) -> None:
        try:
            if path is None:
                conn = sqlite3.connect(":memory:")
            else:
                _create_private(path)
                conn = sqlite3.connect(path, timeout=10)
            conn.execute("PRAGMA busy_timeout = 10000")
            self.db = sqlite_utils.Database(conn)
            if path is not None:
                self.db.enable_wal()
            conn.execute("PRAGMA synchronous = FULL")
            # Freed pages (e.g. a connector's inbox journal) are zeroed, not left readable.
            conn.execute("PRAGMA secure_delete = ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the database {path}: {exc}") from exc
        except OSError as exc:  # its folder or file cannot be made: a file in the way, no right
            raise StoreError(f"cannot open the database {path}: {os_reason(exc)}") from exc
        self.conn = conn
        # i13-leaks: the evidence head is anchored outside the database after each commit
        # that appended to it (set by the app with attach_anchor; None: not anchored).
        self.anchorer: evidence.Anchorer | None = None
        self._written: list[str] = []
        self._scrub = False

    # -- the evidence log (its table module is watcher/core/evidence.py) ----------------

    def evidence_entries(self, start: datetime | None = None, end: datetime | None = None,
                         incident: int | None = None) -> Iterator[evidence.Entry]:
        return evidence.entries(self.conn, start, end, incident)

    def evidence_verify(self) -> tuple[int, str | None]:
        """(entries checked, first problem or None) of the whole chain."""
        return evidence.verify(self.conn)

    def evidence_check(self, anchors: Path, key: bytes | None,
                       expect: Sequence[tuple[int, str]] = ()) -> evidence.Verdict:
        return evidence.check(self.conn, anchors, key, expect)

    def evidence_fingerprint(self) -> str:
        return evidence.fingerprint(self.conn)

    def attach_anchor(self, anchorer: evidence.Anchorer) -> None:
        self.anchorer = anchorer
        anchorer.start(self.conn)

    def anchor_tick(self) -> None:
        if self.anchorer is not None:
            self.anchorer.tick(self.conn)

    def _migrate(self) -> None:
        conn = self.db.conn
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # One script, one transaction, with its version number: all or nothing.
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._written = []
        try:
            with self.conn:
                yield
        except sqlite3.OperationalError as exc:
            raise StoreError(f"the database cannot be written: {exc}") from exc
        finally:
            written, self._written = self._written, []
        if written and self.anchorer is not None:  # only after the commit: never ahead of it
            self.anchorer.committed(self.conn, written)
        if self._scrub:
            self.scrub()

    def scrub(self) -> bool:
        """Copy the WAL into the database and truncate it: old versions of rows (a journal
        of received messages) leave the disk's files. False if a reader kept it busy; the
        next scrub finishes it. (secure_delete zeroes the freed space in the database.)"""
        self._scrub = False
        busy = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        return not busy

    def close(self) -> None:
        self.conn.close()

    def _rows(self, query: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        """Rows read by column name (the connection's own rows stay plain tuples)."""
        cur = self.conn.cursor()
        cur.row_factory = sqlite3.Row
        return cur.execute(query, args).fetchall()

    def _row(self, query: str, args: Sequence[object] = ()) -> sqlite3.Row | None:
        rows = self._rows(query, args)
        return rows[0] if rows else None

    # -- the watcher's bookkeeping moments (Mark) -------------------------------------

    def mark(self, name: Mark, key: str, at: datetime) -> None:
        self.conn.execute(
            "INSERT INTO marks (name, key, at) VALUES (?, ?, ?) "
            "ON CONFLICT(name, key) DO UPDATE SET at = excluded.at",
            (name.value, key, ts(at)))

    def marked(self, name: Mark, key: str = "") -> datetime | None:
        row = self._row("SELECT at FROM marks WHERE name = ? AND key = ?", (name.value, key))
        return None if row is None else from_ts(row["at"])

    def clear_mark(self, name: Mark, key: str = "") -> None:
        self.conn.execute("DELETE FROM marks WHERE name = ? AND key = ?", (name.value, key))

    def marked_keys(self, name: Mark) -> list[str]:
        return [str(r["key"]) for r in
                self._rows("SELECT key FROM marks WHERE name = ? ORDER BY key", (name.value,))]

    # -- seen events and cursors ------------------------------------------------------

    def seen(self, key: str) -> bool:
        return self._row("SELECT 1 FROM seen_events WHERE key = ?", (key,)) is not None

    def mark_seen(self, event: Event, now: datetime) -> None:
        self.conn.execute(
            "INSERT OR IGNORE INTO seen_events (key, feed, at, seen_at) VALUES (?, ?, ?, ?)",
            (event.key, event.feed_name, ts(event.at), ts(now)),
        )

    def cursor(self, feed: str) -> str | None:
        """A feed's position, or a connector's own durable state (through its Sink)."""
        row = self._row("SELECT value FROM cursors WHERE feed = ?", (feed,))
        return None if row is None else str(row["value"])

    def set_cursor(self, feed: str, value: str, now: datetime) -> None:
        if feed.endswith(JOURNAL_SUFFIX) and value in ("", "[]"):
            # i13-leaks: an emptied journal is deleted, and once committed the WAL, which
            # holds every earlier version of it, is checkpointed and truncated.
            self.conn.execute("DELETE FROM cursors WHERE feed = ?", (feed,))
            self._scrub = True
            return
        self.conn.execute(
            "INSERT INTO cursors (feed, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(feed) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (feed, value, ts(now)),
        )

    # -- places where watched people were seen (never sent to) ------------------------

    def record_places(self, event: Event, now: datetime) -> None:
        """Remember where the event's person was seen, in the caller's transaction."""
        for place in event.places:
            self.add_place(event.platform, place, event.person, now)

    def add_place(self, platform: str, place: str, person: str, now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO places (platform, place, person, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(platform, place, person) "
            "DO UPDATE SET last_seen = MAX(last_seen, excluded.last_seen)",
            (platform, place, person, ts(now), ts(now)))

    def places(self) -> list[tuple[str, str, str]]:
        """Every (platform, place, person) a watched person was seen in (as `Place`s; typed
        as plain tuples because the guard keeps them in a list of those)."""
        rows = self._rows("SELECT platform, place, person FROM places")
        return [Place(str(r["platform"]), str(r["place"]), str(r["person"])) for r in rows]

    # -- incidents and runs ----------------------------------------------------------

    def open_incident(self, match: Match, playbook: str | None, now: datetime,
                      drill: bool = False, matched: str = "") -> int:
        cur = self.conn.execute(
            "INSERT INTO incidents (code, person, state, drill, opened_at, updated_at, "
            "event_key, platform, link, matched, event_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (match.code, match.person, IncidentState.OPEN.value, int(drill), ts(now), ts(now),
             match.event_key, match.platform, match.link, matched, ts(match.at)),
        )
        incident_id = int(cur.lastrowid or 0)
        self.log(now, "drill" if drill else "incident", incident_id,
                 {"state": "open", "code": match.code, "person": match.person,
                  "event": match.event_key, "link": match.link, "matched": matched})
        self.add_match(incident_id, match)
        if playbook is not None:
            self.conn.execute(
                "INSERT INTO runs (incident_id, playbook, step, due_at, status) "
                "VALUES (?, ?, 0, ?, ?)",
                (incident_id, playbook, ts(now), RunStatus.ACTIVE.value),
            )
        return incident_id

    def add_match(self, incident_id: int | None, match: Match) -> int:
        cur = self.conn.execute(
            "INSERT INTO matches (incident_id, code, person, event_key, at, evidence) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (incident_id, match.code, match.person, match.event_key, ts(match.at),
             json.dumps(dict(match.evidence), sort_keys=True, default=str)),
        )
        self.log(match.at, "match", incident_id,
                 {"code": match.code, "person": match.person, "event": match.event_key,
                  "link": match.link, **dict(match.evidence)})
        return int(cur.lastrowid or 0)

    def log(self, at: datetime, kind: str, incident_id: int | None,
            data: Mapping[str, Any]) -> None:
        """Append to the evidence log, in the caller's transaction."""
        self._written.append(evidence.append(self.conn, ts(at), kind, incident_id, data))

    def matches_between(self, code: str, person: str, start: datetime, end: datetime,
                        unconfirmed: bool = False) -> list[MatchRef]:
        """(match id, event key, time) of a code's matches in a window, oldest first."""
        query = ("SELECT id, event_key, at FROM matches WHERE code = ? AND person = ? "
                 "AND at >= ? AND at <= ?" + (" AND incident_id IS NULL" if unconfirmed else "")
                 + " ORDER BY at")
        rows = self._rows(query, (code, person, ts(start), ts(end)))
        return [MatchRef(int(r["id"]), str(r["event_key"]), from_ts(r["at"])) for r in rows]

    def attach_match(self, match_id: int, incident_id: int) -> None:
        self.conn.execute("UPDATE matches SET incident_id = ? WHERE id = ?",
                          (incident_id, match_id))

    def open_incident_of(self, code: str, person: str, since: datetime) -> int | None:
        row = self._row(
            "SELECT id FROM incidents WHERE code = ? AND person = ? AND opened_at >= ? "
            "AND state IN (?, ?) AND drill = 0 ORDER BY id DESC LIMIT 1",
            (code, person, ts(since), *LIVE_STATES))
        return None if row is None else int(row["id"])

    def open_incidents_of(self, person: str) -> list[int]:
        rows = self._rows("SELECT id FROM incidents WHERE person = ? AND state IN (?, ?) "
                          "ORDER BY id", (person, *LIVE_STATES))
        return [int(r["id"]) for r in rows]

    # -- notices: things to tell contacts about an incident (ack, stand-down, ...) -------

    def add_notice(self, incident_id: int, kind: str, actor: str | None, now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO notices (incident_id, kind, actor, created_at) VALUES (?, ?, ?, ?)",
            (incident_id, kind, actor, ts(now)))

    def pending_notices(self, limit: int = 100) -> list[Notice]:
        rows = self._rows("SELECT id, incident_id, kind, actor FROM notices WHERE done = 0 "
                          "ORDER BY id LIMIT ?", (limit,))
        return [Notice(int(r["id"]), int(r["incident_id"]), str(r["kind"]), r["actor"])
                for r in rows]

    def notice_done(self, notice_id: int) -> None:
        self.conn.execute("UPDATE notices SET done = 1 WHERE id = ?", (notice_id,))

    def finish_run(self, incident_id: int, now: datetime) -> None:
        self.conn.execute("UPDATE runs SET status = ?, due_at = ? WHERE incident_id = ?",
                          (RunStatus.FINISHED.value, ts(now), incident_id))

    def acknowledge(self, incident_id: int, contact: str, now: datetime,
                    channel: str | None = None) -> bool:
        """Mark an open incident acknowledged; False if it was not open (first ack wins).
        The evidence log records who acknowledged and on which channel."""
        cur = self.conn.execute(
            "UPDATE incidents SET state = ?, acked_by = ?, acked_at = ?, "
            "updated_at = ? WHERE id = ? AND state = ?",
            (IncidentState.ACKNOWLEDGED.value, contact, ts(now), ts(now), incident_id,
             IncidentState.OPEN.value))
        if cur.rowcount == 1:
            data = {"contact": contact} | ({"channel": channel} if channel else {})
            self.log(now, "ack", incident_id, data)
        return cur.rowcount == 1

    def acked_by(self, incident_id: int) -> str | None:
        row = self._row("SELECT acked_by FROM incidents WHERE id = ?", (incident_id,))
        return None if row is None or row["acked_by"] is None else str(row["acked_by"])

    def told(self, incident_id: int) -> list[str]:
        """Contacts who were sent (or are being sent) an alert about this incident."""
        rows = self._rows(
            "SELECT DISTINCT contact FROM outbox WHERE incident_id = ? ORDER BY contact",
            (incident_id,))
        return [str(r["contact"]) for r in rows]

    def incidents_told_to(self, contact: str,
                          states: tuple[str, ...] = (IncidentState.OPEN,)) -> list[int]:
        marks = ",".join("?" * len(states))
        rows = self._rows(
            f"SELECT DISTINCT i.id FROM incidents i JOIN outbox o ON o.incident_id = i.id "
            f"WHERE o.contact = ? AND i.state IN ({marks}) ORDER BY i.id",
            (contact, *(IncidentState(s).value for s in states)))
        return [int(r["id"]) for r in rows]

    def incident_by_ref(self, channel: str, address: str | None,
                        platform_ref: str) -> int | None:
        """The incident of the message we sent with this platform id into this chat.

        Message ids are per chat on Telegram (and a Signal timestamp names a message only
        with its conversation), so the chat (`address`) is part of the key: without it, a
        reply to alert #2 in one chat could name #3 sent to another. No chat, no match.
        """
        if address is None:
            return None
        row = self._row(
            "SELECT incident_id FROM outbox WHERE channel = ? AND address = ? "
            "AND platform_ref = ? AND incident_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            (channel, address, platform_ref))
        return None if row is None else int(row["incident_id"])

    def incidents_told_in(self, channel: str, address: str,
                          states: tuple[str, ...] = (IncidentState.OPEN,)) -> list[int]:
        """Incidents in these states that an alert or notice was sent about into a chat."""
        marks = ",".join("?" * len(states))
        rows = self._rows(
            f"SELECT DISTINCT i.id FROM incidents i JOIN outbox o ON o.incident_id = i.id "
            f"WHERE o.channel = ? AND o.address = ? AND i.state IN ({marks}) ORDER BY i.id",
            (channel, address, *(IncidentState(s).value for s in states)))
        return [int(r["id"]) for r in rows]

    def incident(self, incident_id: int) -> Incident | None:
        row = self._row(
            "SELECT id, code, person, state, opened_at, drill, event_key, link, matched, event_at "
            "FROM incidents WHERE id = ?", (incident_id,))
        if row is None:
            return None
        return Incident(id=int(row["id"]), code=row["code"], person=row["person"],
                        state=IncidentState(row["state"]), opened_at=from_ts(row["opened_at"]),
                        drill=bool(row["drill"]), event_key=row["event_key"], link=row["link"],
                        matched=row["matched"],
                        event_at=from_ts(row["event_at"]) if row["event_at"] else None)

    def incidents(self, state: IncidentState | None = None) -> list[Incident]:
        query = "SELECT id FROM incidents" + (" WHERE state = ?" if state else "") + " ORDER BY id"
        ids = [int(r["id"]) for r in self._rows(query, (state.value,) if state else ())]
        return [i for i in (self.incident(n) for n in ids) if i is not None]

    def set_incident_state(self, incident_id: int, state: IncidentState, now: datetime,
                           by: str | None = None) -> None:
        """`by`: who did it (a contact key, "code:NAME", "cli"), kept in the evidence log."""
        self.conn.execute("UPDATE incidents SET state = ?, updated_at = ? WHERE id = ?",
                          (state.value, ts(now), incident_id))
        self.log(now, "incident", incident_id,
                 {"state": state.value} | ({"by": by} if by else {}))
        if state in (IncidentState.STOOD_DOWN, IncidentState.RESOLVED):
            self.finish_run(incident_id, now)

    def due_runs(self, now: datetime, limit: int = 100) -> list[Run]:
        rows = self._rows(
            "SELECT incident_id, playbook, step, due_at, waiting, repeats FROM runs "
            "WHERE status = ? AND due_at <= ? ORDER BY due_at LIMIT ?",
            (RunStatus.ACTIVE.value, ts(now), limit))
        return [_run(r) for r in rows]

    def active_runs(self) -> list[Run]:
        """Every playbook still running, the next step due first (`watcher status`)."""
        rows = self._rows(
            "SELECT incident_id, playbook, step, due_at, waiting, repeats FROM runs "
            "WHERE status = ? ORDER BY due_at", (RunStatus.ACTIVE.value,))
        return [_run(r) for r in rows]

    def next_due(self) -> datetime | None:
        row = self._row(
            "SELECT MIN(due_at) AS due FROM (SELECT due_at FROM runs WHERE status = ? "
            "UNION ALL SELECT next_try_at FROM outbox WHERE status = ?)",
            (RunStatus.ACTIVE.value, DeliveryStatus.PENDING.value))
        return None if row is None or row["due"] is None else from_ts(row["due"])

    def update_run(self, incident_id: int, *, step: int, due_at: datetime, waiting: bool,
                   repeats: Mapping[str, int], status: str = RunStatus.ACTIVE) -> None:
        self.conn.execute(
            "UPDATE runs SET step = ?, due_at = ?, waiting = ?, repeats = ?, status = ? "
            "WHERE incident_id = ?",
            (step, ts(due_at), int(waiting), json.dumps(dict(repeats)), RunStatus(status).value,
             incident_id))

    def purge_seen(self, before: datetime) -> int:
        """Forget dedupe keys seen before `before`; cursors keep old events from returning."""
        cur = self.conn.execute("DELETE FROM seen_events WHERE seen_at < ?", (ts(before),))
        return cur.rowcount

    def last_drill(self, code: str) -> datetime | None:
        row = self._row("SELECT MAX(opened_at) AS last FROM incidents WHERE code = ? "
                        "AND drill = 1", (code,))
        return from_ts(row["last"]) if row and row["last"] else None

    def drill(self, incident_id: int) -> DrillRecord | None:
        rows = self._rows("SELECT id, code, opened_at, state, acked_by, acked_at FROM incidents "
                          "WHERE id = ? AND drill = 1", (incident_id,))
        return _drill(rows[0]) if rows else None

    def drills(self, limit: int = 10) -> list[DrillRecord]:
        """The latest drills, newest first."""
        rows = self._rows("SELECT id, code, opened_at, state, acked_by, acked_at FROM incidents "
                          "WHERE drill = 1 ORDER BY id DESC LIMIT ?", (limit,))
        return [_drill(r) for r in rows]

    def run_active(self, incident_id: int) -> bool:
        row = self._row("SELECT status FROM runs WHERE incident_id = ?", (incident_id,))
        return row is not None and row["status"] == RunStatus.ACTIVE

    def playbook_ended(self, incident_id: int) -> datetime | None:
        """When an incident's playbook ran out with nobody acknowledging (None otherwise)."""
        row = self._row(
            "SELECT r.due_at FROM runs r JOIN incidents i ON i.id = r.incident_id "
            "WHERE r.incident_id = ? AND r.status = ? AND i.state = ?",
            (incident_id, RunStatus.FINISHED.value, IncidentState.OPEN.value))
        return None if row is None else from_ts(row["due_at"])

    def pending_deliveries(self, incident_id: int) -> int:
        row = self._row("SELECT COUNT(*) AS n FROM outbox WHERE incident_id = ? AND status = ?",
                        (incident_id, DeliveryStatus.PENDING.value))
        return 0 if row is None else int(row["n"])

    def pending_messages(self) -> int:
        """Messages of every kind still waiting in the outbox."""
        row = self._row("SELECT COUNT(*) AS n FROM outbox WHERE status = ?",
                        (DeliveryStatus.PENDING.value,))
        return 0 if row is None else int(row["n"])

    def pending_runs(self) -> int:
        row = self._row("SELECT COUNT(*) AS n FROM runs WHERE status = ?",
                        (RunStatus.ACTIVE.value,))
        return 0 if row is None else int(row["n"])

    # -- outbox ----------------------------------------------------------------------

    def enqueue(self, incident_id: int | None, contact: str, channel: str, address: str,
                text: str, now: datetime, kind: str = "alert") -> int:
        cur = self.conn.execute(
            "INSERT INTO outbox (incident_id, contact, channel, address, text, status, "
            "next_try_at, created_at, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (incident_id, contact, channel, address, text, DeliveryStatus.PENDING.value,
             ts(now), ts(now), kind))
        return int(cur.lastrowid or 0)

    def due_deliveries(self, now: datetime, limit: int = 100) -> list[Delivery]:
        rows = self._rows(
            "SELECT id, incident_id, contact, channel, address, text, attempts, kind FROM outbox "
            "WHERE status = ? AND next_try_at <= ? ORDER BY id LIMIT ?",
            (DeliveryStatus.PENDING.value, ts(now), limit))
        return [Delivery(id=int(r["id"]), incident_id=r["incident_id"], contact=r["contact"],
                         channel=r["channel"], address=r["address"], text=r["text"],
                         attempts=int(r["attempts"]), kind=r["kind"]) for r in rows]

    def delivery_done(self, delivery_id: int, now: datetime,
                      platform_ref: str | None = None) -> None:
        self.conn.execute(
            "UPDATE outbox SET status = ?, sent_at = ?, attempts = attempts + 1, "
            "error = NULL, platform_ref = ? WHERE id = ?",
            (DeliveryStatus.SENT.value, ts(now), platform_ref, delivery_id))
        self._log_delivery(delivery_id, now, DeliveryStatus.SENT, None)

    def _log_delivery(self, delivery_id: int, now: datetime, status: DeliveryStatus,
                      error: str | None) -> None:
        row = self._row("SELECT incident_id, contact, channel, kind FROM outbox WHERE id = ?",
                        (delivery_id,))
        if row is not None:
            self.log(now, "delivery", row["incident_id"],
                     {"contact": row["contact"], "channel": row["channel"],
                      "message": row["kind"], "status": status.value, "error": error})

    def delivery_retry(self, delivery_id: int, error: str, next_try: datetime) -> None:
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, error = ?, next_try_at = ? WHERE id = ?",
            (error, ts(next_try), delivery_id))

    def delivery_postpone(self, delivery_id: int, until: datetime) -> None:
        self.conn.execute("UPDATE outbox SET next_try_at = ? WHERE id = ?",
                          (ts(until), delivery_id))

    def delivery_failed(self, delivery_id: int, error: str, now: datetime) -> None:
        self.conn.execute(
            "UPDATE outbox SET status = ?, attempts = attempts + 1, error = ? WHERE id = ?",
            (DeliveryStatus.FAILED.value, error, delivery_id))
        self._log_delivery(delivery_id, now, DeliveryStatus.FAILED, error)

    # -- items that could not be checked ------------------------------------------------

    def add_unchecked(self, event: Event, reason: str, now: datetime) -> None:
        """An item passed without a full check. `reason` names codes and causes, never
        the item's content."""
        self.conn.execute(
            "INSERT OR IGNORE INTO unchecked (event_key, feed, person, platform, at, link, "
            "reason, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (event.key, event.feed_name, event.person, event.platform, ts(event.at),
             event.link, reason, ts(now)))

    def pending_unchecked(self) -> list[Unchecked]:
        """Items whose contacts have not been told yet, oldest first."""
        rows = self._rows(
            "SELECT id, event_key, person, platform, at, link, reason, created_at "
            "FROM unchecked WHERE notified = 0 ORDER BY id")
        return [Unchecked(id=int(r["id"]), event_key=r["event_key"], person=r["person"],
                          platform=r["platform"], at=from_ts(r["at"]), link=r["link"],
                          reason=r["reason"], created_at=from_ts(r["created_at"]))
                for r in rows]

    def unchecked_told(self, ids: list[int]) -> None:
        self.conn.executemany("UPDATE unchecked SET notified = 1 WHERE id = ?",
                              [(i,) for i in ids])

    def unchecked(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.table("unchecked").rows_where(order_by="id")]

    def feed_ok(self, feed: str, now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO health (feed, last_ok, failures) VALUES (?, ?, 0) "
            "ON CONFLICT(feed) DO UPDATE SET last_ok = excluded.last_ok, failures = 0, "
            "blind_since = NULL, detail = NULL, permanent = 0", (feed, ts(now)))

    def feed_failing(self, feed: str) -> str | None:
        """The problem a feed is currently reported with, if it is failing."""
        row = self._row("SELECT detail FROM health WHERE feed = ? AND blind_since IS NOT NULL",
                        (feed,))
        return None if row is None else str(row["detail"] or "")

    def feed_failed(self, feed: str, detail: str, now: datetime,
                    permanent: bool = False) -> None:
        """`permanent`: a person must act (lost access); the latest report's kind counts,
        like its detail."""
        self.conn.execute(
            "INSERT INTO health (feed, failures, blind_since, detail, permanent) "
            "VALUES (?, 1, ?, ?, ?) "
            "ON CONFLICT(feed) DO UPDATE SET failures = failures + 1, detail = excluded.detail, "
            "blind_since = COALESCE(blind_since, excluded.blind_since), "
            "permanent = excluded.permanent",
            (feed, ts(now), detail, int(permanent)))

    def feed_event(self, feed: str, now: datetime) -> None:
        self.conn.execute(
            "INSERT INTO health (feed, last_ok, last_event, failures) VALUES (?, ?, ?, 0) "
            "ON CONFLICT(feed) DO UPDATE SET last_event = excluded.last_event, "
            "last_ok = excluded.last_ok, failures = 0, blind_since = NULL, detail = NULL, "
            "permanent = 0", (feed, ts(now), ts(now)))

    def health(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.table("health").rows_where(order_by="feed")]

    def deliveries(self, incident_id: int | None = None) -> list[dict[str, Any]]:
        table = self.db.table("outbox")
        where = "incident_id = ?" if incident_id is not None else None
        args = [incident_id] if incident_id is not None else None
        return [dict(r) for r in table.rows_where(where, args, order_by="id")]

    # -- the contacts' page: secret links, stored only as hashes (i14-web) ---------------

    def add_web_token(self, digest: str, contact: str, scope: str, now: datetime) -> None:
        self.conn.execute("INSERT INTO web_tokens (hash, contact, scope, created_at) "
                          "VALUES (?, ?, ?, ?)", (digest, contact, scope, ts(now)))

    def web_token(self, digest: str) -> WebToken | None:
        """(hash, contact, scope) of a link that has not been revoked."""
        row = self._row("SELECT hash, contact, scope FROM web_tokens WHERE hash = ? "
                        "AND revoked_at IS NULL", (digest,))
        return None if row is None else \
            WebToken(str(row["hash"]), str(row["contact"]), str(row["scope"]))

    def revoke_web_tokens(self, contact: str, now: datetime) -> int:
        """End every link of a contact (their page link and their alerts' links)."""
        cur = self.conn.execute("UPDATE web_tokens SET revoked_at = ? WHERE contact = ? "
                                "AND revoked_at IS NULL", (ts(now), contact))
        return cur.rowcount

    def last_delivery(self, contact: str, channel: str, address: str) -> dict[str, Any] | None:
        """The latest outbox row to one of a contact's addresses (the page shows its result)."""
        row = self._row(
            "SELECT id, kind, status, error, created_at, sent_at FROM outbox WHERE contact = ? "
            "AND channel = ? AND address = ? ORDER BY id DESC LIMIT 1",
            (contact, channel, address))
        return None if row is None else dict(row)


def _run(row: sqlite3.Row) -> Run:
    return Run(incident_id=int(row["incident_id"]), playbook=row["playbook"],
               step=int(row["step"]), due_at=from_ts(row["due_at"]),
               waiting=bool(row["waiting"]), repeats=json.loads(row["repeats"]))


def _drill(row: sqlite3.Row) -> DrillRecord:
    return DrillRecord(id=int(row["id"]), code=row["code"], opened_at=from_ts(row["opened_at"]),
                       state=row["state"], acked_by=row["acked_by"],
                       acked_at=from_ts(row["acked_at"]) if row["acked_at"] else None)
