"""IMAP, read-only by construction: an allow-list on every line the client writes.

Dovecot answers OK to a STORE in a read-only (EXAMINE) session, so the watcher cannot rely
on the server refusing. Every command goes through imaplib's `send`, which is overridden
here: a line whose command is not on the allow-list, or a FETCH that is not BODY.PEEK, is
refused before a byte leaves the machine (ForbiddenCommand). Blocking (imaplib); the
connector runs it in threads of its own.

IDLE is written by hand (imaplib has it only from Python 3.14): the wait uses select() on
the socket, so a socket timeout never leaves imaplib's reader broken, and whatever wakes
the wait (new mail, a keep-alive, a closed socket), the caller re-reads from its cursor.
"""

from __future__ import annotations

import contextlib
import imaplib
import io
import re
import select
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

ALLOWED = frozenset({"CAPABILITY", "LOGIN", "STARTTLS", "EXAMINE", "UID SEARCH", "UID FETCH",
                     "IDLE", "NOOP", "LOGOUT"})
# A FETCH may only name these items: BODY[...] and RFC822 without .PEEK would set \Seen.
_FETCH_ITEMS = re.compile(
    r"^(UID|INTERNALDATE|RFC822\.SIZE|FLAGS|BODY\.PEEK\[[A-Z0-9.() \-]*\](<\d+\.\d+>)?)$",
    re.IGNORECASE)
_TAGGED = re.compile(rb"^([A-Za-z]+\d+) (UID [A-Za-z]+|[A-Za-z]+)(?: (.*))?\r\n$", re.DOTALL)
_FETCH_LIST = re.compile(r"\((.*)\)\s*$")
_IDLE_TAG = b"IDLE1"  # our own tag (letters + digits, like imaplib's)
TIMEOUT = 30.0  # seconds for any single read or write (a hung server is a dropped one)
Tls = Literal["tls", "starttls", "none"]


class ForbiddenCommand(Exception):
    """The client was asked to send something that could change the mailbox."""


class FolderMissing(Exception):
    """EXAMINE was refused: the folder does not exist (or may not be read)."""


class AuthFailed(Exception):
    """The server refused the username or password."""


def _fetch_items(args: str) -> list[str]:
    match = _FETCH_LIST.search(args)
    inner = match.group(1) if match else args.split(" ", 1)[-1]
    return re.findall(r"BODY\.PEEK\[[^\]]*\](?:<[^>]*>)?|BODY\[[^\]]*\]|\S+", inner)


def check_line(data: bytes, sent: list[str]) -> None:
    """Refuse any line that is not an allowed command (or the DONE that ends IDLE)."""
    if b"\r" in data[:-2] or b"\n" in data[:-2]:  # one line: no smuggled second command
        raise ForbiddenCommand("a command line may not contain a line break")
    if data == b"DONE\r\n":
        sent.append("DONE")
        return
    match = _TAGGED.match(data)
    if match is None:
        raise ForbiddenCommand("not a single allowed IMAP command line")
    command = match.group(2).decode("ascii").upper()
    if command not in ALLOWED:
        raise ForbiddenCommand(f"{command} is not allowed (read-only mailbox)")
    if command == "UID FETCH":
        args = (match.group(3) or b"").decode("ascii", "replace")
        items = _fetch_items(args.split(" ", 1)[1] if " " in args else "")
        bad = [i for i in items if not _FETCH_ITEMS.match(i)]
        if not items or bad:
            raise ForbiddenCommand("a FETCH may only use BODY.PEEK and read-only items")
    sent.append(command)


class _Guarded:
    """Mixed into imaplib's classes: `send` is where every byte leaves."""

    sent: list[str]

    def send(self, data: ReadableBuffer) -> None:
        check_line(bytes(data), self.sent)
        super().send(data)  # type: ignore[misc]


class _Plain(_Guarded, imaplib.IMAP4):
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.sent = []
        super().__init__(host, port, timeout=timeout)


class _Tls(_Guarded, imaplib.IMAP4_SSL):
    def __init__(self, host: str, port: int, context: ssl.SSLContext, timeout: float) -> None:
        self.sent = []
        super().__init__(host, port, ssl_context=context, timeout=timeout)


@dataclass(frozen=True)
class Folder:
    validity: int
    next_uid: int


@dataclass(frozen=True)
class Fetched:
    uid: int
    at: datetime
    size: int
    data: bytes


