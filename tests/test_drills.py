"""Drills run the whole playbook marked as a drill everywhere; overdue drills are reminded."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from pathlib import Path

import pytest

from playbooks.channels import ConsoleChannel
from playbooks.drills import report, start_drill
from playbooks.responses import Responder
from playbooks.runner import PlaybookRunner
from tests.conftest import Clock, write_config
from watcher.cli import main
from watcher.commands import drill
from watcher.core.config import ConfigError, load
from watcher.core.models import Response
from watcher.core.store import Store


def test_drill_command_without_an_ack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    # Exit 3: nobody acknowledged (for cron); the drill is closed, not left escalating.
    assert main(["drill", "--config", str(config), "network-down", "--timeout", "1s"]) == 3
    out = capsys.readouterr().out
    assert "ALERT to Alex (console channel)\n[DRILL - a test" in out
    assert "Drill of code 'network-down' (alert #1)" in out
    assert "sent     to Alex via console" in out and "sent     to Jo via console" in out
    assert "Nobody acknowledged within 1 s; the drill was ended." in out
    db = sqlite3.connect(tmp_path / "watcher.db")
    kinds = [r[0] for r in db.execute("SELECT kind FROM evidence ORDER BY id")]
    assert kinds[0] == "drill"  # marked as a drill in the evidence log too
    assert db.execute("SELECT state, drill FROM incidents").fetchone() == ("resolved", 1)


def test_unknown_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["drill", "--config", str(config), "nope"]) == 2
    assert 'no code "nope"' in capsys.readouterr().err


async def test_drill_acknowledged_reports_who_and_how_fast(tmp_path: Path) -> None:
    config = load(write_config(tmp_path), environ={})
    running = asyncio.create_task(drill(config, tmp_path / "watcher.db", "network-down",
                                        30, here=True))
    contact_side = Store(tmp_path / "watcher.db")  # as a connector would hand over a reply
    for _ in range(200):
        await asyncio.sleep(0.05)
        if contact_side.incidents_told_to("jo"):
            break
    assert Responder(config, contact_side).handle(
        Response(channel="console", contact="jo", text="ok")) is not None
    text, acknowledged = await asyncio.wait_for(running, 30)
    assert "Acknowledged by Jo after" in text and "Nobody" not in text
    assert acknowledged and ": acknowledged" in text.splitlines()[0]


async def test_drill_reminder_when_overdue(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    path.write_text(path.read_text().replace('playbook = "call-police"',
                                             'playbook = "call-police"\ndrill_every = "30d"'))
    config = load(path, environ={})
    clock = Clock()
    store = Store(tmp_path / "w.db")
    out = io.StringIO()
    runner = PlaybookRunner(config, store, {"console": ConsoleChannel(config, out)}, clock)
    await runner.tick()
    await runner.tick()
    assert out.getvalue().count("Reminder: a drill of Sam's 'network-down' code is due "
                                "(last drill: never)") == 2  # Alex and Jo, once each
    clock.advance(days=29)
    start_drill(config, store, "network-down", clock())
    clock.advance(days=2)
    await runner.tick()
    assert out.getvalue().count("Reminder") == 2  # a drill ran 2 days ago: not due
    assert report(store, 1).code == "network-down"
    clock.advance(days=29)
    await runner.tick()
    assert "(last drill: 2026-12-21)" in out.getvalue()


def test_playbook_that_reaches_nobody_is_refused(tmp_path: Path) -> None:
    extra = """
    [contacts.tg-only]
    name = "Tee"
    telegram = { chat_id = 42 }
    [playbooks.lonely]
    steps = [ { notify = ["tg-only"], message = "hi" } ]
    [codes.lonely]
    person = "sam"
    phrase = ["lonely code phrase"]
    playbook = "lonely"
    """
    with pytest.raises(ConfigError) as info:
        load(write_config(tmp_path, extra=extra), environ={})
    problems = info.value.problems
    assert "contacts.tg-only.telegram: there is no [connectors.telegram] section, so Tee " \
           "cannot be reached there" in problems
    assert any(p.startswith("codes.lonely.playbook: playbook lonely reaches no contact on a "
                            "working channel") for p in problems)
    json.dumps(problems)
