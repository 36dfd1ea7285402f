"""kill -9 of a real `watcher run` reading a real Dovecot, restarted: no mail lost, no code
fired twice, and the mailbox untouched."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import db_count as count
from tests.conftest import write_config
from tests.servers.dovecot import Dovecot, dovecot, make_message

__all__ = ["dovecot"]
pytestmark = pytest.mark.timeout(240)

SAM = "sam@example.org"
PER_ROUND = 40
ROUNDS = 4
CODE_EVERY = 8


def seen(db: Path) -> int:
    return count(db, "SELECT COUNT(*) FROM seen_events WHERE key LIKE 'email:%'")


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_kill_9_while_reading_mail_neither_loses_nor_repeats(tmp_path: Path,
                                                              dovecot: Dovecot) -> None:
    config = write_config(tmp_path, extra=f"""
    [connectors.email]
    host = "127.0.0.1"
    port = {dovecot.port}
    tls = "none"
    username = "{dovecot.user}"
    password = {{ env = "IMAP_PASSWORD" }}
    poll_interval = "1s"

    [people.sam.email]
    addresses = ["{SAM}"]
    """)
    db = tmp_path / "watcher.db"
    env = {**os.environ, "IMAP_PASSWORD": dovecot.password}
    command = [sys.executable, "-m", "watcher.cli", "run", "--config", str(config)]
    subprocess.run([*command, "--once"], env=env, check=True, timeout=60,
                   stdout=subprocess.DEVNULL)  # the baseline of an empty mailbox
    rng = random.Random(20261207)
    killed_at = []
    for round_ in range(ROUNDS):
        for n in range(round_ * PER_ROUND, (round_ + 1) * PER_ROUND):
            body = "the network went down at work" if n % CODE_EVERY == 0 else "ordinary"
            dovecot.deliver(make_message(SAM, f"mail {n}", body))
        before = seen(db)
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        wait_for(lambda b=before: seen(db) > b, timeout=60)  # type: ignore[misc]
        time.sleep(rng.uniform(0, 0.05))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        killed_at.append(seen(db))
    subprocess.run([*command, "--once"], env=env, check=True, timeout=60,
                   stdout=subprocess.DEVNULL)

    total = ROUNDS * PER_ROUND
    assert seen(db) == total  # every mail, once
    assert count(db, "SELECT COUNT(*) FROM matches") == total // CODE_EVERY
    assert count(db, "SELECT COUNT(DISTINCT event_key) FROM matches") == total // CODE_EVERY
    # At least one kill really landed in the middle of a round's mail.
    assert any(r * PER_ROUND < k < (r + 1) * PER_ROUND for r, k in enumerate(killed_at)), \
        killed_at
    flags = dovecot.flags()
    assert len(flags) == total
    assert all(f - {"\\Recent"} == set() for f in flags.values())
