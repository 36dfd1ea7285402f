"""The one TOML config file, validated whole at load.

Every problem is reported at once, each named by its TOML key path and saying
what to do, and nothing starts while any remains: a typo must never silently
drop a contact or disarm a code.
"""

from __future__ import annotations

import difflib
import os
import re
import stat
import string
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

PLATFORMS = ("replay", "telegram", "signal", "bluesky")
TEMPLATE_FIELDS = frozenset(
    {"person", "code", "time", "date", "link", "matched", "platform", "incident", "acker",
     "contact", "drill"}
)


class ConfigError(Exception):
    """One or more problems in the config; each line names a TOML key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Parse `30s`, `5m`, `2h`, `1d` (or a sum such as `1h30m`)."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not cleaned or _DURATION.sub("", cleaned).strip():
        raise ValueError(f'"{text}" is not a duration; write it like 30s, 5m, 2h or 1d')
    return timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class SecretRef(_Strict):
    """A secret is named, never written inline: `{ env = "NAME" }` or `{ file = "path" }`."""

    env: str | None = None
    file: str | None = None


class WatcherSection(_Strict):
    database: str = "watcher.db"
    timezone: str = "UTC"
    max_image_bytes: int = Field(default=25_000_000, gt=0)
    max_image_pixels: int = Field(default=60_000_000, gt=0)
    tick: str = "1s"


class TelegramPerson(_Strict):
    user_id: int


class SignalPerson(_Strict):
    number: str | None = None
    uuid: str | None = None


class BlueskyPerson(_Strict):
    handle: str | None = None
    did: str | None = None


class Person(_Strict):
    name: str
    timezone: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    telegram: TelegramPerson | None = None
    signal: SignalPerson | None = None
    bluesky: BlueskyPerson | None = None


class TelegramContact(_Strict):
    chat_id: int


class SignalContact(_Strict):
    number: str


class Contact(_Strict):
    name: str
    fields: dict[str, str] = Field(default_factory=dict)
    console: bool = False
    telegram: TelegramContact | None = None
    signal: SignalContact | None = None
    apprise: list[str | SecretRef] = Field(default_factory=list)


class ReactionSpec(_Strict):
    on: str
    emoji: str | None = None


class Code(_Strict):
    person: str
    playbook: str | None = None
    platforms: list[Literal["replay", "telegram", "signal", "bluesky"]] | None = None
    phrase: list[str] | None = None
    image: list[str] | None = None
    reaction: ReactionSpec | None = None
    tolerance: Literal["exact", "typos"] | int = "typos"
    whole_words: bool = True
    negations: list[str] = Field(default_factory=list, alias="not")
    description: str = ""

    def detector_kinds(self) -> list[str]:
        return [k for k in ("phrase", "image", "reaction") if getattr(self, k) is not None]


class NotifyStep(_Strict):
    notify: list[str]
    message: str
    messages: dict[str, str] = Field(default_factory=dict)


class WaitAckStep(_Strict):
    wait_ack: str
    repeat_from: int | None = Field(default=None, ge=0)
    times: int | None = Field(default=None, ge=1, le=100)

    @field_validator("wait_ack")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "notify" in value:
            return "NotifyStep"
        if "wait_ack" in value:
            return "WaitAckStep"
    return None


Step = Annotated[
    Annotated[NotifyStep, Tag("NotifyStep")] | Annotated[WaitAckStep, Tag("WaitAckStep")],
    Discriminator(_step_kind),
]


class OnAck(_Strict):
    notify: list[str]
    message: str


class Playbook(_Strict):
    steps: list[Step] = Field(min_length=1)
    on_ack: OnAck | None = None


class ReplayConnector(_Strict):
    files: list[str] = Field(default_factory=list)


class Connectors(_Strict):
    replay: ReplayConnector | None = None


@dataclass(frozen=True)
class Config:
    """The validated config; paths are absolute, secrets resolved."""

    path: Path
    watcher: WatcherSection
    people: Mapping[str, Person]
    contacts: Mapping[str, Contact]
    codes: Mapping[str, Code]
    playbooks: Mapping[str, Playbook]
    connectors: Connectors
    secrets: Mapping[str, str]
    declared: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def exists(self, section: str, name: str) -> bool:
        """Declared in the file, even if its own section had errors (reported there)."""
        return name in self.declared.get(section, frozenset())

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, relative: str) -> Path:
        return (self.base_dir / relative).resolve()

    @property
    def database(self) -> Path:
        return self.resolve(self.watcher.database)

    def person_zone(self, person: str) -> ZoneInfo:
        return ZoneInfo(self.people[person].timezone or self.watcher.timezone)

    def image_paths(self, code: str) -> list[Path]:
        return [self.resolve(p) for p in self.codes[code].image or []]


M = TypeVar("M", bound=BaseModel)
_TOP_KEYS = ("watcher", "people", "contacts", "codes", "playbooks", "connectors")


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_TAGGED: dict[Any, type[BaseModel]] = {"NotifyStep": NotifyStep, "WaitAckStep": WaitAckStep}


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _submodel(arg)
        if found is not None:
            return found
    return None


def _suggest(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """Name the keys that would be accepted there, and the likeliest one meant."""
    current: type[BaseModel] | None = model
    for part in loc[:-1]:
        if current is None:
            return ""
        if part in _TAGGED:
            current = _TAGGED[part]
        elif isinstance(part, str) and part in current.model_fields:
            current = _submodel(current.model_fields[part].annotation)
    if current is None:
        return ""
    keys = [f.alias or n for n, f in current.model_fields.items()]
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1)
    hint = f'; did you mean "{close[0]}"?' if close else ""
    return f"{hint} (known keys: {', '.join(keys)})"


def _explain(model: type[BaseModel], prefix: tuple[Any, ...], exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        # Unions (a step is notify OR wait_ack) report one branch name in the path; drop it.
        loc = tuple(p for p in err["loc"] if p not in ("NotifyStep", "WaitAckStep", "str",
                                                        "SecretRef", "int"))
        where = _path(prefix + loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            problems.append(f"{where}: unknown key{_suggest(model, tuple(err['loc']))}")
        elif kind in ("union_tag_not_found", "union_tag_invalid"):
            problems.append(f"{where}: a step is either {{ notify = [...], message = \"...\" }} "
                            "or { wait_ack = \"5m\" }")
        elif kind == "missing":
            problems.append(f"{where}: required key is missing")
        else:
            problems.append(f"{where}: {err['msg']}")
    return sorted(set(problems))


def _section(
    raw: Mapping[str, Any], name: str, model: type[M], problems: list[str]
) -> dict[str, M]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        problems.append(f"{name}: must be a table of [{name}.NAME] sections")
        return {}
    out: dict[str, M] = {}
    for key, value in table.items():
        if not isinstance(value, dict):
            problems.append(f"{name}.{key}: must be a table ([{name}.{key}])")
            continue
        try:
            out[key] = model.model_validate(value)
        except ValidationError as exc:
            problems.extend(_explain(model, (name, key), exc))
    return out


def _one(raw: Any, name: str, model: type[M], problems: list[str]) -> M | None:
    try:
        return model.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        problems.extend(_explain(model, (name,), exc))
        return None


def read_secret(ref: SecretRef, where: str, base_dir: Path,
                environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """Return (value, problem). A secrets file readable by group or others is refused."""
    if (ref.env is None) == (ref.file is None):
        return None, f'{where}: give exactly one of env = "NAME" or file = "path"'
    if ref.env is not None:
        value = environ.get(ref.env)
        if not value:
            return None, f"{where}: environment variable {ref.env} is not set"
        return value, None
    path = (base_dir / str(ref.file)).resolve()
    try:
        mode = path.stat().st_mode
    except OSError:
        return None, f"{where}: secrets file {path} does not exist"
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return None, (f"{where}: secrets file {path} is readable by others; "
                      f"run: chmod 600 {path}")
    try:
        return path.read_text(encoding="utf-8").strip(), None
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"{where}: cannot read secrets file {path} ({type(exc).__name__})"


def load(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem."""
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read the config file ({type(exc).__name__})"]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    return parse(raw, path, os.environ if environ is None else environ)


