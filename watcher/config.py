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
    stale_after: str = "15m"
    heartbeat_url: str | SecretRef | None = None
    heartbeat_every: str = "5m"
    digest: Literal["off", "daily", "weekly"] = "off"
    keep_seen: str = "90d"


class TelegramPerson(_Strict):
    user_id: int
    channels: list[int] = Field(default_factory=list)


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
    number: str | None = None
    group: str | None = None


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


class Confirm(_Strict):
    code: str
    within: str

    @field_validator("within")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class Checkin(_Strict):
    every: str | None = None
    by: str | None = None
    phrase: list[str] | None = None
    grace: str = "0s"

    @field_validator("every", "grace")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("by")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clock(value)
        return value


_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_clock(text: str) -> tuple[int, int]:
    """Parse a time of day written HH:MM."""
    found = _CLOCK.match(text.strip())
    if not found:
        raise ValueError(f'"{text}" is not a time of day; write it like 07:30 or 22:00')
    return int(found.group(1)), int(found.group(2))


def parse_window(text: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """Parse an armed window written HH:MM-HH:MM (it may wrap past midnight)."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f'"{text}" is not a window; write it like 22:00-07:00')
    return parse_clock(start), parse_clock(end)


class Code(_Strict):
    person: str
    playbook: str | None = None
    platforms: list[Literal["replay", "telegram", "signal", "bluesky"]] | None = None
    phrase: list[str] | None = None
    image: list[str] | None = None
    reaction: ReactionSpec | None = None
    checkin: Checkin | None = None
    cooldown: str | None = None
    armed: list[str] | None = None
    confirm: Confirm | None = None
    stand_down: bool = False
    false_all_clear: bool = False
    drill_every: str | None = None
    tolerance: Literal["exact", "typos"] | int = "typos"
    whole_words: bool = True
    negations: list[str] = Field(default_factory=list, alias="not")
    description: str = ""

    @field_validator("cooldown", "drill_every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @field_validator("armed")
    @classmethod
    def _windows(cls, value: list[str] | None) -> list[str] | None:
        for window in value or []:
            parse_window(window)
        return value

    def detector_kinds(self) -> list[str]:
        return [k for k in ("phrase", "image", "reaction", "checkin")
                if getattr(self, k) is not None]


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


class TelegramConnector(_Strict):
    token: SecretRef
    api_url: str = "https://api.telegram.org"
    chats: list[int] = Field(default_factory=list)
    poll_timeout: int = Field(default=30, ge=1, le=50)
    profile_photo_interval: str = "15m"


class SignalConnector(_Strict):
    url: str = "http://127.0.0.1:8080"
    number: str
    mode: Literal["auto", "normal", "json-rpc"] = "auto"
    poll_interval: str = "2s"
    max_attachment_bytes: int = Field(default=25_000_000, gt=0)


class BlueskyLogin(_Strict):
    handle: str
    password: SecretRef


class BlueskyConnector(_Strict):
    service: str = "https://bsky.social"
    plc: str = "https://plc.directory"
    poll_interval: str = "60s"
    stream: Literal["off", "jetstream", "firehose"] = "off"
    jetstream: str = "wss://jetstream2.us-east.bsky.network/subscribe"
    login: BlueskyLogin | None = None


class Connectors(_Strict):
    replay: ReplayConnector | None = None
    telegram: TelegramConnector | None = None
    signal: SignalConnector | None = None
    bluesky: BlueskyConnector | None = None


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

    @property
    def default_zone(self) -> ZoneInfo:
        return ZoneInfo(self.watcher.timezone)

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
    refs: list[tuple[str, SecretRef]] = []
    if isinstance(config.watcher.heartbeat_url, SecretRef):
        refs.append(("watcher.heartbeat_url", config.watcher.heartbeat_url))
    if config.connectors.telegram is not None:
        refs.append(("connectors.telegram.token", config.connectors.telegram.token))
    if config.connectors.bluesky is not None and config.connectors.bluesky.login is not None:
        refs.append(("connectors.bluesky.login.password",
                     config.connectors.bluesky.login.password))
    for where, ref in refs:
        value, problem = read_secret(ref, where, config.base_dir, environ)
        if problem:
            problems.append(problem)
        elif value is not None:
            out[where] = value
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
    for key in ("stale_after", "heartbeat_every", "keep_seen"):
        try:
            parse_duration(getattr(config.watcher, key))
        except ValueError as exc:
            problems.append(f"watcher.{key}: {exc}")
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
            problems.append(f"{where}: give exactly one of phrase, image, reaction or checkin "
                            f"(found {len(kinds)})")
        confirmer = any(c.confirm and c.confirm.code == key for c in config.codes.values())
        if code.stand_down and code.false_all_clear:
            problems.append(f"{where}: a code cannot be both stand_down and false_all_clear")
        if code.stand_down and code.playbook is not None:
            problems.append(f"{where}.playbook: a stand_down code ends incidents and tells "
                            "everyone who was alerted; it takes no playbook")
        if code.playbook is None and not (code.stand_down or confirmer):
            problems.append(f"{where}.playbook: required key is missing")
        elif code.playbook is not None and not config.exists("playbooks", code.playbook):
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
        if code.confirm is not None and not config.exists("codes", code.confirm.code):
            problems.append(f'{where}.confirm.code: no code "{code.confirm.code}"; '
                            f"{_known('codes', config.declared.get('codes', ()))}")
        elif code.confirm is not None and code.confirm.code == key:
            problems.append(f"{where}.confirm.code: a code cannot confirm itself")
        if code.checkin is not None and (code.checkin.every is None) == (code.checkin.by is None):
            problems.append(f'{where}.checkin: give exactly one of every = "24h" or by = "10:00"')
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


def addresses(config: Config, contact_key: str) -> list[tuple[str, str]]:
    """Every (channel, address) on which a contact is reached; secrets stay out of it."""
    contact = config.contacts[contact_key]
    out: list[tuple[str, str]] = []
    if contact.console:
        out.append(("console", contact_key))
    if contact.telegram:
        out.append(("telegram", str(contact.telegram.chat_id)))
    if contact.signal:
        out.append(("signal", contact.signal.number or contact.signal.group or ""))
    out.extend(("apprise", str(i)) for i in range(len(contact.apprise)))
    return out


def working_channels(config: Config, contact: Contact) -> list[str]:
    """The channels that can reach a contact with the connectors configured."""
    found = []
    if contact.console:
        found.append("console")
    if contact.telegram and config.connectors.telegram:
        found.append("telegram")
    if contact.signal and config.connectors.signal:
        found.append("signal")
    if contact.apprise:
        found.append("apprise")
    return found


def _check_reach(config: Config) -> list[str]:
    """A code whose playbook reaches nobody on a working channel would be a silent failure."""
    problems = []
    for key, code in config.codes.items():
        book = config.playbooks.get(code.playbook or "")
        if book is None:
            continue
        contacts = {c for s in book.steps if isinstance(s, NotifyStep) for c in s.notify}
        if not any(working_channels(config, config.contacts[c]) for c in contacts
                   if c in config.contacts) and all(c in config.contacts for c in contacts):
            problems.append(f"codes.{key}.playbook: playbook {code.playbook} reaches no contact "
                            "on a working channel; configure the contacts' connectors "
                            "([connectors.telegram], [connectors.signal]) or add apprise")
    return problems


def _check_connectors(config: Config) -> list[str]:
    problems = []
    for key, contact in config.contacts.items():
        for platform in ("telegram", "signal"):
            if getattr(contact, platform) and getattr(config.connectors, platform) is None:
                problems.append(f"contacts.{key}.{platform}: there is no [connectors.{platform}] "
                                f"section, so {contact.name} cannot be reached there")
        if contact.signal and (contact.signal.number is None) == (contact.signal.group is None):
            problems.append(f'contacts.{key}.signal: give exactly one of number = "+44..." or '
                            'group = "group.ID"')
        problems.extend(_signal_account_clash(config, key, contact))
    for key, person in config.people.items():
        if person.signal and not (person.signal.uuid or person.signal.number):
            problems.append(f"people.{key}.signal: give uuid (preferred) or number")
        if person.bluesky and (person.bluesky.handle is None) == (person.bluesky.did is None):
            problems.append(f"people.{key}.bluesky: give exactly one of handle or did")
    for where, value in _connector_durations(config):
        try:
            parse_duration(value)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
    return problems


def _same_number(a: str, b: str) -> bool:
    return re.sub(r"[\s\-().]", "", a) == re.sub(r"[\s\-().]", "", b)


def _signal_account_clash(config: Config, key: str, contact: Contact) -> list[str]:
    """Signal alerts go out from [connectors.signal] number: never from a watched person's
    own account (they would show on their phone), never to the account itself."""
    section = config.connectors.signal
    if contact.signal is None or section is None:
        return []
    for pkey, person in config.people.items():
        if person.signal and person.signal.number and _same_number(person.signal.number,
                                                                   section.number):
            return [f"contacts.{key}.signal: [connectors.signal] number is watched person "
                    f"{pkey}'s own account, so alerts sent from it would show on their phone; "
                    "reach contacts by another channel (docs/signal.md)"]
    if contact.signal.number and _same_number(contact.signal.number, section.number):
        return [f"contacts.{key}.signal.number: this is [connectors.signal] number itself; a "
                "linked account cannot alert its own owner: give this contact another channel"]
    return []


def _connector_durations(config: Config) -> list[tuple[str, str]]:
    found = []
    c = config.connectors
    if c.telegram:
        found.append(("connectors.telegram.profile_photo_interval",
                      c.telegram.profile_photo_interval))
    if c.signal:
        found.append(("connectors.signal.poll_interval", c.signal.poll_interval))
    if c.bluesky:
        found.append(("connectors.bluesky.poll_interval", c.bluesky.poll_interval))
    return found


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
    telegram = config.connectors.telegram
    if contact.telegram and telegram and contact.telegram.chat_id in telegram.chats:
        problems.append(f"contacts.{key}.telegram.chat_id: this is a watched chat "
                        "(connectors.telegram.chats); alerts must never go there")
    for pkey, person in config.people.items():
        if (contact.telegram and person.telegram
                and contact.telegram.chat_id == person.telegram.user_id):
            problems.append(f"contacts.{key}.telegram.chat_id: this is the private chat of "
                            f"watched person {pkey}; alerts must never go there")
        if (contact.telegram and person.telegram
                and contact.telegram.chat_id in person.telegram.channels):
            problems.append(f"contacts.{key}.telegram.chat_id: this is a channel of watched "
                            f"person {pkey}; alerts must never go there")
        if (contact.signal and person.signal and person.signal.number
                and contact.signal.number == person.signal.number):
            problems.append(f"contacts.{key}.signal.number: this is the number of watched "
                            f"person {pkey}; alerts must never go there")
    return problems


_CHECKS: tuple[Callable[[Config], list[str]], ...] = (
    _check_watcher, _check_codes, _check_playbooks, _check_contacts, _check_connectors,
    _check_reach,
)
