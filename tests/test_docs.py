"""The docs are tested so they cannot go stale: every config key documented, examples valid."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel

from connectors.files.replay import parse_line
from tests.conftest import ROOT
from watcher.core import config as cfg

SECTIONS: dict[str, type[BaseModel]] = {
    "watcher": cfg.WatcherSection, "people.KEY": cfg.Person, "contacts.KEY": cfg.Contact,
    "codes.KEY": cfg.Code, "playbooks.KEY": cfg.Playbook,
    "connectors.replay": cfg.ReplayConnector, "connectors.telegram": cfg.TelegramConnector,
    "connectors.signal": cfg.SignalConnector, "connectors.bluesky": cfg.BlueskyConnector,
    "connectors.sms": cfg.SmsConnector,
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


# -- every key a doc page uses is real and documented; every relative link resolves ----------

DOC_PAGES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
TOP_LEVEL: dict[str, tuple[type[BaseModel], bool]] = {  # section: (model, is a table of KEYs)
    "watcher": (cfg.WatcherSection, False), "people": (cfg.Person, True),
    "contacts": (cfg.Contact, True), "codes": (cfg.Code, True),
    "playbooks": (cfg.Playbook, True), "connectors": (cfg.Connectors, False),
    "web": (cfg.WebSection, False),
}
FREE_FORM = {"fields", "messages"}  # tables whose keys are the user's own names


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The models an annotation can hold (through Optional, list, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def _field(model: type[BaseModel], key: str) -> Any:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field.annotation
    return None


def _walk(model: type[BaseModel], path: list[str], where: str, used: set[str]) -> list[str]:
    """Follow a key path (TOML keys, list items dropped) through the schema."""
    if not path:
        return []
    key, rest = path[0], path[1:]
    annotation = _field(model, key)
    if annotation is None:
        return [f"{where}: {key} is not a key of {model.__name__}"]
    used.add(key)
    if key in FREE_FORM:
        return []
    models = _models(annotation)
    if rest and not models:
        return [f"{where}: {key} takes no keys, but {'.'.join(rest)} is given"]
    problems = [p for m in models for p in _walk(m, rest, where, used)]
    # A union (a step is notify or wait_ack) is fine when any of its models has the key.
    return [] if len(problems) < len(models) else problems[:1]


def _paths(value: Any, prefix: list[str]) -> list[list[str]]:
    """Every key path in a parsed TOML value (list items and inline tables included)."""
    if isinstance(value, dict):
        out = [prefix] if prefix else []
        for key, item in value.items():
            out.extend(_paths(item, [*prefix, str(key)]))
        return out
    if isinstance(value, list):
        return [p for item in value for p in _paths(item, prefix)] or [prefix]
    return [prefix]


def _check_path(parts: list[str], where: str, used: set[str]) -> list[str]:
    top = TOP_LEVEL.get(parts[0])
    if top is None:
        return [f"{where}: unknown section {parts[0]}"]
    model, keyed = top
    rest = parts[2:] if keyed else parts[1:]
    return _walk(model, rest, where, used)


DOTTED = re.compile(r"`\[?((?:watcher|people|contacts|codes|playbooks|connectors|web)"
                    r"(?:\.[A-Za-z0-9_\-]+|\[\d+\])+)\]?`")


def test_every_key_a_doc_uses_exists_and_is_documented() -> None:
    problems: list[str] = []
    used: set[str] = set()
    for page in DOC_PAGES:
        text = page.read_text()
        for block in toml_blocks(text):
            for parts in _paths(tomllib.loads(block), []):
                problems.extend(_check_path(parts, f"{page.name}: {'.'.join(parts)}", used))
        for found in DOTTED.findall(text):
            module = ROOT / found.replace(".", "/")
            if re.search(r"\.(db|toml|py|lock|md|jsonl?)$", found) or module.is_dir() \
                    or module.with_suffix(".py").is_file():
                continue  # a file name such as watcher.db or a module, not a key
            parts = [p for p in re.split(r"\.|\[\d+\]", found) if p]
            problems.extend(_check_path(parts, f"{page.name}: `{found}`", used))
    assert not problems, "\n".join(problems)
    reference = (ROOT / "docs" / "configuration.md").read_text()
    missing = sorted(k for k in used if f"`{k}`" not in reference and f"{k} =" not in reference)
    assert not missing, f"keys used in the docs but not in docs/configuration.md: {missing}"
    assert {"channels", "user_id", "token"} <= used  # the walk saw nested keys


LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
RELATIVE_PATH = re.compile(r"`(\.\.?/[^`\s]+)`")


def test_every_relative_link_resolves_inside_the_repository() -> None:
    problems = []
    for page in DOC_PAGES + sorted(ROOT.glob("examples/**/*.md")):
        text = page.read_text()
        for target in LINK.findall(text) + RELATIVE_PATH.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor on the same page
            resolved = (page.parent / target.split("#", 1)[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                problems.append(f"{page.relative_to(ROOT)}: {target}")
    assert not problems, "links that do not resolve inside the repository: " + ", ".join(problems)
