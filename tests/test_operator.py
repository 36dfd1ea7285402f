"""The operator at the watcher's machine acts on an alert (`watcher ack N`, `watcher standdown
N`), with or without a running watcher; a playbook that runs out is told, and stays open."""

from __future__ import annotations

import asyncio
import io
import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbooks import actions
from playbooks.runner import PlaybookRunner
from tests.conftest import Clock, eventually, write_config
from watcher.app import App
from watcher.cli import main
from watcher.core.config import load
from watcher.core.config_schema import OPERATOR
from watcher.core.models import IncidentState
from watcher.core.store import Store
from watcher.lock import ProcessLock
from watcher.supervision.status import status_report
from watcher.supervision.supervisor import Supervisor

CODE_USE = {"platform": "telegram", "person": "sam", "kind": "message", "id": "c/1",
            "at": "2026-11-22T14:02:00Z", "text": "the network went down at work"}


def fire(tmp_path: Path) -> Path:
    """A config, and alert #1 fired from its replay file by `watcher run --once`."""
    config = write_config(tmp_path)
    (tmp_path / "feed.jsonl").write_text(json.dumps(CODE_USE) + "\n")
    assert main(["run", "--config", str(config), "--once"]) == 0
    return config


def evidence(db: Path, kind: str) -> list[dict[str, object]]:
    conn = sqlite3.connect(db)
    try:
        return [json.loads(r[0]) for r in conn.execute(
            "SELECT data FROM evidence WHERE kind = ? ORDER BY id", (kind,))]
    finally:
        conn.close()


def state(db: Path, incident: int = 1) -> str:
    conn = sqlite3.connect(db)
    try:
        return str(conn.execute("SELECT state FROM incidents WHERE id = ?",
                                (incident,)).fetchone()[0])
    finally:
        conn.close()


def test_ack_with_no_watcher_running_tells_the_contacts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = fire(tmp_path)
    capsys.readouterr()
    assert main(["ack", "--config", str(config), "#1"]) == 0
    out = capsys.readouterr().out
    assert "Acknowledged alert #1" in out
    # Both contacts were alerted; the operator is nobody's contact, so both are told.
    for name in ("Alex", "Jo"):
        assert f"ALERT to {name} (console channel)\nthe operator at the watcher is handling " \
               "Sam's alert (#1" in out
    db = tmp_path / "watcher.db"
    assert state(db) == "acknowledged"
    assert {"contact": "operator", "channel": "cli"}.items() <= evidence(db, "ack")[0].items()
    store = Store(db)
    try:
        assert not store.run_active(1)  # the escalation is stopped
    finally:
        store.close()


