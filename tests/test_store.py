"""The store's own shape (#17): the marks table, the migration that fills it from `cursors`,
and states passed as enum values rather than spelt in SQL."""

from __future__ import annotations

import ast
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from playbooks.drills import due_reminders
from tests.conftest import Clock, write_config
from watcher.core.clock import from_ts, ts
from watcher.core.config import load
from watcher.core.migrations import MIGRATIONS
from watcher.core.models import IncidentState
from watcher.core.rows import DeliveryStatus, Mark, RunStatus
from watcher.core.store import Store
from watcher.supervision.supervisor import Supervisor

ROOT = Path(__file__).resolve().parent.parent

# What the previous schema kept in `cursors` under ad-hoc keys, and where it goes now.
BOOKKEEPING = {
    "retention:last": (Mark.RETENTION, ""),
    "digest:last": (Mark.DIGEST, ""),
    "watcher:probe": (Mark.PROBE, ""),
    "blind:sam/telegram": (Mark.BLIND, "sam/telegram"),
    "blind:signal-sending": (Mark.BLIND, "signal-sending"),
    "checkin:morning:deadline": (Mark.CHECKIN, "morning:deadline"),
    "unchecked:last:sam": (Mark.UNCHECKED, "sam"),
    "crashloop:telegram": (Mark.CRASHLOOP, "telegram"),
    "drill-reminder:network-down": (Mark.DRILL_REMINDER, "network-down"),
}
# Feed positions and the connectors' own state: they stay in `cursors`, untouched.
POSITIONS = {
    "telegram:updates": "1234",
    "sam/bluesky": "cid-1",
    "email:INBOX": '{"validity": 1}',
    "signal/contact-uuids": "{}",
    "signal/inbox": "[]",
    "sms/answered": "{}",
    "sms/last-report": "2026-11-22T13:00:00+00:00",
    "bluesky:jetstream": "99",
    "blindside/telegram": "7",  # a feed whose name merely starts like a mark's
}


def old_database(path: Path, cursors: dict[str, str]) -> None:
    """A database as the previous schema made it (every migration but the last), holding
    `cursors`; migrated exactly as Store._migrate does."""
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:-1], start=1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    with conn:
        conn.executemany("INSERT INTO cursors (feed, value, updated_at) VALUES (?, ?, ?)",
                         [(k, v, "2026-11-22T13:00:00.000000Z") for k, v in cursors.items()])
    conn.close()


def test_upgrade_moves_bookkeeping_to_marks_and_leaves_positions(tmp_path: Path) -> None:
    moment = "2026-11-22T12:30:00.000000Z"
    old_database(tmp_path / "w.db", {k: moment for k in BOOKKEEPING} | POSITIONS
                 | {"blind:sam/sms": ""})  # a blind mark cleared the old way: no mark
    store = Store(tmp_path / "w.db")
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    for name, key in BOOKKEEPING.values():
        assert store.marked(name, key) == from_ts(moment), (name, key)
    assert store.marked(Mark.BLIND, "sam/sms") is None
    assert store.marked_keys(Mark.BLIND) == ["sam/telegram", "signal-sending"]
    left = {feed for (feed,) in store.conn.execute("SELECT feed FROM cursors")}
    assert left == set(POSITIONS)
    assert all(store.cursor(feed) == value for feed, value in POSITIONS.items())


def test_an_upgraded_watcher_keeps_its_state(tmp_path: Path) -> None:
    """A digest just sent is not sent again, and a drill reminder is not repeated."""
    clock = Clock()
    path = write_config(tmp_path)
    path.write_text(path.read_text()
                    .replace('timezone = "Europe/London"\n',
                             'timezone = "Europe/London"\ndigest = "weekly"\n', 1)
                    .replace('playbook = "call-police"',
                             'playbook = "call-police"\ndrill_every = "30d"'))
    config = load(path, environ={})
    told = ts(clock() - timedelta(hours=1))
    old_database(tmp_path / "w.db", {"digest:last": told, "drill-reminder:network-down": told})
    store = Store(tmp_path / "w.db")
    assert not Supervisor(config, store, clock).digest_due()
    assert due_reminders(config, store, clock()) == []
    clock.advance(days=30)
    assert Supervisor(config, store, clock).digest_due()
    assert due_reminders(config, store, clock()) == [("network-down", "never")]


