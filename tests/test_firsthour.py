"""Issue 18: what a new user stumbles on in the first hour, each one pinned by a test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import redirect_stdout
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.files.replay import LineError, Position, ReplayFile
from detectors.codes import build_detectors
from tests.conftest import ROOT, Clock, write_config
from watcher.app import App
from watcher.cli import main
from watcher.core.clock import utcnow
from watcher.core.config import load
from watcher.core.config_schema import PLATFORMS
from watcher.core.models import Event
from watcher.core.store import Store
from watcher.engine.engine import Engine
from watcher.lock import ProcessLock
from watcher.ordinary import COMMON_EMOJI, phrase_warning
from watcher.supervision.supervisor import expected_feeds
from watcher.supervision.watching import record_nothing_watched

PLATFORM_IDENTITY = {"telegram": "telegram = { user_id = 111 }",
                     "signal": 'signal = { uuid = "abc" }',
                     "bluesky": 'bluesky = { handle = "sam.example.com" }'}
PLATFORM_CONNECTOR = {"telegram": '[connectors.telegram]\ntoken = { env = "TG_TOKEN" }\n',
                      "signal": '[connectors.signal]\nnumber = "+15550000001"\n',
                      "bluesky": "[connectors.bluesky]\n"}
SMALL = """
[watcher]
database = "watcher.db"

[people.sam]
name = "Sam"
{identities}

[contacts.alex]
name = "Alex"
console = true

[codes.network-down]
person = "sam"
phrase = {phrase}
playbook = "tell"

[playbooks.tell]
steps = [ {{ notify = ["alex"], message = "{{person}}: {{code}}" }} ]

