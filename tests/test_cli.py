"""The command line: clear one-line errors, exact `replay --json` output, `run --once`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_config
from watcher.cli import main

FEED = [
    {"person": "sam", "id": "1", "at": "2026-11-22T08:00:00Z", "text": "Morning!"},
    {"person": "sam", "id": "2", "at": "2026-11-22T14:02:00Z",
     "text": "ugh... the NETWORK went down at work!", "link": "https://t.me/c/1/2"},
    {"person": "sam", "id": "3", "at": "2026-11-22T15:00:00Z", "text": "garden",
     "images": ["flower-small.jpg"]},
]


def write_feed(path: Path, events: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


@pytest.fixture
def setup(tmp_path: Path) -> Path:
    config = write_config(tmp_path)
    shutil.copy(ROOT / "examples/photos/flower-as-posted.jpg", tmp_path / "flower-small.jpg")
    write_feed(tmp_path / "feed.jsonl", FEED)
    return config


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_replay_json_prints_only_matches(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "replay", "--config", str(setup),
                         str(setup.parent / "feed.jsonl"), "--json")
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["code"], r["event"], r["person"]) for r in rows] == [
        ("network-down", "2", "sam"), ("flower", "3", "sam")]
    assert rows[0]["evidence"]["matched"] == "the NETWORK went down at work"
    assert not (setup.parent / "watcher.db").exists()  # replay never touches the database


def test_replay_exit_zero_without_matches(setup: Path, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    feed = tmp_path / "quiet.jsonl"
    write_feed(feed, FEED[:1])
    assert run(capsys, "replay", "--config", str(setup), str(feed), "--json") == (0, "", "")


def test_replay_bad_lines(setup: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    feed = tmp_path / "bad.jsonl"
    feed.write_text(json.dumps(FEED[1]) + "\n{oops\n"
                    + json.dumps({**FEED[0], "person": "sma"}) + "\n")
    code, out, err = run(capsys, "replay", "--config", str(setup), str(feed), "--json")
    assert code == 2
    assert [json.loads(x)["event"] for x in out.splitlines()] == ["2"]
    assert err.splitlines() == [
        f"error: {feed}:2: not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2)",
        f'error: {feed}:3: no person "sma" in the config; known people: sam',
    ]


def test_replay_corrupt_image_is_reported(setup: Path, capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    (setup.parent / "flower-small.jpg").write_bytes(b"\xff\xd8garbage")
    code, out, err = run(capsys, "replay", "--config", str(setup),
                         str(setup.parent / "feed.jsonl"), "--json")
    assert code == 0
    assert [json.loads(x)["code"] for x in out.splitlines()] == ["network-down"]
    assert "detection failed: flower: image 0: not a readable image" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda p: p.unlink(), "config file not found"),
    (lambda p: p.write_text("[watcher\n"), "not valid TOML"),
    (lambda p: p.write_text(p.read_text().replace('person = "sam"\nimage',
                                                  'person = "sma"\nimage')),
     'config error: codes.flower.person: no person "sma"; known people: sam'),
    (lambda p: p.write_text(p.read_text().replace('"check-on-me"\n\n', '"nope"\n\n')),
     'config error: codes.flower.playbook: no playbook "nope"'),
    (lambda p: (p.parent / "flower.jpg").unlink(),
     "config error: codes.flower.image[0]: reference photo"),
    (lambda p: (p.parent / "flower.jpg").write_bytes(b"GIF89a broken"),
     "config error: codes.flower.image: "),
])
def test_bad_input_is_one_clear_line(setup: Path, capsys: pytest.CaptureFixture[str],
                                     mutate: object, expected: str) -> None:
    mutate(setup)  # type: ignore[operator]
    for command in (["check"], ["run", "--once"]):
        code, out, err = run(capsys, *command, "--config", str(setup))
        assert code == 2 and "ALERT" not in out
        assert expected in err
        assert "Traceback" not in err
        if "image" in expected:
            assert "flower.jpg" in err
        assert len(err.strip().splitlines()) == 1


def test_check_prints_what_it_watches(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--config", str(setup))
    assert code == 0
    assert "Code network-down: phrase code for sam, playbook call-police" in out
    assert "Contact alex (Alex): reached by console" in out


def test_run_once_alerts_then_dedupes(setup: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "run", "--once", "--config", str(setup))
    assert code == 0
    assert out.count("ALERT to Alex") == 2 and out.count("ALERT to Jo") == 1
    # Standard output here is not a terminal (as under systemd): the alert's text, with the
    # matched words and the address, is not printed (i13-leaks; tests/test_console.py).
    assert "text not shown" in out and "12 Acacia" not in out
    code, out, _ = run(capsys, "run", "--once", "--config", str(setup))
    assert code == 0 and "ALERT" not in out


def test_help_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("run", "check", "replay"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "--config" in capsys.readouterr().out


def test_python_dash_m_watcher_is_the_watcher_command(tmp_path: Path) -> None:
    """`python -m watcher` runs the same CLI (a config error is one line and exit code 2)."""
    done = subprocess.run([sys.executable, "-m", "watcher", "check", "--config",
                           str(tmp_path / "missing.toml")], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2
    assert done.stderr.strip().endswith("config file not found"), done.stderr
    assert "Traceback" not in done.stderr