def test_a_fresh_database_without_the_old_rows_upgrades_too(tmp_path: Path) -> None:
    old_database(tmp_path / "w.db", {})
    store = Store(tmp_path / "w.db")
    assert store.marked(Mark.DIGEST) is None
    assert store.conn.execute("SELECT COUNT(*) FROM cursors").fetchone()[0] == 0


KEY = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)


@settings(max_examples=60, deadline=None)
@given(keys=st.dictionaries(st.one_of(
    st.sampled_from(["blind:", "checkin:", "crashloop:", "drill-reminder:", "unchecked:last:",
                     "blind", "checkin-", "unchecked:", "digest:", "retention:", "watcher:",
                     ""]).flatmap(lambda p: KEY.map(lambda k: p + k)),
    st.sampled_from(list(BOOKKEEPING))), st.just("2026-11-22T12:30:00.000000Z"), max_size=12))
def test_migration_moves_exactly_the_bookkeeping_keys(keys: dict[str, str]) -> None:
    """Whatever feed names a hostile or odd setup produced, a key moves to marks only if it
    is one of the old bookkeeping keys, and then to the right (name, key); every other key
    stays a cursor."""
    conn = sqlite3.connect(":memory:")
    for script in MIGRATIONS[:-1]:
        conn.executescript(script)
    conn.executemany("INSERT INTO cursors VALUES (?, ?, 'x')", list(keys.items()))
    conn.executescript(MIGRATIONS[-1])
    marks = {(n, k) for n, k in conn.execute("SELECT name, key FROM marks")}
    cursors = {f for (f,) in conn.execute("SELECT feed FROM cursors")}
    expected: set[tuple[str, str]] = set()
    for feed in keys:
        moved = old_key_to_mark(feed)
        if moved is None:
            assert feed in cursors, feed
        else:
            assert feed not in cursors, feed
            expected.add(moved)
    assert marks == expected


def old_key_to_mark(feed: str) -> tuple[str, str] | None:
    """The old key's meaning, written in Python from the old callers' f-strings."""
    singles = {"retention:last": Mark.RETENTION, "digest:last": Mark.DIGEST,
               "watcher:probe": Mark.PROBE}
    if feed in singles:
        return singles[feed].value, ""
    if feed.startswith("unchecked:last:"):
        return Mark.UNCHECKED.value, feed.removeprefix("unchecked:last:")
    for mark in (Mark.BLIND, Mark.CHECKIN, Mark.CRASHLOOP, Mark.DRILL_REMINDER):
        if feed.startswith(f"{mark.value}:"):
            return mark.value, feed.removeprefix(f"{mark.value}:")
    return None


def test_marks_set_read_clear_and_survive_a_restart(tmp_path: Path) -> None:
    at = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)
    store = Store(tmp_path / "w.db")
    with store.transaction():
        store.mark(Mark.BLIND, "sam/telegram", at)
        store.mark(Mark.BLIND, "sam/telegram", at + timedelta(minutes=5))  # the latest wins
        store.mark(Mark.CRASHLOOP, "sam/telegram", at)  # same key, another mark: separate
    store.close()
    store = Store(tmp_path / "w.db")
    assert store.marked(Mark.BLIND, "sam/telegram") == at + timedelta(minutes=5)
    assert store.marked(Mark.CRASHLOOP, "sam/telegram") == at
    with store.transaction():
        store.clear_mark(Mark.BLIND, "sam/telegram")
    assert store.marked(Mark.BLIND, "sam/telegram") is None
    assert store.marked(Mark.CRASHLOOP, "sam/telegram") == at
    assert store.cursor("blind:sam/telegram") is None  # nothing lands in cursors


STATE_WORDS = {s.value for s in (*IncidentState, *RunStatus, *DeliveryStatus)}


def quoted_states(source: str) -> list[str]:
    """Every SQL string constant of a module that spells a state in quotes ('open')."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.extend(f"'{w}' at line {node.lineno}" for w in sorted(STATE_WORDS)
                         if f"'{w}'" in node.value)
    return found


def test_states_are_enum_values_passed_as_parameters_not_sql_literals() -> None:
    store_py = (ROOT / "watcher" / "core" / "store.py").read_text()
    assert quoted_states(store_py) == []
    assert quoted_states('q = "SELECT id FROM runs WHERE status = \'active\'"\n') == [
        "'active' at line 1"]
