"""kill -9 of a real `watcher run` process, restarted: no incident lost, none doubled."""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from tests.conftest import write_config
from watcher.core.clock import from_ts, utcnow

EVENTS = 400
CODE_EVERY = 20  # 20 code uses among 400 events


def watcher_command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "watcher.cli", "run", "--config", str(config), *extra]


def feed_lines(start: int, stop: int) -> str:
    lines = []
    for n in range(start, stop):
        text = "the network went down at work" if n % CODE_EVERY == 0 else f"ordinary {n}"
        lines.append(json.dumps({"person": "sam", "id": f"m{n}", "at": "2026-11-22T14:00:00Z",
                                 "text": text}))
    return "\n".join(lines) + "\n"


def seen_count(db: Path) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM seen_events").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_kill_9_during_run_neither_loses_nor_repeats(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    feed = tmp_path / "feed.jsonl"
    rng = random.Random(20261122)
    kills = 0
    killed_at: list[int] = []
    outputs = []
    written = 0
    for round_ in range(6):
        # Events keep arriving between and during runs, as they would from a real feed.
        upto = min(EVENTS, written + EVENTS // 6 + 1)
        with feed.open("a") as handle:
            handle.write(feed_lines(written, upto))
        written = upto
        out = tmp_path / f"run{round_}.out"
        before = seen_count(tmp_path / "watcher.db")
        with out.open("w") as sink:
            proc = subprocess.Popen(watcher_command(config), stdout=sink,
                                    stderr=subprocess.DEVNULL)
            # Kill once it is demonstrably working, at a random point of the work.
            wait_for(lambda b=before: seen_count(tmp_path / "watcher.db") > b,  # type: ignore[misc]
                     timeout=30)
            time.sleep(rng.uniform(0, 0.1))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        kills += 1
        killed_at.append(seen_count(tmp_path / "watcher.db"))
        outputs.append(out)
    final = tmp_path / "final.out"
    with final.open("w") as sink:
        subprocess.run(watcher_command(config, "--once"), stdout=sink, check=True, timeout=60)
    outputs.append(final)

    db = sqlite3.connect(tmp_path / "watcher.db")
    rows = db.execute("SELECT event_key FROM incidents ORDER BY id").fetchall()
    uses = [f"replay:m{n}" for n in range(0, EVENTS, CODE_EVERY)]
    assert sorted(r[0] for r in rows) == sorted(uses)  # every code use, exactly once
    seen = db.execute("SELECT COUNT(*) FROM seen_events").fetchone()[0]
    assert seen == EVENTS
    # The kills really landed in the middle of the work, not before or after it.
    assert sum(0 < k < EVENTS for k in killed_at) >= 4, killed_at
    alerts = sum(p.read_text().count("ALERT to Alex") for p in outputs)
    # Every alert delivered at least once; at most one duplicate per kill.
    assert len(uses) <= alerts <= len(uses) + kills
    unsent = db.execute("SELECT COUNT(*) FROM outbox WHERE status != 'sent' "
                        "AND contact = 'alex'").fetchone()[0]
    assert unsent == 0


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / "feed.jsonl").write_text(feed_lines(0, 5))
    proc = subprocess.Popen(watcher_command(config), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: seen_count(tmp_path / "watcher.db") == 5, timeout=30)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "ALERT to Alex" in out
    assert "stopped" in err and "Traceback" not in err


def test_kill_9_between_steps_resumes_on_time(tmp_path: Path) -> None:
    """A wait_ack with time left fires on its stored deadline after a kill -9 and restart."""
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace('wait_ack = "5m"', 'wait_ack = "15s"'))
    (tmp_path / "feed.jsonl").write_text(feed_lines(0, 1))  # m0 uses the code
    db = tmp_path / "watcher.db"

    def sent(contact: str) -> list[str]:
        if not db.exists():
            return []
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute("SELECT created_at FROM outbox WHERE contact = ? "
                                "ORDER BY id", (contact,)).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()
        return [r[0] for r in rows]

    first = subprocess.Popen(watcher_command(config), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    # Step 0 done. The kill may land before or after the wait's deadline is stored: either
    # way the wait began when the first message was queued.
    wait_for(lambda: len(sent("jo")) == 1, timeout=30)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    started = from_ts(sent("jo")[0])
    time.sleep(3)
    restarted = utcnow()
    second = subprocess.Popen(watcher_command(config), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(sent("jo")) == 2, timeout=30)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=10)
    escalated = from_ts(sent("jo")[1])
    # On the stored deadline, never early; and before a timer restarted with the process
    # could have fired (15 s after the restart, which came 3 s after the first message).
    wait = timedelta(seconds=15)
    assert escalated >= started + wait - timedelta(milliseconds=100)
    assert escalated < restarted + wait, (escalated - started)
