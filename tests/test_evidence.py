"""The evidence log is hash-chained: an edited or deleted row is found and named."""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import write_config
from watcher.app import App
from watcher.cli import main
from watcher.core import anchor, evidence
from watcher.core.config import load
from watcher.core.store import Store
from watcher.supervision.supervisor import Supervisor

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
    assert "match the anchor written at" in html
    later = tmp_path / "later.jsonl"
    cli(capsys, "evidence", "export", "--config", str(run_db), "--format", "jsonl", "--out",
        str(later), "--from", "2099-01-01")
    assert later.read_text() == ""


def tamper(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.executescript("DROP TRIGGER IF EXISTS evidence_no_update; "
                       "DROP TRIGGER IF EXISTS evidence_no_delete;"
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


# --------------------------------------------------------------- the anchor outside the DB
# An attacker with write access to the database drops the triggers, changes the log and
# recomputes every hash, so that the chain alone verifies. The anchor must still catch it.


def recompute(db: Path, sql: str) -> None:
    """Tamper like someone who knows the format: change rows, then rebuild the whole chain
    (renumbered, so that no gap shows)."""
    tamper(db, sql)
    conn = sqlite3.connect(db)
    prev = evidence.GENESIS
    rows = conn.execute("SELECT at, kind, incident_id, data FROM evidence ORDER BY id")
    kept = rows.fetchall()
    conn.execute("DELETE FROM evidence")
    for entry_id, (at, kind, incident, data) in enumerate(kept, start=1):
        digest = evidence.entry_hash(prev, entry_id, at, kind, incident, data)
        conn.execute("INSERT INTO evidence VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (entry_id, at, kind, incident, data, prev, digest))
        prev = digest
    conn.commit()
    conn.close()
    chain_alone = sqlite3.connect(db)
    assert evidence.verify(chain_alone)[1] is None  # the old check would say "intact"
    chain_alone.close()


FORGE = ("INSERT INTO evidence (id, at, kind, incident_id, data, prev_hash, hash) SELECT "
         "max(id) + 1, '2026-11-21T15:00:00.000000Z', 'ack', 1, '{\"contact\": \"jo\"}', '', '' "
         "FROM evidence;")


def test_run_writes_a_private_key_and_anchor(run_db: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    key, anchors = run_db.parent / "evidence.key", run_db.parent / "watcher.db.anchors"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(anchors.stat().st_mode) == 0o600
    conn = sqlite3.connect(run_db.parent / "watcher.db")
    seq, head = evidence.head(conn)
    conn.close()
    assert key.read_text().strip() not in (run_db.parent / "watcher.db").read_bytes().hex()
    last = anchors.read_text().splitlines()[-1].split(" ")
    assert (int(last[0]), last[1]) == (seq, head)
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 0 and out.startswith("Evidence log intact:")
    assert f"Proven: entries 1-{seq}" in out and "What this cannot prove" in out


@pytest.mark.parametrize(("sql", "said"), [
    ("DELETE FROM evidence WHERE id > (SELECT max(id) - 2 FROM evidence);", "were deleted"),
    ("DELETE FROM evidence;", "were deleted"),
    ("UPDATE evidence SET data = replace(data, 'network', 'netwerk') WHERE id = 2;",
     "rewritten"),
], ids=["truncated-tail", "all-deleted", "rewritten-and-recomputed"])
def test_recomputed_tampering_is_caught_by_the_anchor(
        run_db: Path, capsys: pytest.CaptureFixture[str], sql: str, said: str) -> None:
    recompute(run_db.parent / "watcher.db", sql)
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 1 and out.startswith("EVIDENCE LOG BROKEN:") and said in out
    assert "Proven:" not in out


def test_forged_append_is_not_proven_before_or_after_a_restart(
        run_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recompute(run_db.parent / "watcher.db", FORGE)
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 1 and "NOT FULLY PROVEN" in out and "came after the last anchor" in out
    # The watcher starts again over the forged entry: it is not laundered by the new anchor.
    assert main(["run", "--once", "--config", str(run_db)]) == 0
    capsys.readouterr()
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 1 and "were found without an anchor" in out


def test_forged_anchor_line_and_missing_key(run_db: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    anchors = run_db.parent / "watcher.db.anchors"
    conn = sqlite3.connect(run_db.parent / "watcher.db")
    seq, head = evidence.head(conn)
    conn.close()
    with anchors.open("a") as handle:  # no key: a made-up signature
        handle.write(f"{seq + 5} {head} 2026-12-01T00:00:00.000000Z commit {'0' * 64}\n")
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 1 and "is not signed with this watcher's key" in out
    (run_db.parent / "evidence.key").unlink()
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 1 and "the evidence key is missing" in out


def test_someone_with_the_whole_disk_is_caught_by_the_fingerprint_sent_to_contacts(
        run_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, key_file = run_db.parent / "watcher.db", run_db.parent / "evidence.key"
    conn = sqlite3.connect(db)
    sent = evidence.fingerprint(conn)  # what the digest carried to the contacts
    conn.close()
    recompute(db, "UPDATE evidence SET data = replace(data, 'network', 'netwerk') "
                  "WHERE id = 2;")
    # They have the key too: they rewrite the anchor file and sign it.
    key = anchor.load_key(key_file, create=False)
    assert key is not None
    anchors = run_db.parent / "watcher.db.anchors"
    anchors.unlink()
    conn = sqlite3.connect(db)
    anchor.write(anchors, key, *evidence.head(conn), "2026-12-01T00:00:00.000000Z", "commit")
    conn.close()
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 0  # nothing on this disk can tell any more: the docs say so
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db), "--expect", sent)
    assert code == 1 and "does not have the fingerprint" in out


def test_digest_carries_the_fingerprint(run_db: Path) -> None:
    config = load(run_db, environ={})
    store = Store(config.database)
    try:
        text = Supervisor(config, store).digest()
        assert f"Evidence log fingerprint: {evidence.fingerprint(store.conn)}" in text
    finally:
        store.close()


def test_missing_table_is_one_clear_line(run_db: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    tamper(run_db.parent / "watcher.db", "DROP TABLE evidence;")
    for action in (["verify"], ["export", "--format", "jsonl", "--out",
                                str(run_db.parent / "x.jsonl")]):
        code = main(["evidence", *action, "--config", str(run_db)])
        captured = capsys.readouterr()
        assert code == 2 and "Traceback" not in captured.err + captured.out
        assert captured.err.strip().splitlines() == [
            "error: this database has no evidence log (the table is missing: it was "
            "removed, or the file is not a watcher database)"]


def test_export_never_follows_a_symlink_nor_keeps_old_permissions(
        run_db: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched")
    link = tmp_path / "link.jsonl"
    link.symlink_to(victim)
    existing = tmp_path / "old.jsonl"
    existing.write_text("old")
    existing.chmod(0o644)
    for target in (link, existing):
        code = main(["evidence", "export", "--config", str(run_db), "--format", "jsonl",
                     "--out", str(target)])
        assert code == 2 and "exists" in capsys.readouterr().err
    assert victim.read_text() == "untouched" and existing.read_text() == "old"
    dangling = tmp_path / "dangling.jsonl"
    dangling.symlink_to(tmp_path / "would-be-created")
    assert main(["evidence", "export", "--config", str(run_db), "--format", "jsonl",
                 "--out", str(dangling)]) == 2
    assert not (tmp_path / "would-be-created").exists()


def test_a_database_readable_by_others_is_tightened(
        run_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = run_db.parent / "watcher.db"
    db.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        Store(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert "was readable by others (mode 644)" in caplog.text


TAMPERING = st.sampled_from(["truncate", "delete-all", "rewrite", "append", "delete-one"])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(moves=st.lists(st.tuples(TAMPERING, st.integers(1, 6)), min_size=1, max_size=3))
def test_no_tampering_with_only_the_database_verifies_as_proven(
        run_db: Path, tmp_path_factory: pytest.TempPathFactory,
        moves: list[tuple[str, int]]) -> None:
    """Any mix of cuts, rewrites and forged appends, chain recomputed: never "proven"."""
    folder = tmp_path_factory.mktemp("tampered")
    for name in ("watcher.db", "watcher.db.anchors", "evidence.key"):
        shutil.copy(run_db.parent / name, folder / name)
    db = folder / "watcher.db"
    sql = {"truncate": "DELETE FROM evidence WHERE id > (SELECT max(id) - {n} FROM evidence);",
           "delete-all": "DELETE FROM evidence;",
           "rewrite": "UPDATE evidence SET at = '2020-01-01T00:00:00.000000Z' WHERE id = {n};",
           "append": FORGE, "delete-one": "DELETE FROM evidence WHERE id = {n};"}
    before = db.read_bytes()
    for move, n in moves:
        recompute(db, sql[move].replace("{n}", str(n)))
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT id, at, kind, incident_id, data FROM evidence ORDER BY id")
    original = sqlite3.connect(run_db.parent / "watcher.db")
    same = rows.fetchall() == original.execute(
        "SELECT id, at, kind, incident_id, data FROM evidence ORDER BY id").fetchall()
    original.close()
    key = anchor.load_key(folder / "evidence.key", create=False)
    verdict = evidence.check(conn, folder / "watcher.db.anchors", key)
    conn.close()
    proven, _ = evidence.report(verdict)
    assert proven == same, (moves, verdict)
    assert before != db.read_bytes() or same


def test_a_lost_key_is_said_at_start_and_old_anchors_are_not_trusted(
        run_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_db.parent / "evidence.key").unlink()
    assert main(["run", "--once", "--config", str(run_db)]) == 0
    assert "the evidence key" in capsys.readouterr().err
    code, out = cli(capsys, "evidence", "verify", "--config", str(run_db))
    assert code == 1 and "is not signed with this watcher's key" in out


@pytest.mark.parametrize("planted", ["directory", "fifo", "symlink"])
def test_an_unusable_anchor_file_never_stops_the_watch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], planted: str) -> None:
    config = write_config(tmp_path)
    (tmp_path / "feed.jsonl").write_text("".join(json.dumps(e) + "\n" for e in FEED))
    anchors = tmp_path / "watcher.db.anchors"
    if planted == "directory":
        anchors.mkdir()
    elif planted == "fifo":
        os.mkfifo(anchors)  # opening it to read or write would block forever
    else:
        anchors.symlink_to(tmp_path / "elsewhere")
    assert main(["run", "--once", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    assert "ALERT to Alex" in captured.out  # the alert went out all the same
    assert "evidence anchor" in captured.err and "Traceback" not in captured.err
    code, out = cli(capsys, "evidence", "verify", "--config", str(config))
    assert code != 0 and "Evidence log intact" not in out
    assert not (tmp_path / "elsewhere").exists()  # never written through a planted link


async def test_an_entry_forged_while_the_watcher_runs_is_not_laundered(
        tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps(FEED[1]) + "\n")
    app = App(load(config_path, environ={}), stdout=io.StringIO())
    try:
        await app.run(once=True)
        recompute(tmp_path / "watcher.db", FORGE)  # beside the running watcher
        later = dict(FEED[1], id="3", at="2026-11-22T09:00:00Z")
        with feed.open("a") as handle:
            handle.write(json.dumps(later) + "\n")
        await app.run(once=True)  # its next commits build on the forged entry
        key = anchor.load_key(tmp_path / "evidence.key", create=False)
        verdict = evidence.check(app.store.conn, tmp_path / "watcher.db.anchors", key)
    finally:
        await app.aclose()
    assert not verdict.broken
    assert any("were found without an anchor" in p for p in verdict.unproven), verdict
    assert not evidence.report(verdict)[0]


def test_an_idle_watcher_anchors_every_hour(run_db: Path) -> None:
    store = Store(run_db.parent / "watcher.db")
    key = anchor.load_key(run_db.parent / "evidence.key", create=False)
    assert key is not None
    anchors = run_db.parent / "watcher.db.anchors"
    try:
        anchorer = evidence.Anchorer(anchors, key)
        store.attach_anchor(anchorer)
        lines = len(anchors.read_text().splitlines())
        store.anchor_tick()  # just anchored at start: nothing new
        assert len(anchors.read_text().splitlines()) == lines
        assert anchorer.last_write is not None
        anchorer.last_write -= evidence.PERIODIC
        store.anchor_tick()
        last = anchors.read_text().splitlines()[-1].split(" ")
        assert len(anchors.read_text().splitlines()) == lines + 1 and last[3] == "periodic"
        assert (int(last[0]), last[1]) == evidence.head(store.conn)
    finally:
        store.close()
