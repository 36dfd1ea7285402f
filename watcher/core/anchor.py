"""The evidence log's anchor: its head, written outside the database, signed with a key
that is not in the database.

Someone who can write the database can drop the append-only triggers, rewrite the log and
recompute every hash: the chain alone then still "verifies". So after every commit that
moved the head, the watcher appends one line to a file beside the database

    <seq> <head hash> <time> <kind> <HMAC-SHA256 of the four, with the key>

and `evidence verify` compares the chain with every anchor. The file is opened O_APPEND and
never rewritten; the key lives in its own 0600 file beside the config (`watcher.evidence_key`).

What this proves and what it cannot (docs/operations.md says it for users): a person with
the database only (a copy, a backup, a process with access to that file) cannot make a
truncated, rewritten or extended log look anchored. A person with the whole disk can read
the key and write anchors too; only a head that left the machine (the digest carries it to
the contacts) survives that, as of the time it was sent.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from watcher.core.errors import WatcherError

SUFFIX = ".anchors"
KEY_BYTES = 32
KINDS = ("commit", "periodic", "start", "adopt")


class AnchorKeyError(WatcherError):
    """The key file exists but cannot be used (unreadable, not a key)."""


def anchor_path(database: Path) -> Path:
    return database.with_name(database.name + SUFFIX)


def _open_private(path: Path, flags: int) -> int:
    """Open (creating 0600) a regular file, never following a symlink planted at `path`,
    never blocking on a FIFO planted there."""
    fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(fd, 0o600)  # the key and the anchors are for their owner only
    except OSError:
        os.close(fd)
        raise
    return fd


def load_key(path: Path, create: bool) -> bytes | None:
    """The anchor key; created (0600, random) on first use when `create`; None if absent."""
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = _open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(secrets.token_hex(KEY_BYTES) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
    try:
        found = _read(path)
    except OSError as exc:
        raise AnchorKeyError(f"{path}: cannot read the evidence key ({exc.strerror})") from None
    if found is None:
        return None
    text = found[0].decode("ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise AnchorKeyError(f"{path}: not an evidence key (expected {KEY_BYTES * 2} hex "
                             "digits); move it away and a new one is made")
    return key


def _mac(key: bytes, body: str) -> str:
    return hmac.new(key, body.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class AnchorLine:
    number: int  # the line's place in the file, from 1
    seq: int  # the id of the evidence entry that was the head (0: empty log)
    head: str
    at: str
    kind: str
    valid: bool  # the HMAC is right for the key we hold


def parse(key: bytes, number: int, line: str) -> AnchorLine | None:
    parts = line.split(" ")
    if len(parts) != 5 or not parts[0].isdigit() or parts[3] not in KINDS:
        return None
    seq, head, at, kind, mac = parts
    valid = hmac.compare_digest(_mac(key, " ".join(parts[:4])), mac)
    return AnchorLine(number, int(seq), head, at, kind, valid)


def _read(path: Path, tail: int | None = None) -> tuple[bytes, int] | None:
    """(the bytes, or the last `tail` of them; the file's size); None if there is no file.
    Other errors (a directory, no permission) are raised as OSError."""
    try:
        fd = _open_private(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        if tail is not None and size > tail:
            os.lseek(fd, size - tail, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks), size
    finally:
        os.close(fd)


def read(path: Path, key: bytes) -> tuple[list[AnchorLine], list[int]]:
    """Every anchor in the file, and the numbers of the lines that are not anchors at all."""
    found_bytes = _read(path)
    if found_bytes is None:
        return [], []
    lines = found_bytes[0].decode("ascii", errors="replace").splitlines()
    found: list[AnchorLine] = []
    garbage: list[int] = []
    for number, line in enumerate(lines, start=1):
        parsed = parse(key, number, line)
        if parsed is None:
            garbage.append(number)
        else:
            found.append(parsed)
    return found, garbage


def write(path: Path, key: bytes, seq: int, head: str, at: str, kind: str) -> None:
    """Append one anchor. A lock keeps two processes' lines whole and in order.

    Not fsync'd: it follows a commit on the hot path of every alert. A process crash keeps
    the line (it is in the kernel's cache); a power cut may lose the last lines, which then
    verify as "not proven", never as tampering (the database commit was synced first)."""
    body = f"{seq} {head} {at} {kind}"
    fd = _open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, f"{body} {_mac(key, body)}\n".encode("ascii"))
    finally:
        os.close(fd)  # releases the lock


TAIL = 16_384  # bytes read from the end for the last anchor: the file only grows


def last_valid(path: Path, key: bytes) -> AnchorLine | None:
    """The last anchor signed with `key`, reading only the end of the file."""
    found_bytes = _read(path, TAIL)
    if found_bytes is None:
        return None
    data, size = found_bytes
    lines = data.decode("ascii", errors="replace").splitlines()
    if size > TAIL:
        lines = lines[1:]  # the first one may be cut
    for line in reversed(lines):
        parsed = parse(key, 0, line)
        if parsed is not None and parsed.valid:
            return parsed
    return None if size <= TAIL else _last_of_all(path, key)


def _last_of_all(path: Path, key: bytes) -> AnchorLine | None:
    valid = [a for a in read(path, key)[0] if a.valid]
    return valid[-1] if valid else None