def test_standdown_with_no_watcher_running(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = fire(tmp_path)
    capsys.readouterr()
    assert main(["standdown", "--config", str(config), "1"]) == 0
    out = capsys.readouterr().out
    assert "was ended by the operator at the watcher" in out
    db = tmp_path / "watcher.db"
    assert state(db) == "stood_down"
    assert {"state": "stood_down", "by": "operator"} in evidence(db, "incident")
    # Once ended, nothing more can be done to it: said plainly, exit 2.
    assert main(["ack", "--config", str(config), "1"]) == 2
    assert "has already ended (it was stood down)" in capsys.readouterr().out


def test_unknown_alert_and_bad_number(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = fire(tmp_path)
    assert main(["ack", "--config", str(config), "7"]) == 2
    assert "There is no alert #7." in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["standdown", "--config", str(config), "one"])
    assert exited.value.code == 2
    assert state(tmp_path / "watcher.db") == "open"


def test_no_database_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    assert main(["ack", "--config", str(config), "1"]) == 2
    assert "no database yet" in capsys.readouterr().err
    assert not (tmp_path / "watcher.db").exists()


async def test_the_running_watcher_carries_out_the_operators_ack(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    config = load(config_path, environ={})
    db = tmp_path / "watcher.db"
    (tmp_path / "feed.jsonl").write_text(json.dumps(CODE_USE) + "\n")
    lock = ProcessLock(db)  # as `watcher run` holds it
    assert lock.acquire()
    out = io.StringIO()
    app = App(config, database=db, stdout=out, connectors=[])
    stop = asyncio.Event()
    running = asyncio.create_task(app.run(stop=stop))
    try:
        await eventually(lambda: out.getvalue().count("ALERT to") == 2, "the alert")
        # The command runs as its own process would: its own loop, its own connection.
        code = await asyncio.to_thread(main, ["ack", "--config", str(config_path), "1"])
        assert code == 0
        await eventually(lambda: out.getvalue().count("the operator at the watcher is "
                                                      "handling") == 2,
                         "the running watcher to tell both contacts")
    finally:
        stop.set()
        await running
        await app.aclose()
        lock.release()
    assert state(db) == "acknowledged"


async def test_a_playbook_that_runs_out_is_told_and_stays_open(tmp_path: Path) -> None:
    config = load(write_config(tmp_path), environ={})
    db = tmp_path / "watcher.db"
    clock = Clock()
    out = io.StringIO()
    app = App(config, database=db, stdout=out, clock=clock, connectors=[])
    try:
        (tmp_path / "feed.jsonl").write_text(json.dumps(CODE_USE) + "\n")
        await app.poll_replay()
        await app.settle()
        for _ in range(4):  # 5m, then 10m twice, then the last wait: past every step
            clock.advance(minutes=10)
            await app.settle()
        text = out.getvalue()
        assert text.count("its playbook has run out") == 2  # Alex and Jo, once each
        incident = app.store.incident(1)
        assert incident is not None and incident.state == IncidentState.OPEN
        clock.advance(hours=1)
        await app.settle()
        assert out.getvalue().count("its playbook has run out") == 2  # said once, not again
        report = status_report(config, app.store, Supervisor(config, app.store, clock))
        assert "#1 network-down (sam): nobody acknowledged; playbook ended at " \
               "2026-11-22 14:" in report
        assert {"state": "open", "playbook": "ended"} in evidence(db, "incident")
        # Still open until someone acts: the operator can.
        names = {k: c.name for k, c in config.contacts.items()}
        assert actions.acknowledge(app.store, 1, OPERATOR, "cli", clock(), names).done
        await app.settle()
        assert "nobody acknowledged" not in status_report(
            config, app.store, Supervisor(config, app.store, clock))
    finally:
        app.close()


async def test_a_playbook_ending_on_a_notify_tells_nobody(tmp_path: Path) -> None:
    """check-on-me ends on a notify: that alert has just gone out and nobody was given time
    to answer it, so its end is no news (a playbook that ends on a wait is told)."""
    config = load(write_config(tmp_path), environ={})
    clock = Clock()
    out = io.StringIO()
    app = App(config, database=tmp_path / "w.db", stdout=out, clock=clock, connectors=[])
    try:
        runner: PlaybookRunner = app.runner
        flower = {**CODE_USE, "id": "c/2", "text": "", "images": ["flower.jpg"]}
        (tmp_path / "feed.jsonl").write_text(json.dumps(flower) + "\n")
        await app.poll_replay()
        await app.settle()
        clock.advance(hours=1)
        await runner.tick()
        assert "ALERT to Alex" in out.getvalue()
        assert "run out" not in out.getvalue()
    finally:
        app.close()


ACTORS = st.sampled_from(["alex", "jo", OPERATOR])
STEPS = st.lists(st.tuples(st.sampled_from(["ack", "standdown"]), ACTORS), max_size=6)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=STEPS)
def test_any_sequence_of_actions_keeps_one_story(tmp_path: Path,
                                                 steps: list[tuple[str, str]]) -> None:
    """Whoever acts in whatever order: the first ack wins and is the only one logged; a
    stand-down ends the incident for good; every change is told exactly once."""
    config = load(write_config(tmp_path), environ={})
    clock = Clock()
    store = Store(None)
    try:
        from playbooks.drills import start_drill  # any incident will do: a drill is one

        incident = start_drill(config, store, "network-down", clock())
        names = {k: c.name for k, c in config.contacts.items()}
        acked: str | None = None
        ended = False
        for verb, actor in steps:
            clock.advance(seconds=1)
            if verb == "ack":
                outcome = actions.acknowledge(store, incident, actor, "web", clock(), names)
                assert outcome.done == (acked is None and not ended)
                if outcome.done:
                    acked = actor
            else:
                outcome = actions.stand_down(store, incident, actor, clock())
                assert outcome.done == (not ended)
                ended = True
        acks = [r for r in store.conn.execute(
            "SELECT data FROM evidence WHERE kind = 'ack'")]
        assert len(acks) == (1 if acked else 0)
        assert store.acked_by(incident) == acked
        notices = [r[0] for r in store.conn.execute("SELECT kind FROM notices")]
        assert notices.count("acknowledged") == (1 if acked else 0)
        assert notices.count("stood_down") == (1 if ended else 0)
    finally:
        store.close()
