"""The docs are tested so they cannot go stale: every config key documented, examples valid."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from connectors.replay import parse_line
from tests.conftest import ROOT
from watcher import config as cfg

SECTIONS: dict[str, type[BaseModel]] = {
    "watcher": cfg.WatcherSection, "people.KEY": cfg.Person, "contacts.KEY": cfg.Contact,
    "codes.KEY": cfg.Code, "playbooks.KEY": cfg.Playbook,
    "connectors.replay": cfg.ReplayConnector, "connectors.telegram": cfg.TelegramConnector,
    "connectors.signal": cfg.SignalConnector, "connectors.bluesky": cfg.BlueskyConnector,
}
NESTED: dict[str, type[BaseModel]] = {
    "checkin": cfg.Checkin, "confirm": cfg.Confirm, "reaction": cfg.ReactionSpec,
}


def keys(model: type[BaseModel]) -> list[str]:
    return [field.alias or name for name, field in model.model_fields.items()]


def step_keys() -> list[str]:
    return keys(cfg.NotifyStep) + keys(cfg.WaitAckStep) + keys(cfg.OnAck)


def test_every_config_key_is_documented() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    for section, model in SECTIONS.items():
        assert f"`[{section}]`" in doc, section
        for key in keys(model):
            assert f"`{key}`" in doc, f"{section}.{key} is not in docs/configuration.md"
    for key in step_keys():
        assert f"{key} =" in doc or f"`{key}`" in doc, key
    for parent, model in NESTED.items():
        for key in keys(model):
            assert f"{key} =" in doc, f"{parent}.{key} is not in docs/configuration.md"
    for field in cfg.TEMPLATE_FIELDS:
        assert f"`{{{field}}}`" in doc, f"template field {{{field}}} is not documented"


def test_example_config_shows_every_key() -> None:
    text = (ROOT / "config.example.toml").read_text()
    for section, model in SECTIONS.items():
        for key in keys(model):
            assert re.search(rf"(^|[\s{{,#]){re.escape(key)} =", text, re.M), \
                f"{section}.{key} is not shown in config.example.toml"
    for key in step_keys():
        assert f"{key} =" in text, key


def toml_blocks(markdown: str) -> list[str]:
    return re.findall(r"```toml\n(.*?)```", markdown, re.S)


def test_readme_config_snippet_is_valid() -> None:
    blocks = toml_blocks((ROOT / "README.md").read_text())
    assert blocks
    for block in blocks:
        raw: dict[str, Any] = tomllib.loads(block)
        config = cfg.parse(raw, ROOT / "snippet.toml", environ={})
        assert config.codes


def test_event_format_examples_parse() -> None:
    doc = (ROOT / "docs" / "event-format.md").read_text()
    lines = re.findall(r"```json\n(.*?)```", doc, re.S)[0].strip().splitlines()
    events = [parse_line(line.encode(), ROOT / "examples" / "feed.jsonl") for line in lines]
    assert [e.kind for e in events] == ["message", "message", "reaction"]


def test_readme_commands_are_the_ci_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make example" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^example:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line and not line.startswith(("#", "set ", "cd "))]
    assert ci == ["make test"]


def test_every_cli_command_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    from watcher.cli import COMMANDS
    for command in COMMANDS:
        assert f"watcher {command}" in readme, command


def test_example_feed_is_described(tmp_path: Path) -> None:
    sources = (ROOT / "examples" / "SOURCES.md").read_text()
    for image in (ROOT / "examples").rglob("*.jpg"):
        assert image.name in sources, f"{image} has no source/licence line"
