"""The evidence log: append-only, hash-chained, for an advocate or a court.

Each entry carries the SHA-256 of the previous one, so an edited or deleted row breaks the
chain at a place `verify` can name. Entries hold what fired and why (the matched span, the
image distances, the link), never whole message bodies.

The chain alone proves nothing against someone who can write the database (drop the
triggers, rewrite, recompute): its head is also anchored outside it (watcher/core/anchor.py), and
`check` compares the two and says what that proves and what it cannot.
"""

from __future__ import annotations

import hashlib
import html
import json
import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from watcher.core import anchor

log = logging.getLogger("watcher.evidence")

GENESIS = "0" * 64

SCHEMA = """
CREATE TABLE evidence (id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL,
                       incident_id INTEGER, data TEXT NOT NULL, prev_hash TEXT NOT NULL,
                       hash TEXT NOT NULL);
CREATE TRIGGER evidence_no_update BEFORE UPDATE ON evidence
  BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
CREATE TRIGGER evidence_no_delete BEFORE DELETE ON evidence
  BEGIN SELECT RAISE(ABORT, 'the evidence log is append-only'); END;
"""


def entry_hash(prev: str, entry_id: int, at: str, kind: str, incident: int | None,
               data: str) -> str:
    body = json.dumps([prev, entry_id, at, kind, incident, data], ensure_ascii=False)
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class EvidenceMissing(Exception):
    """The database has no evidence table (never created here, or dropped)."""


def require_table(conn: sqlite3.Connection) -> None:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evidence'")
    if row.fetchone() is None:
        raise EvidenceMissing("this database has no evidence log (the table is missing: it "
                              "was removed, or the file is not a watcher database)")


