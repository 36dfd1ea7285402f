"""`watcher init` driven through a pseudo-terminal writes a config that `watcher check` accepts."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pexpect
import pytest

from watcher.cli import main


def test_init_through_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "watcher.toml"
    child = pexpect.spawn(sys.executable, ["-m", "watcher.cli", "init", "--out", str(out)],
                          encoding="utf-8", timeout=30)
    answers = [
        ("Name of the person being watched", "Sam O'Neil"),
        ("Their time zone", "Europe/Londn"),
        ("Unknown time zone", None),
        ("Their time zone", ""),  # accepts the default Europe/London
        ("Their Telegram user id", "12345"),
        ("Their Signal number", "07700"),
        ("country code", None),
        ("Their Signal number", "+447700900001"),
        ("Their Bluesky handle", ""),
        ("Contact's name", "Alex"),
        ("Alex's Telegram chat id", "98765"),
        ("Alex's Signal number", ""),
        ("Alex's Apprise URL", ""),
        ("Contact's name", "Jo \"JJ\""),
        ("Telegram chat id", ""),
        ("Signal number", "+447700900003"),
        ("Apprise URL", "jo at example.com"),
        ("Write the whole Apprise URL", None),
        ("Apprise URL", "mailtos://jo:hunter2@example.com"),
        ("Contact's name", ""),
        ("The number signal-cli-rest-api serves", "+447700900002"),
        ("The exact phrase agreed", "the network went down at work"),
        ("What should the contacts do", ""),
    ]
    for prompt, reply in answers:
        child.expect_exact(prompt)
        if reply is not None:
            child.sendline(reply)
    child.expect_exact("Wrote")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text()
    assert 'timezone = "Europe/London"' in text
    # The Apprise URL (a password in it) is in its own 0600 file, named by the config.
    assert "hunter2" not in text and 'apprise = [{ file = "secrets/jo-jj.apprise" }]' in text
    secret = tmp_path / "secrets" / "jo-jj.apprise"
    assert secret.read_text().strip() == "mailtos://jo:hunter2@example.com"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert "token = { env = \"WATCHER_TELEGRAM_TOKEN\" }" in text
    assert main(["check", "--config", str(out)]) == 2  # the token's variable is not set yet
    monkeypatch.setenv("WATCHER_TELEGRAM_TOKEN", "123:abc")
    assert main(["check", "--config", str(out)]) == 0


def test_init_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "watcher.toml"
    out.write_text("keep me")
    assert main(["init", "--out", str(out)]) == 2
    assert out.read_text() == "keep me"