class ImapReader:
    """One read-only session. Every method blocks: call it from a thread."""

    def __init__(self, host: str, port: int, tls: Tls, username: str, password: str,
                 ca_file: str | None = None, timeout: float = TIMEOUT) -> None:
        context = ssl.create_default_context(cafile=ca_file)
        self.timeout = timeout
        self.imap: imaplib.IMAP4
        if tls == "tls":
            self.imap = _Tls(host, port, context, timeout)
        else:
            self.imap = _Plain(host, port, timeout)
            if tls == "starttls":
                self.imap.starttls(context)
        try:
            self.imap.login(username, password)
        except imaplib.IMAP4.error as exc:
            self.abort()
            if "UNAVAILABLE" in str(exc).upper():  # RFC 5530: the server's own trouble
                raise imaplib.IMAP4.abort("login unavailable") from None
            raise AuthFailed("login refused") from None

    @property
    def can_idle(self) -> bool:
        """The server offers IDLE (RFC 2177); without it the folder is simply polled."""
        return "IDLE" in self.imap.capabilities

    @property
    def sent(self) -> list[str]:
        return self.imap.sent  # type: ignore[no-any-return]

    def examine(self, folder: str) -> Folder:
        typ, _data = self.imap.select(_quoted(folder), readonly=True)  # EXAMINE
        if typ != "OK":
            raise FolderMissing(folder)
        validity = _number(self.imap.response("UIDVALIDITY")[1])
        next_uid = _number(self.imap.response("UIDNEXT")[1])
        return Folder(validity, next_uid)

    def uids_after(self, last: int) -> list[int]:
        typ, data = self.imap.uid("SEARCH", f"UID {last + 1}:*")
        if typ != "OK":
            raise imaplib.IMAP4.error("SEARCH refused")
        # "n:*" always includes the highest UID, even below n: filter here.
        return sorted(u for u in _ints(data) if u > last)

    def uids_since(self, day: datetime) -> list[int]:
        typ, data = self.imap.uid("SEARCH", "SINCE " + day.strftime("%d-%b-%Y"))
        if typ != "OK":
            raise imaplib.IMAP4.error("SEARCH refused")
        return sorted(_ints(data))

    def headers(self, uid: int) -> Fetched:
        """INTERNALDATE, size and the header block of one mail (no body)."""
        return self._fetch(uid, "BODY.PEEK[HEADER]")

    def message(self, uid: int, max_bytes: int) -> Fetched:
        """The first `max_bytes` of one mail (all of it when smaller)."""
        return self._fetch(uid, f"BODY.PEEK[]<0.{max_bytes}>")

    def _fetch(self, uid: int, item: str) -> Fetched:
        typ, data = self.imap.uid("FETCH", str(uid), f"(UID INTERNALDATE RFC822.SIZE {item})")
        if typ != "OK":
            raise imaplib.IMAP4.error("FETCH refused")
        for entry in data:
            if isinstance(entry, tuple) and len(entry) == 2:
                head, body = entry
                date = imaplib.Internaldate2tuple(head)
                size = re.search(rb"RFC822\.SIZE (\d+)", head)
                if date is None:
                    continue
                return Fetched(uid, datetime.fromtimestamp(time.mktime(date), UTC),
                               int(size.group(1)) if size else len(body), body)
        raise LookupError("the mail is gone")  # expunged meanwhile

    def idle(self, seconds: float) -> None:
        """Wait up to `seconds` for the server to say anything (new mail), in IDLE."""
        self.imap.send(_IDLE_TAG + b" IDLE\r\n")
        told = False  # an update sent before the "+" (mail that came in just before)
        while not (line := self.imap.readline()).startswith(b"+"):
            if not line or line.startswith(_IDLE_TAG + b" "):
                raise imaplib.IMAP4.abort("IDLE refused")
            told = True
        if not told and not self._readable():
            select.select([self.imap.sock], [], [], seconds)
        self.imap.send(b"DONE\r\n")
        while True:
            line = self.imap.readline()
            if not line:
                raise imaplib.IMAP4.abort("connection closed in IDLE")
            if line.startswith(_IDLE_TAG + b" "):
                if not line.startswith(_IDLE_TAG + b" OK"):
                    raise imaplib.IMAP4.abort("IDLE ended badly")
                return

    def _readable(self) -> bool:
        """Is a line already waiting in imaplib's buffer or TLS's, which select() cannot
        see? A non-blocking peek: it never waits and never consumes anything."""
        sock = self.imap.sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
            return True
        file = self.imap.file
        if not isinstance(file, io.BufferedReader):
            return False
        sock.settimeout(0)
        try:
            return bool(file.peek(1))
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        finally:
            sock.settimeout(self.timeout)

    def noop(self) -> None:
        self.imap.noop()

    def abort(self) -> None:
        """Close at once (also from another thread, to end an IDLE wait)."""
        with contextlib.suppress(OSError):
            self.imap.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.imap.sock.close()

    def logout(self) -> None:
        try:
            self.imap.logout()
        except (OSError, imaplib.IMAP4.error):
            self.abort()


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _number(data: list[bytes | None] | list[None]) -> int:
    for item in data:
        if item:
            return int(item.split()[0])
    raise imaplib.IMAP4.error("the server gave no UIDVALIDITY/UIDNEXT")


def _ints(data: list[bytes | None] | list[None]) -> list[int]:
    return [int(x) for item in data if item for x in item.split() if x.isdigit()]