def append(conn: sqlite3.Connection, at: str, kind: str, incident: int | None,
           data: Mapping[str, Any]) -> str:
    """Add an entry; call inside the transaction that made the change it records.

    Returns the new entry's hash (the store tells the anchor which entries are its own)."""
    last, prev = head(conn)
    entry_id = last + 1
    text = json.dumps(dict(data), sort_keys=True, ensure_ascii=False, default=str)
    digest = entry_hash(prev, entry_id, at, kind, incident, text)
    conn.execute(
        "INSERT INTO evidence (id, at, kind, incident_id, data, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (entry_id, at, kind, incident, text, prev, digest))
    return digest


def head(conn: sqlite3.Connection) -> tuple[int, str]:
    """(id, hash) of the last entry; (0, GENESIS) for an empty log."""
    row = conn.execute("SELECT id, hash FROM evidence ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return 0, GENESIS
    entry_id, digest = row
    return int(entry_id), str(digest)


FINGERPRINT = 16  # hex digits of the head sent to contacts: 64 bits, not forgeable by search


def fingerprint(conn: sqlite3.Connection) -> str:
    """The head as contacts receive it in the digest, and as `verify --expect` takes it."""
    seq, digest = head(conn)
    return f"{seq}:{digest[:FINGERPRINT]}"


@dataclass(frozen=True)
class Entry:
    id: int
    at: str
    kind: str
    incident: int | None
    data: dict[str, Any]
    prev_hash: str
    hash: str


def entries(conn: sqlite3.Connection, start: datetime | None = None,
            end: datetime | None = None, incident: int | None = None) -> Iterator[Entry]:
    """The log in order, between `start` and `end`, of one incident if `incident` is given."""
    from watcher.core.clock import ts

    require_table(conn)
    query = "SELECT id, at, kind, incident_id, data, prev_hash, hash FROM evidence"
    clauses: list[str] = []
    args: list[object] = []
    if start is not None:
        clauses.append("at >= ?")
        args.append(ts(start))
    if end is not None:
        clauses.append("at <= ?")
        args.append(ts(end))
    if incident is not None:
        clauses.append("incident_id = ?")
        args.append(incident)
    if clauses:
        query += " WHERE " + " AND ".join(clauses)
    for entry_id, at, kind, incident_id, data, prev_hash, digest in \
            conn.execute(query + " ORDER BY id", args):
        yield Entry(id=int(entry_id), at=at, kind=kind, incident=incident_id,
                    data=json.loads(data), prev_hash=prev_hash, hash=digest)


def verify(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Check the whole chain; return (entries checked, first problem or None)."""
    require_table(conn)
    prev, expected_id, count = GENESIS, 1, 0
    rows = conn.execute("SELECT id, at, kind, incident_id, data, prev_hash, hash "
                        "FROM evidence ORDER BY id")
    for entry_id, at, kind, incident, data, prev_hash, stored in rows:
        if entry_id != expected_id:
            return count, f"entry {expected_id} is missing (next is {entry_id}): deleted"
        if prev_hash != prev:
            return count, f"entry {entry_id} does not follow entry {entry_id - 1}: " \
                          "the chain was cut or rewritten"
        if entry_hash(prev, entry_id, at, kind, incident, data) != stored:
            return count, f"entry {entry_id} ({kind}, {at}) was altered"
        prev, expected_id, count = stored, expected_id + 1, count + 1
    return count, None


def _now() -> str:
    # The anchor's time is the machine's clock, never a test's or a drill's clock.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


PERIODIC = timedelta(hours=1)


class Anchorer:
    """Anchors one database's head after each commit that moved it.

    It remembers the hashes of the entries this process wrote: an entry after the last
    anchor that is not one of them was written by someone else (or by a process that
    crashed before anchoring), and is anchored as "adopt", which `check` reports.
    """

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self.key = key
        self.mine: set[str] = set()
        self.last_write: datetime | None = None

    def _write(self, seq: int, digest: str, kind: str) -> None:
        try:
            anchor.write(self.path, self.key, seq, digest, _now(), kind)
        except OSError as exc:
            # The commit stands; a missing anchor shows up as "not proven" in verify.
            log.error("could not write the evidence anchor %s (%s)", self.path, exc.strerror)
            return
        self.last_write = datetime.now(UTC)
        self.mine.clear()

    def _kind(self, conn: sqlite3.Connection, last: anchor.AnchorLine | None,
              default: str) -> str:
        after = last.seq if last is not None else 0
        rows = conn.execute("SELECT hash FROM evidence WHERE id > ? ORDER BY id", (after,))
        return default if all(str(h) in self.mine for (h,) in rows) else "adopt"

    def committed(self, conn: sqlite3.Connection, written: Sequence[str]) -> None:
        """Call after a commit in which this process appended `written` entries.

        Never raises for the anchor file: the commit it follows stands, and a missing
        anchor shows in `verify` as "not proven"."""
        self.mine.update(written)
        seq, digest = head(conn)
        ok, last = self._last()
        if not ok or (last is not None and (last.seq, last.head) == (seq, digest)):
            return
        self._write(seq, digest, self._kind(conn, last, "commit"))

    def _last(self) -> tuple[bool, anchor.AnchorLine | None]:
        """(readable, the last valid anchor): an unreadable file is logged, never raised."""
        try:
            return True, anchor.last_valid(self.path, self.key)
        except OSError as exc:
            log.error("could not read the evidence anchor %s (%s)", self.path, exc.strerror)
            return False, None

    def start(self, conn: sqlite3.Connection) -> None:
        """At start-up: anchor the head; say so loudly when it does not match the anchor."""
        seq, digest = head(conn)
        ok, last = self._last()
        if not ok:
            return
        if last is not None and (last.seq > seq or (last.seq == seq and last.head != digest)):
            log.error("the evidence log does not match its last anchor: it was cut or "
                      "rewritten; run `watcher evidence verify`")
        self._write(seq, digest, self._kind(conn, last, "start"))

    def tick(self, conn: sqlite3.Connection) -> None:
        """A fresh anchor every hour: "at this time the log ended here", even when idle."""
        if self.last_write is None or datetime.now(UTC) - self.last_write >= PERIODIC:
            seq, digest = head(conn)
            ok, last = self._last()
            if ok:
                self._write(seq, digest, self._kind(conn, last, "periodic"))
            else:
                self.last_write = datetime.now(UTC)  # try again in an hour, not every tick


@dataclass
class Verdict:
    """What `verify` found: proven damage (`broken`), and what it cannot vouch for."""

    checked: int
    broken: list[str] = field(default_factory=list)
    unproven: list[str] = field(default_factory=list)
    anchored_to: tuple[int, str] | None = None  # (entry, time) of the last matching anchor

    @property
    def chain(self) -> tuple[int, str | None]:
        return self.checked, (self.broken[0] if self.broken else None)

    @property
    def proof(self) -> str:
        """One sentence on the anchors, for the printable timeline."""
        if self.broken:
            return ""
        if self.unproven:
            return "NOT FULLY PROVEN: " + "; ".join(self.unproven) + "."
        if self.anchored_to is None:
            return ""
        seq, at = self.anchored_to
        return (f"Entries 1-{seq} match the anchor written at {at} outside the database, "
                "signed with a key that is not in it.")


def _span(first: int, last: int) -> str:
    return f"entry {first}" if first == last else f"entries {first}-{last}"


def _against_anchor(a: anchor.AnchorLine, hashes: Mapping[int, str], top: int) -> str | None:
    if a.seq == 0:
        return None
    if a.seq > top:
        return (f"the log ends at entry {top}, but entry {a.seq} was anchored at {a.at}: "
                f"{_span(top + 1, a.seq)} were deleted")
    if hashes.get(a.seq) != a.head:
        return (f"entry {a.seq} is not the entry anchored at {a.at}: the log was rewritten "
                f"up to entry {a.seq} and its hashes recomputed")
    return None


def _check_anchors(verdict: Verdict, found: Sequence[anchor.AnchorLine], garbage: Sequence[int],
                   hashes: Mapping[int, str], where: Path) -> None:
    top = max(hashes, default=0)
    verdict.broken.extend(f"{where} line {n} is not an anchor (damaged or edited)"
                          for n in garbage)
    previous = 0
    for a in found:
        if not a.valid:
            verdict.broken.append(f"{where} line {a.number} is not signed with this watcher's "
                                  "key: forged, or written with another key")
            continue
        problem = _against_anchor(a, hashes, top)
        if problem is not None:
            verdict.broken.append(problem)
        elif a.kind == "adopt" and a.seq > previous:
            verdict.unproven.append(
                f"{_span(previous + 1, a.seq)} were found without an anchor at {a.at}: "
                "written by a watcher that stopped before anchoring them, or added by "
                "someone else")
        if problem is None:
            verdict.anchored_to = (a.seq, a.at)
        previous = max(previous, a.seq)
    if not any(a.valid for a in found):
        verdict.unproven.append(f"there is no valid anchor in {where}: nothing proves that "
                                "entries were not deleted, rewritten or added")
    elif top > previous:
        verdict.unproven.append(f"{_span(previous + 1, top)} came after the last anchor: "
                                "they cannot be proven (a crash before anchoring, or added by "
                                "someone else)")


def check(conn: sqlite3.Connection, anchors: Path, key: bytes | None,
          expect: Sequence[tuple[int, str]] = ()) -> Verdict:
    """The chain, against every anchor and every head a contact kept (`expect`)."""
    checked, problem = verify(conn)
    verdict = Verdict(checked)
    if problem is not None:
        verdict.broken.append(problem)
    hashes = {int(i): str(h) for i, h in conn.execute("SELECT id, hash FROM evidence")}
    if key is None:
        verdict.unproven.append("the evidence key is missing, so the anchors cannot be "
                                "checked: the chain alone does not show a rewrite")
    else:
        try:
            found, garbage = anchor.read(anchors, key)
        except OSError as exc:
            verdict.unproven.append(f"the anchor file {anchors} cannot be read "
                                    f"({exc.strerror}): nothing proves that entries were not "
                                    "deleted, rewritten or added")
        else:
            _check_anchors(verdict, found, garbage, hashes, anchors)
    for seq, prefix in expect:
        if not prefix or not hashes.get(seq, "").startswith(prefix.lower()):
            verdict.broken.append(f"entry {seq} does not have the fingerprint {prefix} that "
                                  "was sent to the contacts: the log was cut or rewritten")
    return verdict


LIMITS = ("What this cannot prove: someone with the whole disk can read the key and sign "
          "anchors too; against them only a fingerprint that left this machine counts (the "
          "digest sends it to the contacts: check it with --expect ENTRY:FINGERPRINT). "
          "Entries are only as true as the events the watcher saw.")


def report(verdict: Verdict) -> tuple[bool, str]:
    """(fully proven, the text `evidence verify` prints)."""
    lines: list[str] = []
    if verdict.broken:
        first, *rest = verdict.broken
        lines.append(f"EVIDENCE LOG BROKEN: {first} ({verdict.checked} entries form an "
                     "unbroken chain from the start).")
        lines.extend(f"- {p}" for p in rest[:10])
        if len(rest) > 10:
            lines.append(f"- and {len(rest) - 10} more problems")
    elif verdict.unproven:
        lines.append(f"Evidence log chain intact ({verdict.checked} entries), but NOT "
                     "FULLY PROVEN:")
    else:
        lines.append(f"Evidence log intact: {verdict.checked} entries verified.")
    lines.extend(f"- {p}" for p in verdict.unproven)
    if verdict.anchored_to is not None and not verdict.broken:
        seq, at = verdict.anchored_to
        lines.append(f"Proven: entries 1-{seq} are exactly those anchored at {at}, outside "
                     "the database, with a key that is not in it: none was deleted, changed "
                     "or inserted by someone who had only the database.")
    lines.append(LIMITS)
    return not verdict.broken and not verdict.unproven, "\n".join(lines)


def to_jsonl(items: Iterator[Entry]) -> str:
    return "".join(json.dumps({"id": e.id, "at": e.at, "kind": e.kind, "incident": e.incident,
                               "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash},
                              ensure_ascii=False) + "\n" for e in items)


_KINDS = {"match": "Code recognised", "incident": "Alert state", "delivery": "Message to contact",
          "ack": "Acknowledged", "drill": "Drill", "blind": "Watch blind",
          "recovered": "Watch restored"}


def to_html(items: Iterator[Entry], title: str, chain: tuple[int, str | None],
            proof: str = "") -> str:
    checked, problem = chain
    rows = []
    for e in items:
        details = "; ".join(f"{html.escape(str(k))}: {html.escape(str(v))}"
                            for k, v in sorted(e.data.items()) if v not in (None, "", []))
        rows.append(f"<tr><td>{e.id}</td><td>{html.escape(e.at)}</td>"
                    f"<td>{html.escape(_KINDS.get(e.kind, e.kind))}</td>"
                    f"<td>{e.incident or ''}</td><td>{details}</td>"
                    f"<td class=h>{e.hash[:16]}</td></tr>")
    status = (f"Chain verified: {checked} entries intact." if problem is None
              else f"CHAIN BROKEN: {html.escape(problem)}")
    status += f" {html.escape(proof)}" if proof else ""
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;width:100%}}
td,th{{border:1px solid #999;padding:4px;vertical-align:top;font-size:11pt}}
.h{{font-family:monospace;font-size:9pt}}@media print{{body{{margin:0}}}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{status} Times are UTC. Each entry's hash covers the
previous entry's hash, so any change to an entry breaks every hash after it.</p>
<table><tr><th>#</th><th>Time (UTC)</th><th>What</th><th>Alert</th><th>Details</th>
<th>Hash</th></tr>
{''.join(rows)}
</table></body></html>
"""
