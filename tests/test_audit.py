"""`watcher audit` names the codes that would fire on ordinary history, and writes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import write_config
from watcher.cli import main


def export(path: Path) -> Path:
    """A Telegram Desktop export, in the shape its JSON export writes."""
    data = {"name": "Family", "type": "private_group", "id": 42, "messages": [
        {"id": 1, "type": "message", "date": "2025-03-01T09:00:00", "from": "Sam",
         "from_id": "user123", "text": "The network went down at work, so I'm home early"},
        {"id": 2, "type": "service", "date": "2025-03-01T09:01:00", "action": "pin_message"},
        {"id": 3, "type": "message", "date": "2025-03-02T10:00:00", "from": "Sam",
         "from_id": "user123", "text": [{"type": "bold", "text": "lunch"}, " at noon?"]},
        {"id": 4, "type": "message", "date": "2025-03-02T10:05:00", "from": "Alex",
         "from_id": "user999", "text": "the network went down at work too"},
    ]}
    path.write_text(json.dumps(data))
    return path


def test_audit_telegram_export_warns_about_a_code_that_fires(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, extra="")
    config.write_text(config.read_text().replace('name = "Sam"',
                                                 'name = "Sam"\ntelegram = { user_id = 123 }'))
    history = export(tmp_path / "result.json")
    assert main(["audit", "--config", str(config), str(history), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events"] == 2  # Sam's two messages; Alex's and the service line are not Sam's
    assert out["codes"]["network-down"] == [
        {"event": "export:42/1", "matched": "The network went down at work"}]
    assert out["codes"]["flower"] == []
    assert main(["audit", "--config", str(config), str(history)]) == 0
    text = capsys.readouterr().out
    assert "WARNING network-down: would have fired 1 time(s)" in text
    assert "flower: would not have fired. Good." in text
    assert not (tmp_path / "watcher.db").exists()


def test_audit_replay_history_and_bad_input(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path)
    feed = tmp_path / "history.jsonl"
    feed.write_text(json.dumps({"person": "sam", "id": "1", "at": "2025-01-01T00:00:00Z",
                                "text": "happy new year"}) + "\n{broken\n")
    assert main(["audit", "--config", str(config), str(feed)]) == 2
    out, err = capsys.readouterr()
    assert "Audited 1 past event(s)." in out and "history.jsonl:2: not valid JSON" in err
    assert main(["audit", "--config", str(config), str(tmp_path / "nope.json")]) == 2
    assert "history file not found" in capsys.readouterr().err
    bad = tmp_path / "result.json"
    bad.write_text("[1, 2]")
    assert main(["audit", "--config", str(config), str(bad)]) == 2
    assert 'no "messages" list' in capsys.readouterr().err


def test_audit_reads_text_inside_photos_for_in_images_codes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The audit runs the same detectors as the watcher: a code with in_images also looks at
    the words written in the history's photos (here, a hand-written note the OCR engine
    misreads), and one without does not."""
    ocr = Path(__file__).parent / "data" / "ocr"
    shutil.copy(ocr / "pos-0003-breip-x36-none-dark.jpg", tmp_path / "photo_1.jpg")
    shutil.copy(ocr / "neg-0000-dejavu-sans-bold-x12-none-dark.jpg", tmp_path / "photo_2.jpg")
    config = write_config(tmp_path, extra="""
        [codes.milk]
        person = "sam"
        phrase = ["we ran out of oat milk"]
        in_images = true
        playbook = "check-on-me"

        [codes.milk-typed]
        person = "sam"
        phrase = ["we ran out of oat milk"]
        playbook = "check-on-me"
        """)
    config.write_text(config.read_text().replace('name = "Sam"',
                                                 'name = "Sam"\ntelegram = { user_id = 123 }'))
    history = tmp_path / "result.json"
    history.write_text(json.dumps({"name": "Family", "type": "private_group", "id": 42,
                                   "messages": [
        {"id": 1, "type": "message", "date": "2025-03-01T09:00:00", "from": "Sam",
         "from_id": "user123", "text": "", "photo": "photo_1.jpg"},
        {"id": 2, "type": "message", "date": "2025-03-01T09:05:00", "from": "Sam",
         "from_id": "user123", "text": "look", "photo": "photo_2.jpg"},
    ]}))
    assert main(["audit", "--config", str(config), str(history), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["events"] == 2
    [(event, matched)] = [(f["event"], f["matched"]) for f in out["codes"]["milk"]]
    assert event == "export:42/1" and "ran" in matched  # what the engine read on the note
    assert out["codes"]["milk-typed"] == []
    assert main(["audit", "--config", str(config), str(history)]) == 0
    assert "WARNING milk: would have fired 1 time(s)" in capsys.readouterr().out