def parse(raw: Mapping[str, Any], path: Path, environ: Mapping[str, str]) -> Config:
    problems: list[str] = [
        f"{key}: unknown section; known sections: {', '.join(_TOP_KEYS)}"
        for key in raw if key not in _TOP_KEYS
    ]
    watcher = _one(raw.get("watcher"), "watcher", WatcherSection, problems)
    people = _section(raw, "people", Person, problems)
    contacts = _section(raw, "contacts", Contact, problems)
    codes = _section(raw, "codes", Code, problems)
    playbooks = _section(raw, "playbooks", Playbook, problems)
    connectors = _one(raw.get("connectors"), "connectors", Connectors, problems)
    declared = {name: frozenset(raw[name]) for name in ("people", "contacts", "codes",
                                                         "playbooks")
                if isinstance(raw.get(name), dict)}
    config = Config(path, watcher or WatcherSection(), people, contacts, codes, playbooks,
                    connectors or Connectors(), {}, declared)
    secrets: dict[str, str] = {}
    for check in _CHECKS:
        problems.extend(check(config))
    problems.extend(_resolve_secrets(config, environ, secrets))
    if problems:
        raise ConfigError(problems)
    return Config(path, config.watcher, people, contacts, codes, playbooks, config.connectors,
                  secrets, declared)


