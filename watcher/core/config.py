"""The one TOML config file, validated whole at load.

Every problem is reported at once, each named by its TOML key path and saying
what to do, and nothing starts while any remains: a typo must never silently
drop a contact or disarm a code.
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar, get_args

from pydantic import (
    BaseModel,
    ValidationError,
)

from watcher.core.config_checks import CHECKS, secret_destinations
from watcher.core.config_schema import (
    PLATFORMS,
    TEMPLATE_FIELDS,
    BlueskyConnector,
    BlueskyLogin,
    BlueskyPerson,
    Checkin,
    Code,
    Config,
    ConfigError,
    Confirm,
    Connectors,
    Contact,
    NotifyStep,
    OnAck,
    Person,
    Playbook,
    ReactionSpec,
    ReplayConnector,
    SecretRef,
    SignalConnector,
    SignalContact,
    SignalPerson,
    SmsConnector,
    SmsContact,
    SmsPerson,
    Step,
    TelegramConnector,
    TelegramContact,
    TelegramPerson,
    WaitAckStep,
    WatcherSection,
    WebSection,
    addresses,
    parse_clock,
    parse_duration,
    parse_window,
    working_channels,
)

# The schema is part of this module's interface: `from watcher.config import Code`.
__all__ = [
    "PLATFORMS",
    "TEMPLATE_FIELDS",
    "BlueskyConnector",
    "BlueskyLogin",
    "BlueskyPerson",
    "Checkin",
    "Code",
    "Config",
    "ConfigError",
    "Confirm",
    "Connectors",
    "Contact",
    "NotifyStep",
    "OnAck",
    "Person",
    "Playbook",
    "ReactionSpec",
    "ReplayConnector",
    "SecretRef",
    "SignalConnector",
    "SignalContact",
    "SignalPerson",
    "SmsConnector",
    "SmsContact",
    "SmsPerson",
    "Step",
    "TelegramConnector",
    "TelegramContact",
    "TelegramPerson",
    "WaitAckStep",
    "WatcherSection",
    "WebSection",
    "addresses",
    "load",
    "parse",
    "parse_clock",
    "parse_duration",
    "parse_window",
    "read_secret",
    "working_channels",
]

M = TypeVar("M", bound=BaseModel)
_TOP_KEYS = ("watcher", "people", "contacts", "codes", "playbooks", "connectors", "web")


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


def load(path: Path | str, environ: Mapping[str, str] | None = None, *,
         secrets: bool = True) -> Config:
    """Read and validate a config file; raise ConfigError listing every problem.

    secrets=False: the secrets are neither read nor required (config.secrets is empty), for
    commands that talk to no platform (status, evidence, replay, audit)."""
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
    return parse(raw, path, os.environ if environ is None else environ, secrets=secrets)


def parse(raw: Mapping[str, Any], path: Path, environ: Mapping[str, str], *,
          secrets: bool = True) -> Config:
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
    web = _one(raw["web"], "web", WebSection, problems) if "web" in raw else None
    declared = {name: frozenset(raw[name]) for name in ("people", "contacts", "codes",
                                                         "playbooks")
                if isinstance(raw.get(name), dict)}
    config = Config(path, watcher or WatcherSection(), people, contacts, codes, playbooks,
                    connectors or Connectors(), {}, declared, web)
    values: dict[str, str] = {}
    for check in CHECKS:
        problems.extend(check(config))
    if secrets:
        problems.extend(_resolve_secrets(config, environ, values))
        problems.extend(secret_destinations(config, values))  # secret Apprise URLs
    if problems:
        raise ConfigError(problems)
    return Config(path, config.watcher, people, contacts, codes, playbooks, config.connectors,
                  values, declared, web)


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
    if config.connectors.sms is not None:  # i15-sms
        refs.append(("connectors.sms.password", config.connectors.sms.password))
        refs.append(("connectors.sms.signing_key", config.connectors.sms.signing_key))
    if config.connectors.email is not None:
        refs.append(("connectors.email.password", config.connectors.email.password))
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