{connectors}
"""


def small_config(folder: Path, identities: Sequence[str] = (), connectors: Sequence[str] = (),
                 replay: bool = False, phrase: str = '["the network went down at work"]') -> Path:
    text = SMALL.format(identities="\n".join(PLATFORM_IDENTITY[p] for p in identities),
                        phrase=phrase,
                        connectors="\n".join(PLATFORM_CONNECTOR[p] for p in connectors)
                        + ('[connectors.replay]\nfiles = ["feed.jsonl"]\n' if replay else ""))
    return write_config(folder, text=text)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


# 1. `check` says what `run` will watch: supervision's expected feeds are the truth.

@settings(max_examples=40, deadline=None)
@given(identities=st.sets(st.sampled_from(sorted(PLATFORM_IDENTITY))),
       connectors=st.sets(st.sampled_from(sorted(PLATFORM_CONNECTOR))))
def test_check_says_exactly_what_run_will_watch(tmp_path_factory: pytest.TempPathFactory,
                                                identities: set[str],
                                                connectors: set[str]) -> None:
    folder = tmp_path_factory.mktemp("c")
    path = small_config(folder, sorted(identities), sorted(connectors), replay=True)
    before = os.environ.get("TG_TOKEN")
    os.environ["TG_TOKEN"] = "123:abc"  # (hypothesis and monkeypatch do not mix)
    try:
        config = load(path)
        feeds = set(expected_feeds(config))
        buffer = StringIO()
        with redirect_stdout(buffer):
            assert main(["check", "--config", str(path)]) == 0
    finally:
        if before is None:
            del os.environ["TG_TOKEN"]
        else:
            os.environ["TG_TOKEN"] = before
    out = buffer.getvalue()
    assert "this version has no" not in out
    for platform in identities:
        watched = f"sam/{platform}" in feeds
        assert (f"  watched: {platform} (by [connectors.{platform}])" in out) == watched
        assert (f"people.sam.{platform}: there is no [connectors.{platform}] section, so "
                f"Sam's {platform} is NOT watched" in out) == (not watched)


# 2. A config that watches no feed at all is said loudly, and kept as a blind watch.

def test_a_config_that_watches_nothing_is_loud(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = small_config(tmp_path)  # no connector, no replay file: nothing is read
    code, out, _ = run(capsys, "check", "--config", str(path))
    assert code == 0 and "warning: NOTHING IS WATCHED: the config watches no feed at all" in out
    code, out, err = run(capsys, "run", "--once", "--config", str(path))
    assert code == 0 and "ERROR watcher: NOTHING IS WATCHED" in err
    code, out, _ = run(capsys, "status", "--config", str(path))
    assert code == 0
    assert re.search(r"every feed +NOT WATCHED .*the config watches no feed at all", out), out
    # Once the config names a feed, the blind watch is cleared.
    path.write_text(path.read_text() + '[connectors.replay]\nfiles = ["feed.jsonl"]\n')
    code, out, err = run(capsys, "run", "--once", "--config", str(path))
    assert code == 0 and "NOTHING" not in err
    assert "every feed" not in run(capsys, "status", "--config", str(path))[1]


def test_nothing_watched_is_told_to_the_contacts_at_once(tmp_path: Path) -> None:
    config = load(small_config(tmp_path), environ={})
    app = App(config, database=tmp_path / "watcher.db", connectors=[])
    try:
        record_nothing_watched(app.store, config, utcnow())
        assert app.supervisor.tick() == 1  # no grace period: nothing will recover by itself
        rows = app.store.deliveries()
        assert [(r["contact"], r["kind"]) for r in rows] == [("alex", "blind")]
        assert rows[0]["text"].startswith("WATCH BLIND: every feed is not being watched")
        assert app.supervisor.tick() == 0  # told once
    finally:
        app.close()


# 3. A drill ends when its playbook ends, says so, and its exit code says who acknowledged.

def test_drill_without_wait_ack_ends_with_its_playbook(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)  # "flower" uses check-on-me: one notify, no wait_ack
    started = time.monotonic()
    code = main(["drill", "--config", str(config), "flower", "--timeout", "90s"])
    out = capsys.readouterr().out
    assert time.monotonic() - started < 60, "the drill waited out its timeout"
    assert code == 3
    assert "Nobody acknowledged; the playbook ran to its end." in out
    assert "resolved" not in out and ": NOT acknowledged" in out
    assert "sent     to Alex via console" in out


def test_drill_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["drill", "--help"])
    assert "3 nobody acknowledged" in " ".join(capsys.readouterr().out.split())
    assert "3 nobody acknowledged" in (ROOT / "docs" / "operations.md").read_text()


# 4. Check-ins are judged by the feeds that exist.

MORNING = """
[codes.morning]
person = "sam"
checkin = { by = "10:00", phrase = ["good morning"] }
playbook = "check-on-me"
"""


async def test_checkin_through_replay_is_not_called_blind(tmp_path: Path) -> None:
    clock = Clock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    config = load(write_config(tmp_path, extra=MORNING), environ={})
    eng = Engine(config, Store(tmp_path / "w.db"), build_detectors(config)[0], clock)
    eng.checkins.tick()
    clock.advance(hours=1)
    # A replayed event of a platform nobody reads live leaves a health row behind.
    await eng.ingest(Event(platform="bluesky", person="sam", kind="message", id="p1",
                           at=clock(), text="good morning"))
    clock.advance(hours=1, minutes=1)
    assert eng.checkins.tick() == 1  # 10:01: checked in at 09:00
    clock.advance(hours=24)  # 10:01 the next day, and no check-in
    eng.checkins.tick()
    eng.checkins.tick()
    kinds = [r["kind"] for r in eng.store.deliveries()]
    assert "checkin-blind" not in kinds
    assert [i.code for i in eng.store.incidents()] == ["morning"]  # a missed check-in


async def test_a_live_feed_never_read_is_blind(tmp_path: Path) -> None:
    """The other side: a configured connector that has not read since the period began
    cannot vouch for a missed check-in, even if it never wrote a health row at all."""
    clock = Clock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    path = write_config(tmp_path, extra=MORNING + '[people.sam.telegram]\nuser_id = 111\n'
                        '[connectors.telegram]\ntoken = { env = "TG_TOKEN" }\n')
    config = load(path, environ={"TG_TOKEN": "1:x"})
    eng = Engine(config, Store(tmp_path / "w.db"), build_detectors(config)[0], clock)
    eng.checkins.tick()
    clock.advance(hours=2, minutes=1)
    eng.checkins.tick()
    assert eng.store.incidents() == []
    rows = eng.store.deliveries()
    assert [r["kind"] for r in rows] == ["checkin-blind"]
    assert "sam/telegram: not read since the period began" in rows[0]["text"]


# 5. A database that cannot be made: one line, exit 1.

@pytest.mark.parametrize("where", ["file-as-folder", "folder-as-file", "no-such-root",
                                   "not-permitted"])
@pytest.mark.parametrize("command", ["run", "status", "drill", "evidence"])
def test_an_unusable_database_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          where: str, command: str) -> None:
    config = write_config(tmp_path)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    database = {"file-as-folder": tmp_path / "a-file" / "watcher.db",
                "folder-as-file": tmp_path / "a-folder",
                "no-such-root": Path("/proc/no-such-folder/watcher.db"),
                "not-permitted": Path("/sys/watcher.db")}[where]
    args = {"run": ["run", "--once"], "status": ["status"], "drill": ["drill", "flower"],
            "evidence": ["evidence", "verify"]}[command]
    code, _, err = run(capsys, *args, "--config", str(config), "--database", str(database))
    if command in ("status", "evidence") and not database.exists():
        assert code == 2 and "no database yet" in err  # nothing to read: said as such
    else:
        assert code == 1, err
        assert err.startswith("error: cannot ") and str(database) in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_second_watcher_is_exit_1_as_the_readme_says(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    lock = ProcessLock(tmp_path / "watcher.db")
    assert lock.acquire()
    try:
        code, _, err = run(capsys, "run", "--once", "--config", str(config))
    finally:
        lock.release()
    assert code == 1 and "another watcher is already running" in err
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "1 when the database cannot be used (it cannot be created, opened or written, or " \
           "another watcher is already running on it)" in readme


# 6. A reader that stops early ends the command quietly.

@pytest.mark.parametrize("command", ["status", "check"])
def test_a_closed_pipe_is_not_a_traceback(tmp_path: Path, command: str) -> None:
    config = write_config(tmp_path)
    assert main(["run", "--once", "--config", str(config)]) == 0
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader (`head`) is gone before anything is written
    try:
        done = subprocess.run([sys.executable, "-m", "watcher.cli", command, "--config",
                               str(config)], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=60, cwd=ROOT)
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode == 141


# 7. Commands that talk to no platform do not need its secrets.

def test_status_and_evidence_need_no_platform_secret(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = small_config(tmp_path, ["telegram"], ["telegram"], replay=True)
    monkeypatch.delenv("TG_TOKEN", raising=False)
    Store(tmp_path / "watcher.db").close()
    (tmp_path / "history.jsonl").write_text(json.dumps(
        {"person": "sam", "id": "1", "at": "2025-01-01T00:00:00Z", "text": "hi"}) + "\n")
    # `evidence verify` on a log no watcher ever anchored says so, with exit 1 (not proven),
    # never 2 (a config problem).
    for args, expected in ((["status"], 0), (["evidence", "verify"], 1),
                           (["replay", str(tmp_path / "feed.jsonl")], 0),
                           (["audit", str(tmp_path / "history.jsonl")], 0)):
        code, _, err = run(capsys, *args, "--config", str(path))
        assert code == expected, (args, err)
        assert "TG_TOKEN" not in err
    # Those that do talk to the platform (or validate for it) still require it.
    code, _, err = run(capsys, "check", "--config", str(path))
    assert code == 2 and "environment variable TG_TOKEN is not set" in err


# 8. Codes that would fire on ordinary text are warned about at check and run.

@pytest.mark.parametrize("phrase", ["ok", "OK", "sos", "hi!", "good morning", "Thank you",
                                    "👍", "❤️", "👍🏽", "😂", "112"])
def test_ordinary_phrases_are_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           phrase: str) -> None:
    path = small_config(tmp_path, replay=True, phrase=json.dumps([phrase], ensure_ascii=False))
    code, out, _ = run(capsys, "check", "--config", str(path))
    assert code == 0
    warning = [line for line in out.splitlines() if "codes.network-down.phrase[0]" in line]
    assert len(warning) == 1 and "would fire on ordinary messages" in warning[0]
    assert phrase not in warning[0].split(":", 1)[1]  # the code itself is never echoed
    code, _, err = run(capsys, "run", "--once", "--config", str(path))
    assert code == 0 and "codes.network-down.phrase[0]" in err


def test_real_codes_are_not_warned_about() -> None:
    """False warnings stay rare: none of the benchmark's or the examples' codes is named."""
    phrases = {json.loads(line)["phrase"]
               for line in (ROOT / "tests/data/phrase/variants.jsonl").read_text().splitlines()}
    phrases |= {"help me", "the network went down at work", "🌻🌻", "🦔", "pineapple pizza"}
    for config in (ROOT / "config.example.toml", ):
        loaded = load(config, environ={}, secrets=False)
        phrases |= {p for c in loaded.codes.values() for p in (c.phrase or [])}
    assert phrases and [p for p in phrases if phrase_warning(p)] == []


@given(st.sampled_from(sorted(COMMON_EMOJI)), st.sampled_from(["", "\ufe0f", "\U0001f3fd", " "]))
def test_every_everyday_emoji_alone_is_warned_about(emoji: str, suffix: str) -> None:
    assert phrase_warning(emoji + suffix) == "a single everyday emoji"


# 9. The audit's advice fits the code, and an export is attributed by user id only.

def test_audit_advice_fits_a_reaction_code(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, extra="""
        [codes.thumbs]
        person = "sam"
        reaction = { on = "https://t.me/c/1234567890/42", emoji = "👍" }
        playbook = "check-on-me"
        """)
    history = tmp_path / "history.jsonl"
    history.write_text(json.dumps(
        {"platform": "telegram", "person": "sam", "kind": "reaction", "id": "r1",
         "at": "2025-01-01T00:00:00Z", "target": "https://t.me/c/1234567890/42",
         "emoji": "👍"}) + "\n")
    code, out, _ = run(capsys, "audit", "--config", str(config), str(history))
    assert code == 0
    line = next(x for x in out.splitlines() if "WARNING thumbs" in x)
    assert "phrase or photo" not in line and "not otherwise react to" in line


def test_export_without_user_id_is_refused_not_misattributed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)  # Sam has no telegram user_id
    export = tmp_path / "result.json"
    export.write_text(json.dumps({"id": 42, "messages": [
        {"id": 1, "type": "message", "date": "2025-03-02T10:05:00", "from": "Alex",
         "from_id": "user999", "text": "the network went down at work"}]}))
    code, out, err = run(capsys, "audit", "--config", str(config), str(export))
    assert code == 2 and "WARNING" not in out
    assert "people.sam.telegram.user_id is not set" in err


# 10. make example, replay platforms.

def test_make_example_checks_the_database_it_runs_on() -> None:
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nexample:", 1)[1].split("\n\n", 1)[0]
    databases = re.findall(r"watcher (check|run) .*?--database (\S+)", recipe)
    assert [kind for kind, _ in databases] == ["check", "run"]
    assert databases[0][1] == databases[1][1]


def test_check_prints_the_database_given(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    code, out, _ = run(capsys, "check", "--config", str(config), "--database",
                       str(tmp_path / "elsewhere.db"))
    assert code == 0 and f"Database: {tmp_path / 'elsewhere.db'}" in out


def test_replay_refuses_an_unknown_platform(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    path.write_text(json.dumps({"platform": "whatsapp", "person": "sam", "id": "1",
                                "at": "2026-11-22T08:00:00Z", "text": "hi"}) + "\n")
    items = [item for item, _ in ReplayFile(path).read(Position())]
    assert [str(i) for i in items if isinstance(i, LineError)] == [
        f'{path}:1: "platform" must be one of {", ".join(PLATFORMS)}']
