"""Logging that cannot leak: every line is masked and escaped at the handler.

Message text is never passed to a logger in the first place (events are logged by key).
This layer is the second line of defence, and it sits on the handler's formatter, so it
covers every logger, ours and the libraries' (httpx, apprise, telegram, websockets, atproto),
at every level, including exception tracebacks:

- secrets from the config are replaced whole, and so are the pieces of secret URLs (a
  library logs the request it makes, not the apprise URL it was given);
- any URL keeps its scheme and host only (tokens hide in paths: /bot123:ABC/, webhooks;
  in queries: ?token=; in userinfo: user:pass@);
- the ids of watched people and contacts from the config, phone numbers, UUIDs, DIDs,
  e-mail addresses and long numbers become `id#3fa2`: a hash keyed with a random key made
  at start, so lines of one run can be matched up but a number cannot be guessed back;
- newlines and control, bidi and zero-width characters are escaped: nothing a sender or a
  replay file controls can start a line of its own. Traceback lines are prefixed "  | ";
- libraries' DEBUG records are dropped: they are whole payloads (updates, posted bodies).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import sys
from collections.abc import Iterable
from typing import TextIO
from urllib.parse import unquote, urlsplit

from watcher.core.config import Config, SecretRef

MASK = "[redacted]"
MIN_PIECE = 6  # shorter pieces of a secret URL (a port, "json") are not secret on their own

_URL = re.compile(r"\b([a-z][a-z0-9+.-]{1,20}://)([^\s/?#@\"'<>]*@)?([^\s/?#\"'<>]*)"
                  r"([/?#][^\s\"'<>]*)?", re.IGNORECASE)
_BOT_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{30,}")
_IDS = re.compile(
    r"did:[a-z]+:[A-Za-z0-9._:%-]+"  # Bluesky DIDs
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"  # Signal uuids
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"  # e-mail addresses
    r"|\+\d[\d -]{5,18}\d"  # phone numbers
    r"|(?<![\w.#])-?\d{7,}(?![\w])",  # Telegram user/chat ids, Signal timestamps
    re.IGNORECASE)
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """Every character that is not printable (controls, bidi and zero-width formats, line
    and paragraph separators, unassigned ones), escaped; the plain space is kept."""
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif not char.isprintable() and char != " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return "".join(out)


def url_pieces(value: str) -> list[str]:
    """The parts of a secret URL that a library may log on their own."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return []
    pieces = [parts.username or "", parts.password or "", parts.fragment]
    pieces += [p for p in parts.path.split("/")]
    pieces += [v for pair in parts.query.split("&") for v in pair.split("=")]
    host = parts.hostname or ""
    if "@" not in parts.netloc and "." not in host and host != "localhost":
        pieces.append(host)  # tgram://TOKEN/chat: the "host" is the token, not a name
    return [p for piece in pieces for p in {piece, unquote(piece)} if len(p) >= MIN_PIECE]


class Masker:
    def __init__(self, secrets: Iterable[str] = (), ids: Iterable[str] = (),
                 key: bytes | None = None) -> None:
        values = {s for s in secrets if len(s) >= 4}
        values |= {p for s in list(values) if "://" in s for p in url_pieces(s)}
        # Longest first, so a secret that contains another is masked whole.
        self.secrets = sorted(values, key=len, reverse=True)
        self.key = key or os.urandom(16)
        variants = {v for i in ids if len(i) >= 3 for v in _variants(i)}
        words = sorted(variants, key=len, reverse=True)
        self.ids = re.compile("|".join(rf"(?<![\w]){re.escape(w)}(?![\w])" for w in words)) \
            if words else None

    def tag(self, value: str) -> str:
        digest = hmac.new(self.key, value.lstrip("+").lower().encode(), hashlib.sha256)
        return f"id#{digest.hexdigest()[:4]}"

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = _BOT_TOKEN.sub(MASK, text)
        text = _URL.sub(self._url, text)
        if self.ids is not None:
            text = self.ids.sub(lambda m: self.tag(m.group(0)), text)
        return _IDS.sub(lambda m: self.tag(m.group(0)), text)

    def _url(self, match: re.Match[str]) -> str:
        scheme, userinfo, host, rest = match.groups()
        return scheme + (MASK + "@" if userinfo else "") + host + ("/" + MASK if rest else "")


