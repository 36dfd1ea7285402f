"""watcher.logs: what any logger writes through a protected handler is masked and escaped."""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import write_config
from watcher.core import logs
from watcher.core.store import Store

SECRET_URL = "json://user:Pa55w0rd-x@hooks.example.org/T0KEN-abc123/zz?apikey=QUERYSECRET9"
IDS = ["+447700900123", "-1001234567890", "7340012345", "0f8fad5b-d9cb-469f-a165-70867728950e"]
PIECES = ["Pa55w0rd-x", "T0KEN-abc123", "QUERYSECRET9", "447700900123", "1234567890",
          "7340012345", "0f8fad5b-d9cb-469f-a165-70867728950e"]


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logs.protect(handler, [SECRET_URL], IDS)
    log = logging.getLogger("httpx")  # a library's logger, at DEBUG, is covered too
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.DEBUG)
    try:
        yield log, out
    finally:
        log.removeHandler(handler)
        log.setLevel(old)


def test_a_library_request_line_hides_the_pieces_of_a_secret_url(
        logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    log.info('HTTP Request: POST https://hooks.example.org/T0KEN-abc123/zz?apikey=QUERYSECRET9 '
             '"HTTP/1.1 200 OK"')
    log.warning("Retrying after connection broken: /T0KEN-abc123/zz with Pa55w0rd-x")
    log.warning("to %s in %s (t.me/c/1234567890/5) by %s", "+447700900123", -1001234567890,
                "0f8fad5b-d9cb-469f-a165-70867728950e")
    text = out.getvalue()
    assert not [p for p in PIECES if p in text], text
    assert "https://hooks.example.org/[redacted]" in text and "id#" in text


def test_a_library_debug_payload_is_not_written(
        logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    log.debug("JSON Payload: %s", {"body": "call the police to 12 Acacia Avenue"})
    assert out.getvalue() == ""


def test_same_id_same_tag_within_a_run() -> None:
    masker = logs.Masker(ids=IDS)
    assert masker.mask("a 7340012345 b 7340012345") == f"a {masker.tag('7340012345')} b " \
                                                       f"{masker.tag('7340012345')}"


@given(st.text())
def test_escaped_text_is_one_line_without_controls(text: str) -> None:
    escaped = logs.escape(text)
    assert len(escaped.splitlines()) <= 1
    assert all(c.isprintable() or c == " " for c in escaped)


@given(before=st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
       after=st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30),
       piece=st.sampled_from(PIECES))
def test_no_piece_survives_in_any_surrounding_text(before: str, after: str, piece: str) -> None:
    masker = logs.Masker([SECRET_URL], IDS)
    assert piece not in masker.mask(f"{before} {piece} {after}")


def test_a_traceback_cannot_forge_a_line(logger: tuple[logging.Logger, io.StringIO]) -> None:
    log, out = logger
    try:
        raise ValueError("bad\n2026-01-01 00:00:00,000 CRITICAL watcher: all clear")
    except ValueError:
        log.exception("failed")
    lines = out.getvalue().splitlines()
    assert lines[0] == "failed" or lines[0].endswith("failed")
    assert all(line.startswith("  | ") for line in lines[1:])


def test_every_command_logs_through_the_safe_handler(tmp_path: Path) -> None:
    """Not only `run`: `watcher status` on a database others could read warns through the
    safe handler (Python's last-resort handler would print the bare message, unmasked)."""
    config = write_config(tmp_path)
    db = tmp_path / "watcher.db"
    Store(db).close()
    db.chmod(0o644)
    done = subprocess.run([sys.executable, "-m", "watcher.cli", "status", "--config",
                           str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r"^\d{4}-\d\d-\d\d [\d:,]+ WARNING watcher.store: watcher.db was "
                     r"readable by others", done.stderr, re.MULTILINE), done.stderr
