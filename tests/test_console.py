"""The console channel prints the alert at a terminal only; elsewhere a notice without text.

Under systemd standard output is the system journal: the alert text (the survivor's
matched words, a contact's fields such as an address) must not end up there.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from playbooks.channels import ConsoleChannel
from tests.conftest import write_config
from watcher.core.config import Config, load

TEXT = "Sam used it: call the police to 12 Acacia Avenue\n\x1b[2J\u202eevil\u200b"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def channel_config(tmp_path: Path) -> Config:
    return load(write_config(tmp_path), environ={})


async def test_not_a_terminal_gets_a_notice_without_text(
        channel_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = io.StringIO()  # what systemd gives a service: not a tty
    monkeypatch.setattr("sys.stdout", journal)
    await ConsoleChannel(channel_config).send("alex", "alex", TEXT, incident=3)
    out = journal.getvalue()
    assert out == ("ALERT to Alex (console channel, alert #3): text not shown, standard "
                   "output is not a terminal (docs/operations.md)\n")


async def test_a_terminal_gets_the_text_with_control_characters_escaped(
        channel_config: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    await ConsoleChannel(channel_config).send("alex", "alex", TEXT, incident=3)
    out = terminal.getvalue()
    assert "call the police to 12 Acacia Avenue\n" in out
    assert "\x1b" not in out and "\u202e" not in out and "\u200b" not in out
    assert "\\u001b[2J\\u202eevil\\u200b" in out
