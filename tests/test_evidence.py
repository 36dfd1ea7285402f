"""The evidence log is hash-chained: an edited or deleted row is found and named."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import write_config
from watcher.cli import main

FEED = [
    {"person": "sam", "id": "1", "at": "2026-11-20T08:00:00Z", "text": "Morning! SENTINEL-BODY"},
    {"person": "sam", "id": "2", "at": "2026-11-21T14:02:00Z",
     "text": "argh the network went down at work SENTINEL-TAIL", "link": "https://t.me/c/1/2"},
]


@pytest.fixture
def run_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    config = write_config(tmp_path)
    (tmp_path / "feed.jsonl").write_text("".join(json.dumps(e) + "\n" for e in FEED))
    assert main(["run", "--once", "--config", str(config)]) == 0
    capsys.readouterr()
    return config


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def test_chain_verifies_and_exports(run_db: Path, capsys: pytest.CaptureFixture[str],
                                    tmp_path: Path) -> None:
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 0 and out.startswith("Evidence log intact:")
    jsonl = tmp_path / "e.jsonl"
    assert cli(capsys, "evidence", "export", "--config", str(run_db), "--format", "jsonl",
               "--out", str(jsonl))[0] == 0
    entries = [json.loads(line) for line in jsonl.read_text().splitlines()]
    kinds = [e["kind"] for e in entries]
    assert kinds[:2] == ["incident", "match"] and "delivery" in kinds
    match = entries[1]["data"]
    assert match["matched"] == "the network went down at work"
    assert match["link"] == "https://t.me/c/1/2"
    # Only the matched span is kept: never the rest of the message, never other messages.
    assert "SENTINEL" not in jsonl.read_text()
    assert stat.S_IMODE(jsonl.stat().st_mode) == 0o600
    page = tmp_path / "e.html"
    cli(capsys, "evidence", "export", "--config", str(run_db), "--format", "html", "--out",
        str(page))
    html = page.read_text()
    assert "Chain verified:" in html and "Code recognised" in html and "SENTINEL" not in html
    later = tmp_path / "later.jsonl"
    cli(capsys, "evidence", "export", "--config", str(run_db), "--format", "jsonl", "--out",
        str(later), "--from", "2099-01-01")
    assert later.read_text() == ""


def tamper(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.executescript("DROP TRIGGER evidence_no_update; DROP TRIGGER evidence_no_delete;"
                       + sql)
    conn.close()


def test_edited_row_is_named(run_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = run_db.parent / "watcher.db"
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE evidence SET data = '{}' WHERE id = 2")
    conn.close()
    tamper(db, "UPDATE evidence SET data = replace(data, 'network', 'netwerk') WHERE id = 2;")
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 1
    assert out.startswith("EVIDENCE LOG BROKEN: entry 2 (match,") and "was altered" in out


def test_deleted_row_is_named(run_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = run_db.parent / "watcher.db"
    tamper(db, "DELETE FROM evidence WHERE id = 3;")
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 1 and "entry 3 is missing (next is 4): deleted" in out


def test_status_command(run_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = cli(capsys, "status", "--config", str(run_db))
    assert code == 0 and "#1 network-down (sam): open" in out
    code, out = cli(capsys, "status", "--config", str(run_db), "--json")
    data = json.loads(out)
    assert [i["code"] for i in data["incidents"]] == ["network-down"]
    assert data["pending_steps"][0]["step"] == 1


def test_no_secret_or_message_text_in_logs(tmp_path: Path) -> None:
    """A whole scenario with known secrets and texts: none of them reaches the logs."""
    extra = '[contacts.nan]\nname = "Nan"\napprise = [{ env = "NAN_URL" }]\n'
    config = write_config(tmp_path, extra=extra)
    config.write_text(config.read_text().replace('notify = ["alex", "jo"]',
                                                 'notify = ["alex", "jo", "nan"]'))
    (tmp_path / "feed.jsonl").write_text("".join(json.dumps(e) + "\n" for e in FEED)
                                         + "{broken SENTINEL-BAD-LINE\n")
    secret = "json://127.0.0.1:9/SENTINEL-SECRET-TOKEN"  # nothing listens: delivery fails
    result = subprocess.run(
        [sys.executable, "-m", "watcher.cli", "run", "--once", "--verbose", "--config",
         str(config)], capture_output=True, text=True, timeout=60,
        env={"NAN_URL": secret, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "delivery" in result.stderr and "failed" in result.stderr  # it did log, and fail
    for sentinel in ("SENTINEL-SECRET-TOKEN", "SENTINEL-BODY", "SENTINEL-TAIL",
                     "SENTINEL-BAD-LINE", "Morning!"):
        assert sentinel not in result.stderr, sentinel