def _resolve_secrets(config: Config, environ: Mapping[str, str],
                     out: dict[str, str]) -> list[str]:
    problems = []
    for key, contact in config.contacts.items():
        for i, url in enumerate(contact.apprise):
            if isinstance(url, SecretRef):
                where = f"contacts.{key}.apprise[{i}]"
                value, problem = read_secret(url, where, config.base_dir, environ)
                if problem:
                    problems.append(problem)
                elif value is not None:
                    out[where] = value
    return problems


def _known(kind: str, names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return f"known {kind}: {listed}" if listed else f"no {kind} are configured"


def _check_watcher(config: Config) -> list[str]:
    problems = []
    zones = [("watcher.timezone", config.watcher.timezone)] + [
        (f"people.{k}.timezone", p.timezone) for k, p in config.people.items() if p.timezone
    ]
    for where, zone in zones:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f'{where}: unknown time zone "{zone}"; use a name like Europe/London')
    try:
        if parse_duration(config.watcher.tick).total_seconds() < 1:
            problems.append("watcher.tick: must be at least 1s")
    except ValueError as exc:
        problems.append(f"watcher.tick: {exc}")
    return problems


def _check_codes(config: Config) -> list[str]:
    problems = []
    for key, code in config.codes.items():
        where = f"codes.{key}"
        if not config.exists("people", code.person):
            problems.append(f'{where}.person: no person "{code.person}"; '
                            f"{_known('people', config.declared.get('people', ()))}")
        kinds = code.detector_kinds()
        if len(kinds) != 1:
            problems.append(f"{where}: give exactly one of phrase, image or reaction "
                            f"(found {len(kinds)})")
        if code.playbook is None:
            problems.append(f"{where}.playbook: required key is missing")
        elif not config.exists("playbooks", code.playbook):
            problems.append(f'{where}.playbook: no playbook "{code.playbook}"; '
                            f"{_known('playbooks', config.declared.get('playbooks', ()))}")
        if code.phrase is not None and not [p for p in code.phrase if p.strip()]:
            problems.append(f"{where}.phrase: list at least one non-empty phrase")
        for i, image in enumerate(code.image or []):
            if not config.resolve(image).is_file():
                problems.append(f"{where}.image[{i}]: reference photo {config.resolve(image)} "
                                "does not exist")
        if code.image is not None and not code.image:
            problems.append(f"{where}.image: list at least one reference photo")
    return problems


