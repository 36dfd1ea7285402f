"""The config schema: typed models for every TOML section, parsed strictly.

Unknown keys are errors (extra="forbid"): a typo must never silently drop a contact.
The loader (watcher/core/config.py) turns pydantic's errors into TOML key paths; the
cross-checks (watcher/core/config_checks.py) validate what one section says about another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from watcher.core.errors import WatcherError

PLATFORMS = ("replay", "telegram", "signal", "bluesky", "sms", "email")
LIVE_PLATFORMS = PLATFORMS[1:]  # the ones a person has an identity on (not replay files)
TEMPLATE_FIELDS = frozenset(
    {"person", "code", "time", "date", "link", "matched", "platform", "incident", "acker",
     "contact", "drill"}
)


class ConfigError(WatcherError):
    """One or more problems in the config; each line names a TOML key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems), permanent=True)
        self.problems = problems


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
    item_timeout: str = "30s"
    heartbeat_url: str | SecretRef | None = None
    heartbeat_every: str = "5m"
    digest: Literal["off", "daily", "weekly"] = "off"
    keep_seen: str = "90d"
    evidence_key: str = "evidence.key"


class TelegramPerson(_Strict):
    user_id: int
    channels: list[int] = Field(default_factory=list)


class SignalPerson(_Strict):
    number: str | None = None
    uuid: str | None = None


class BlueskyPerson(_Strict):
    handle: str | None = None
    did: str | None = None


class SmsPerson(_Strict):
    # i15-sms: the person's own numbers; a text from one of them is their event. `region`
    # (ISO country, e.g. "GB") reads numbers written in local form, as the network may send.
    numbers: list[str] = Field(min_length=1)
    region: str | None = None


class EmailPerson(_Strict):
    # i15-email: only mail From one of these is the person's (the From header can be
    # forged: `require_auth` asks the receiving server's Authentication-Results for a pass).
    addresses: list[str] = Field(min_length=1)
    require_auth: bool | None = None


class Person(_Strict):
    name: str
    timezone: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    telegram: TelegramPerson | None = None
    signal: SignalPerson | None = None
    bluesky: BlueskyPerson | None = None
    sms: SmsPerson | None = None
    email: EmailPerson | None = None
    # Other addresses of the person (e-mail, phone numbers): nothing is ever sent there.
    addresses: list[str] = Field(default_factory=list)


class TelegramContact(_Strict):
    chat_id: int


class SignalContact(_Strict):
    number: str | None = None
    group: str | None = None
    # i13-act: the contact's own Signal uuid, how the watcher knows their messages (a
    # number can be hidden); needed with `group`, optional with `number`.
    uuid: str | None = None


class SmsContact(_Strict):
    number: str  # i15-sms: alerts by text, and the number their replies (acks) come from


class Contact(_Strict):
    name: str
    fields: dict[str, str] = Field(default_factory=dict)
    console: bool = False
    telegram: TelegramContact | None = None
    signal: SignalContact | None = None
    apprise: list[str | SecretRef] = Field(default_factory=list)
    sms: SmsContact | None = None


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
    platforms: list[Literal["replay", "telegram", "signal", "bluesky", "sms", "email"]] | None = (
        None)
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
    # i20-languages: also compare through a chat transliteration to Latin (Greeklish,
    # translit, Arabizi, Hinglish, pinyin). Off by default: see docs/configuration.md.
    transliterated: bool = False
    negations: list[str] = Field(default_factory=list, alias="not")
    # Phrase codes may also look for their phrase in the text inside posted images (OCR,
    # detectors/image_text.py); opt-in because one photo's OCR peaks above the 300 MB a
    # single image may cost (docs/configuration.md). Ignored by other kinds of code.
    in_images: bool = False
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
    access_check_interval: str = "5m"
    local_mode: bool = False


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


class SmsConnector(_Strict):
    """i15-sms: SMS Gateway for Android on a contact's phone (docs/sms.md)."""

    url: str  # the phone's local server, e.g. http://192.168.1.20:8080
    username: str = "sms"
    password: SecretRef
    signing_key: SecretRef  # the app's Settings > Webhooks > Signing Key
    listen: str = "127.0.0.1:8471"  # host:port of the webhook listener
    webhook_path: str = "/hooks/sms"
    webhook_url: str | None = None  # registered on the phone at start when given
    region: str | None = None  # default country for numbers in local form (contacts' replies)
    owner: str | None = None  # the contact whose phone runs the app (named in blind alerts)
    poll_interval: str = "5m"  # gap fill from the phone's inbox
    health_interval: str = "1m"
    stale_after: str = "2h"  # the phone unreachable this long: a blind watch


class EmailConnector(_Strict):
    # i15-email: an IMAP mailbox, read-only (docs/email.md).
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)
    tls: Literal["tls", "starttls", "none"] = "tls"
    ca_file: str | None = None
    username: str
    password: SecretRef
    folders: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    poll_interval: str = "60s"
    idle: bool = True
    max_message_bytes: int = Field(default=10_000_000, gt=0)
    require_auth: bool = False
    authserv_id: str | None = None


class Connectors(_Strict):
    replay: ReplayConnector | None = None
    telegram: TelegramConnector | None = None
    signal: SignalConnector | None = None
    bluesky: BlueskyConnector | None = None
    sms: SmsConnector | None = None
    email: EmailConnector | None = None


class WebSection(_Strict):
    """i14-web: the contacts' page (watcher/web/), served by the watcher process itself."""

    listen: str = "127.0.0.1:8470"
    public_url: str | None = None
    # Past messages (event files or Telegram exports) the enrolment page tries phrases on.
    history: list[str] = Field(default_factory=list)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ValueError(f'"{value}" is not HOST:PORT; write it like "127.0.0.1:8470"')
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s?#]+(/[^\s?#]*)?$", value):
            raise ValueError(f'"{value}" is not an http(s) address; write it like '
                             '"https://watcher.example.net" (no query, no #)')
        return value.rstrip("/")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


# The actor recorded for the person at the watcher's own machine (`watcher ack`).
OPERATOR = "operator"
OPERATOR_NAME = "the operator at the watcher"


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
    web: WebSection | None = None  # i14-web: [web] present = the contacts' page is served

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

    def actor_name(self, key: str) -> str:
        """How a contact, or the operator at the watcher's own machine, is named in messages
        and on the page (a key no longer in the config is shown as it was recorded)."""
        if key == OPERATOR and key not in self.contacts:
            return OPERATOR_NAME
        found = self.contacts.get(key)
        return found.name if found else key

    def person_zone(self, person: str) -> ZoneInfo:
        return ZoneInfo(self.people[person].timezone or self.watcher.timezone)

    def image_paths(self, code: str) -> list[Path]:
        return [self.resolve(p) for p in self.codes[code].image or []]


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
    if contact.sms:
        out.append(("sms", contact.sms.number))
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
    if contact.sms and config.connectors.sms:
        found.append("sms")
    if contact.apprise:
        found.append("apprise")
    return found