def _variants(value: str) -> set[str]:
    """The spellings an id appears in: +44… and 44…, -100123… and 123… (t.me/c links)."""
    out = {value, value.lstrip("+")}
    if value.startswith("-100"):
        out.add(value[4:])
    if value.startswith("-"):
        out.add(value[1:])
    return {v for v in out if len(v) >= 3}


class SafeFormatter(logging.Formatter):
    """Masks and escapes the whole record: message, arguments, traceback, stack."""

    def __init__(self, masker: Masker, fmt: str | None = None) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.masker = masker

    def format(self, record: logging.LogRecord) -> str:
        try:
            record.message = record.getMessage()
        except (TypeError, ValueError):  # a library's bad format string: keep the template
            record.message = str(record.msg)
        if self.usesTime():
            record.asctime = self.formatTime(record, self.datefmt)
        lines = [escape(self.masker.mask(self.formatMessage(record)))]
        extra = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        for block in (extra, record.stack_info):
            if block:
                lines.extend("  | " + escape(line)
                             for line in self.masker.mask(block).splitlines())
        return "\n".join(lines)


def sensitive(config: Config) -> tuple[list[str], list[str]]:
    """(secrets, ids) of a config: what must never appear in a log line."""
    secrets = [s for s in config.secrets.values() if s]
    ids: list[str] = []
    for person in config.people.values():
        if person.telegram:
            ids += [str(person.telegram.user_id), *map(str, person.telegram.channels)]
        if person.signal:
            ids += [person.signal.number or "", person.signal.uuid or ""]
        if person.bluesky:
            ids += [person.bluesky.handle or "", person.bluesky.did or ""]
    for contact in config.contacts.values():
        if contact.telegram:
            ids.append(str(contact.telegram.chat_id))
        if contact.signal:
            ids += [contact.signal.number or "", contact.signal.group or ""]
        secrets += [a for a in contact.apprise if not isinstance(a, SecretRef)]
    connectors = config.connectors
    if connectors.telegram:
        ids += map(str, connectors.telegram.chats)
    if connectors.signal:
        ids.append(connectors.signal.number)
    if connectors.bluesky and connectors.bluesky.login:
        ids.append(connectors.bluesky.login.handle)
    if isinstance(config.watcher.heartbeat_url, str):
        secrets.append(config.watcher.heartbeat_url)
    return secrets, [i for i in ids if i]


# Libraries that speak in URLs and tokens: masked like everything else, but only worth
# reading with --verbose.
THIRD_PARTY = ("apprise", "httpx", "httpcore", "telegram", "websockets", "atproto", "hpack")
OURS = frozenset({"watcher", "connectors", "playbooks", "detectors", "root", "__main__"})


class NoForeignDebug(logging.Filter):
    """Libraries' debug records are payloads: PTB logs every update it receives, apprise
    the body it posts (our alert, with the survivor's matched words), websockets every
    frame. No mask can find message text in them, so they are never written."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or record.name.split(".")[0] in OURS


def protect(handler: logging.Handler, secrets: Iterable[str] = (), ids: Iterable[str] = (),
            formatter: SafeFormatter | None = None) -> None:
    """Make a handler safe: masked and escaped lines, no libraries' debug payloads."""
    handler.setFormatter(formatter or SafeFormatter(Masker(secrets, ids)))
    handler.addFilter(NoForeignDebug())


def setup(verbose: bool = False, secrets: Iterable[str] = (), ids: Iterable[str] = (),
          stream: TextIO | None = None) -> SafeFormatter:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        stream=stream or sys.stderr, force=True)
    formatter = SafeFormatter(Masker(secrets, ids))
    for handler in logging.getLogger().handlers:
        protect(handler, formatter=formatter)
    for name in THIRD_PARTY:
        quiet = name in ("httpcore", "hpack")  # byte-level chatter, even for -v
        logging.getLogger(name).setLevel(
            logging.INFO if verbose and not quiet else logging.WARNING if verbose
            else logging.ERROR)
    return formatter


def ensure(config: Config) -> None:
    """For commands other than run: without a handler, Python's last-resort handler would
    print warnings raw to stderr. Install the safe one, unless the host has its own."""
    if not logging.getLogger().handlers:
        setup_for(config)


def setup_for(config: Config, verbose: bool = False, stream: TextIO | None = None
              ) -> SafeFormatter:
    secrets, ids = sensitive(config)
    return setup(verbose, secrets, ids, stream)
