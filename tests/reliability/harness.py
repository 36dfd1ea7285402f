"""Shared bookkeeping for the fault scenarios: which events were code uses, which alerts
reached the contact at the stand-in, and the guarantee every scenario must keep.

The guarantee (README "A missed signal is the worst failure"):
- 0 codes missed: exactly one incident per code-use event, none for anything else;
- 0 alerts lost: every incident's alert reached the contact at least once;
- at most one duplicate alert per injected fault.

Alerts carry their incident number (the playbook message is ``ALERT #{incident}``), so an
alert seen by a stand-in maps back to the event that opened it.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from watcher.core.store import Store

EVENTS = 1000
CODE_EVERY = 20  # 50 code uses among 1,000 events
CODE_TEXT = "the network went down at work"
ALERT = re.compile(r"ALERT #(\d+)\b")
RESULTS_ENV = "RELIABILITY_RESULTS"  # a JSON-lines file the figures are appended to

# One code, a playbook of a single notify step to one contact: one code use, one alert.
PLAYBOOK = """
[codes.network-down]
person = "sam"
phrase = ["the network went down at work"]
playbook = "tell-alex"

[playbooks.tell-alex]
steps = [ { notify = ["alex"], message = "ALERT #{incident} ({person}, {code})" } ]
"""


def telegram_config(api_url: str, poll_timeout: int) -> str:
    """Sam watched in one group through the Telegram stand-in at api_url; alerts to Alex."""
    return f"""
[watcher]
database = "watcher.db"
timezone = "UTC"

[people.sam]
name = "Sam"

[people.sam.telegram]
user_id = 5001

[contacts.alex]
name = "Alex"

[contacts.alex.telegram]
chat_id = 5002
{PLAYBOOK}
[connectors.telegram]
token = {{ env = "TG_TOKEN" }}
api_url = "{api_url}"
chats = [-1001234567890]
poll_timeout = {poll_timeout}
profile_photo_interval = "1h"
"""


def is_code(n: int) -> bool:
    return n % CODE_EVERY == 0


def text_of(n: int) -> str:
    """Event n of a scripted run: every 20th is a code use, the rest ordinary chatter."""
    return f"{CODE_TEXT} ({n})" if is_code(n) else f"ordinary message {n}, nothing to see"



def seen_count(store: Store, prefix: str) -> int:
    row = store.conn.execute("SELECT COUNT(*) FROM seen_events WHERE key LIKE ?",
                             (f"{prefix}%",)).fetchone()
    return int(row[0])


def db_seen_count(db: Path, prefix: str = "") -> int:
    """The same, from another connection (a subprocess owns the database)."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(db, timeout=5)
    try:
        row = conn.execute("SELECT COUNT(*) FROM seen_events WHERE key LIKE ?",
                           (f"{prefix}%",)).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


def alert_numbers(texts: Iterable[str]) -> list[int]:
    return [int(m.group(1)) for t in texts if (m := ALERT.search(t))]


def outbox_settled(store: Store) -> bool:
    """Every playbook has run to its end and every alert row is sent (none pending a retry,
    none failed). An incident whose run has not started yet has no outbox row at all."""
    rows = store.conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
    return store.pending_runs() == 0 and all(status == "sent" for status, _ in rows)


@dataclass
class Outcome:
    name: str
    faults: int
    incidents: int
    alerts: int
    duplicates: int
    seconds: float
    extra: dict[str, object] = field(default_factory=dict)

    def record(self) -> None:
        """Print the figures; append them to $RELIABILITY_RESULTS when set (for the docs)."""
        line = json.dumps(self.__dict__)
        print(f"RELIABILITY {line}")
        if path := os.environ.get(RESULTS_ENV):
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(line + "\n")


def check(name: str, *, incident_keys: dict[int, str | None], code_keys: set[str],
          alerts: list[int], faults: int, started: float,
          extra: dict[str, object] | None = None) -> Outcome:
    """Assert the guarantee; return the figures.

    incident_keys: incident id -> the event key that opened it (from the store);
    code_keys: the event keys of every code use that reached the watcher;
    alerts: the incident number of every alert the contact received, repeats included.
    """
    keys = [k or "" for k in incident_keys.values()]
    doubled = sorted(k for k, n in Counter(keys).items() if n > 1)
    assert not doubled, f"code uses that opened more than one incident: {doubled[:5]}"
    missed = sorted(code_keys - {k for k in keys if k})
    assert not missed, f"{len(missed)} code use(s) MISSED: {missed[:5]}"
    extra_incidents = sorted({k for k in keys if k} - code_keys)
    assert not extra_incidents, f"incidents from non-code events: {extra_incidents[:5]}"
    received = Counter(alerts)
    lost = sorted(set(incident_keys) - set(received))
    assert not lost, f"{len(lost)} alert(s) LOST (incidents {lost[:5]})"
    strangers = sorted(set(received) - set(incident_keys))
    assert not strangers, f"alerts for unknown incidents {strangers[:5]}"
    duplicates = len(alerts) - len(received)
    assert duplicates <= faults, (
        f"{duplicates} duplicate alerts for {faults} fault(s): "
        f"{[(i, n) for i, n in received.items() if n > 1][:5]}")
    outcome = Outcome(name, faults, len(incident_keys), len(alerts), duplicates,
                      round(time.monotonic() - started, 1), dict(extra or {}))
    outcome.record()
    return outcome


def incident_keys(store: Store) -> dict[int, str | None]:
    return {i.id: i.event_key for i in store.incidents()}
