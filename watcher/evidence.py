"""The evidence log: append-only, hash-chained, for an advocate or a court.

Each entry carries the SHA-256 of the previous one, so an edited or deleted row breaks the
chain at a place `verify` can name. Entries hold what fired and why (the matched span, the
image distances, the link), never whole message bodies.
"""

from __future__ import annotations

import hashlib
import html
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


def append(conn: sqlite3.Connection, at: str, kind: str, incident: int | None,
           data: Mapping[str, Any]) -> None:
    """Add an entry; call inside the transaction that made the change it records."""
    row = conn.execute("SELECT id, hash FROM evidence ORDER BY id DESC LIMIT 1").fetchone()
    entry_id, prev = (int(row[0]) + 1, str(row[1])) if row else (1, GENESIS)
    text = json.dumps(dict(data), sort_keys=True, ensure_ascii=False, default=str)
    conn.execute(
        "INSERT INTO evidence (id, at, kind, incident_id, data, prev_hash, hash) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (entry_id, at, kind, incident, text, prev,
         entry_hash(prev, entry_id, at, kind, incident, text)))


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
            end: datetime | None = None) -> Iterator[Entry]:
    from watcher.store import ts

    query = "SELECT id, at, kind, incident_id, data, prev_hash, hash FROM evidence"
    clauses, args = [], []
    if start is not None:
        clauses.append("at >= ?")
        args.append(ts(start))
    if end is not None:
        clauses.append("at <= ?")
        args.append(ts(end))
    if clauses:
        query += " WHERE " + " AND ".join(clauses)
    for row in conn.execute(query + " ORDER BY id", args):
        yield Entry(int(row[0]), row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])


def verify(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """Check the whole chain; return (entries checked, first problem or None)."""
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


def to_jsonl(items: Iterator[Entry]) -> str:
    return "".join(json.dumps({"id": e.id, "at": e.at, "kind": e.kind, "incident": e.incident,
                               "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash},
                              ensure_ascii=False) + "\n" for e in items)


_KINDS = {"match": "Code recognised", "incident": "Alert state", "delivery": "Message to contact",
          "ack": "Acknowledged", "drill": "Drill", "blind": "Watch blind",
          "recovered": "Watch restored"}


def to_html(items: Iterator[Entry], title: str, chain: tuple[int, str | None]) -> str:
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