def _template_problems(where: str, template: str, fields: set[str], whose: str) -> list[str]:
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        return [f"{where}: template cannot be read ({exc}); write a literal brace as {{{{ or }}}}"]
    problems = []
    for name in dict.fromkeys(names):
        if name not in fields:
            problems.append(f"{where}: unknown field {{{name}}} {whose}; "
                            f"available: {', '.join('{' + f + '}' for f in sorted(fields))}")
    return problems


def _person_fields(config: Config, playbook: str) -> set[str]:
    """Fields every person whose codes use this playbook defines (any may be the one)."""
    people = [config.people[c.person] for c in config.codes.values()
              if c.playbook == playbook and c.person in config.people]
    if not people:
        return set()
    return set.intersection(*(set(p.fields) for p in people))


def _check_playbooks(config: Config) -> list[str]:
    problems = []
    for key, book in config.playbooks.items():
        base = set(TEMPLATE_FIELDS) | _person_fields(config, key)
        notifies: list[tuple[str, list[str], str, Mapping[str, str]]] = [
            (f"playbooks.{key}.steps[{i}]", s.notify, s.message, s.messages)
            for i, s in enumerate(book.steps) if isinstance(s, NotifyStep)
        ]
        if book.on_ack:
            notifies.append((f"playbooks.{key}.on_ack", book.on_ack.notify, book.on_ack.message,
                             {}))
        for where, who, message, per_contact in notifies:
            for j, contact in enumerate(who):
                if contact not in config.contacts:
                    if config.exists("contacts", contact):
                        continue
                    problems.append(f'{where}.notify[{j}]: no contact "{contact}"; '
                                    f"{_known('contacts', config.declared.get('contacts', ()))}")
                    continue
                text = per_contact.get(contact, message)
                which = f"messages.{contact}" if contact in per_contact else "message"
                fields = base | set(config.contacts[contact].fields)
                problems.extend(_template_problems(f"{where}.{which}", text, fields,
                                                   f"(for contact {contact})"))
            for contact in per_contact:
                if contact not in who:
                    problems.append(f"{where}.messages.{contact}: not in this step's notify list")
        for i, step in enumerate(book.steps):
            if isinstance(step, WaitAckStep) and step.repeat_from is not None:
                if step.repeat_from >= i:
                    problems.append(f"playbooks.{key}.steps[{i}].repeat_from: must point to an "
                                    f"earlier step (0 to {i - 1}; steps count from 0)")
                if step.times is None:
                    problems.append(f"playbooks.{key}.steps[{i}].times: required with "
                                    "repeat_from, so that a playbook can never loop forever")
        if not any(isinstance(s, NotifyStep) and s.notify for s in book.steps):
            problems.append(f"playbooks.{key}.steps: no step notifies anyone")
    return sorted(set(problems), key=problems.index)


def _check_contacts(config: Config) -> list[str]:
    problems = []
    for key, contact in config.contacts.items():
        if not (contact.console or contact.telegram or contact.signal or contact.apprise):
            problems.append(f"contacts.{key}: no channel to reach {contact.name}; add telegram, "
                            "signal, apprise or console")
        problems.extend(_watched_addresses(config, key, contact))
    return problems


def _watched_addresses(config: Config, key: str, contact: Contact) -> list[str]:
    """Refuse an alert address that belongs to a watched person: it would tip off the abuser."""
    problems = []
    for pkey, person in config.people.items():
        if (contact.telegram and person.telegram
                and contact.telegram.chat_id == person.telegram.user_id):
            problems.append(f"contacts.{key}.telegram.chat_id: this is the private chat of "
                            f"watched person {pkey}; alerts must never go there")
        if (contact.signal and person.signal and person.signal.number
                and contact.signal.number == person.signal.number):
            problems.append(f"contacts.{key}.signal.number: this is the number of watched "
                            f"person {pkey}; alerts must never go there")
    return problems


_CHECKS: tuple[Callable[[Config], list[str]], ...] = (
    _check_watcher, _check_codes, _check_playbooks, _check_contacts,
)
