"""Shared test helpers: configs written to temporary folders, a controllable clock."""

from __future__ import annotations

import asyncio
import logging
import shutil
import sqlite3
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

pytest_plugins = ["tests.fakes.pds"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

BASE_CONFIG = """
[watcher]
database = "watcher.db"
timezone = "Europe/London"

[people.sam]
name = "Sam"
fields = {{ address = "12 Acacia Avenue" }}

[contacts.alex]
name = "Alex"
console = true

[contacts.jo]
name = "Jo"
console = true

[codes.network-down]
person = "sam"
phrase = ["the network went down at work"]
playbook = "call-police"

[codes.flower]
person = "sam"
image = ["flower.jpg"]
playbook = "check-on-me"

[playbooks.call-police]
steps = [
  {{ notify = ["alex", "jo"], \
message = "{{person}} used the '{{code}}' code at {{time}}: call the police to {{address}}." }},
  {{ wait_ack = "5m" }},
  {{ notify = ["jo"], message = "Nobody has confirmed yet for {{person}}." }},
  {{ wait_ack = "10m", repeat_from = 2, times = 2 }},
]

[playbooks.check-on-me]
steps = [ {{ notify = ["alex"], message = "{{person}} posted the flower at {{time}}." }} ]

[connectors.replay]
files = ["feed.jsonl"]
{extra}
"""


def db_count(db: Path, sql: str) -> int:
    """A COUNT(*) read from another process's database, 0 before it has the tables: how the
    crash tests watch a watcher they kill."""
    if not db.exists():
        return 0
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0
    finally:
        conn.close()


def write_config(folder: Path, extra: str = "", text: str | None = None) -> Path:
    """Write a config (the base one plus `extra` TOML) and the reference photo beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "codes" / "flower.jpg", folder / "flower.jpg")
    path = folder / "config.toml"
    body = text if text is not None else BASE_CONFIG.format(extra=textwrap.dedent(extra))
    path.write_text(body, encoding="utf-8")
    (folder / "feed.jsonl").touch()
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


T = TypeVar("T")


async def eventually(predicate: Callable[[], T | None], what: str = "the condition",
                     timeout: float = 30.0) -> T:
    """Poll a condition until it holds (never a bare sleep as synchronisation): the app's
    work runs in the same loop and is not visible to the stand-ins."""
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)
    return result


class Clock:
    """A clock the test moves by hand, so timers are tested without sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 22, 14, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Callable[[], datetime]:
    return Clock()


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """Tests that run the CLI call logging.basicConfig(force=True) on pytest's captured
    stderr; that stream is closed after the test, and every later test's log line then
    fails with "I/O operation on closed file". Put the root handlers and levels back."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in list(root.manager.loggerDict)}
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)
