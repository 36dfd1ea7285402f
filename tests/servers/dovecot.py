"""A real Dovecot IMAP server for tests, from Debian's dovecot-imapd, started unprivileged.

Each :class:`Dovecot` lives in its own temporary directory (config, passwd-file, maildirs,
sockets, log) and listens on 127.0.0.1 only. When the tests run as root (CI), the master
process is started with ``setuid`` to ``nobody`` (or ``DOVECOT_TEST_USER``), so that every
Dovecot process and every mail file belongs to an unprivileged user; when they run as an
ordinary user, Dovecot runs as that user. Dovecot supports this: all services run as the
master's user, login processes are not chrooted (``chroot =``), and the userdb gives that uid.

    with Dovecot(tls=True) as imap:
        imap.deliver(make_message("sam@example.org", "hello", "the network went down"))
        client = imaplib.IMAP4("127.0.0.1", imap.port)
        client.login(imap.user, imap.password)

Helpers: :meth:`deliver` (write into the maildir, as an MTA does), :meth:`append` (IMAP
APPEND as the user), :meth:`restart`, :meth:`change_uidvalidity` (``doveadm mailbox update``),
:meth:`recreate_mailbox` (UIDs start again at 1 under a new UIDVALIDITY),
:meth:`drop_connections` (``doveadm kick``), :meth:`flags` (read through ``doveadm``, not
IMAP, so checking for \\Seen does not itself open the mailbox read-write).
``scripts/install-dovecot.sh`` installs the package.
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from types import TracebackType

import pytest

DOVECOT = Path(os.environ.get("DOVECOT_BIN", "/usr/sbin/dovecot"))
DOVEADM = Path(os.environ.get("DOVEADM_BIN", "/usr/bin/doveadm"))
START_TIMEOUT = 20.0

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
instance_name = duress-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 1
ssl = {ssl}
{ssl_files}
disable_plaintext_auth = no
auth_mechanisms = plain login
# Fail a wrong password at once: the default 2 s delay only slows the tests.
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
# IDLE is woken by inotify; this is only the fallback re-check.
mailbox_idle_check_interval = 1 secs
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


class DovecotError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_message(sender: str, subject: str, body: str, *, to: str = "alex@example.org",
                 extra_headers: dict[str, str] | None = None) -> bytes:
    """A small RFC 5322 text message, CRLF line ends, a unique Message-ID."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="test.invalid")
    for name, value in (extra_headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


class Dovecot:
    """One Dovecot instance in a temporary directory; see the module docstring."""

    def __init__(self, *, user: str = "watcher", password: str | None = None,
                 tls: bool = False, run_as: str | None = None) -> None:
        if not DOVECOT.exists():
            raise DovecotError(f"{DOVECOT} not found: run scripts/install-dovecot.sh")
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.tls = tls
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self._as_root = os.geteuid() == 0
        account = pwd.getpwnam(run_as or os.environ.get("DOVECOT_TEST_USER", "nobody")) \
            if self._as_root else pwd.getpwuid(os.geteuid())
        self.os_user = account.pw_name
        self.uid, self.gid = account.pw_uid, account.pw_gid
        self.os_group = grp.getgrgid(self.gid).gr_name
        # Not under pytest's tmp_path: its root-only parents would shut the mail user out.
        self.root = Path(tempfile.mkdtemp(prefix="duress-dovecot-"))
        self.root.chmod(0o755)
        self.maildir = self.root / "home" / user / "Maildir"
        self.cafile: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_files()

    # ------------------------------------------------------------------ lifecycle

    def _write_files(self) -> None:
        for sub in ("run", "state", "home"):
            (self.root / sub).mkdir()
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        ssl_files = ""
        if self.tls:
            self._make_certificate()
            ssl_files = f"ssl_cert = <{self.root}/cert.pem\nssl_key = <{self.root}/key.pem"
        (self.root / "dovecot.conf").write_text(CONFIG.format(
            root=self.root, port=self.port, tls_port=self.tls_port, user=self.os_user,
            group=self.os_group, uid=self.uid, gid=self.gid,
            ssl="yes" if self.tls else "no", ssl_files=ssl_files))
        self._mkdirs(self.maildir)
        self._chown_tree(self.root)

    def _make_certificate(self) -> None:
        """A self-signed P-256 certificate for 127.0.0.1/localhost, valid one day."""
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-keyout", str(self.root / "key.pem"), "-out", str(self.root / "cert.pem")],
            check=True, capture_output=True)
        self.cafile = self.root / "cert.pem"

    def _chown_tree(self, top: Path) -> None:
        if not self._as_root:
            return
        for path in [top, *top.rglob("*")]:
            os.chown(path, self.uid, self.gid, follow_symlinks=False)

    def _mkdirs(self, maildir: Path) -> None:
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        self._chown_tree(maildir.parent if maildir == self.maildir else maildir)

    def start(self) -> Dovecot:
        if self.running:
            return self
        log = (self.root / "master.out").open("ab")
        kwargs: dict[str, object] = {}
        if self._as_root:
            kwargs = {"user": self.uid, "group": self.gid, "extra_groups": []}
        self._proc = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.root / "dovecot.conf")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.root,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.root)},
            start_new_session=True, **kwargs)  # type: ignore[call-overload]
        log.close()
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise DovecotError(f"dovecot exited ({self._proc.returncode}):\n{self.log()}")
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.settimeout(5)
                if sock.recv(200).startswith(b"* OK"):
                    return
            if time.monotonic() > deadline:
                raise DovecotError(f"dovecot not ready after {START_TIMEOUT}s:\n{self.log()}")
            time.sleep(0.05)  # waiting for the listener, with a deadline

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """Stop the master and every child; the port then refuses connections."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)  # stray imap children, if any
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def log(self) -> str:
        parts = []
        for name in ("master.out", "dovecot.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)[-4000:]

    # ------------------------------------------------------------------ mail

    def folder_path(self, folder: str = "INBOX") -> Path:
        """Maildir++ layout: INBOX is the root, ``A/B`` is ``.A.B``."""
        return self.maildir if folder == "INBOX" else self.maildir / ("." + folder.replace(
            "/", "."))

    def create_folder(self, folder: str) -> None:
        path = self.folder_path(folder)
        self._mkdirs(path)
        (path / "maildirfolder").touch()
        self._chown_tree(path)

    def deliver(self, message: bytes, folder: str = "INBOX") -> Path:
        """Deliver like an MTA: write under tmp/, then rename into new/ (atomic)."""
        path = self.folder_path(folder)
        if not path.exists():
            self.create_folder(folder)
        name = f"{time.time():.6f}.{secrets.token_hex(8)}.duress-test"
        tmp = path / "tmp" / name
        tmp.write_bytes(message)
        if self._as_root:
            os.chown(tmp, self.uid, self.gid)
        final = path / "new" / name
        os.rename(tmp, final)
        return final

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        client.login(self.user, self.password)
        return client

    def tls_client(self) -> imaplib.IMAP4_SSL:
        assert self.cafile is not None, "start with Dovecot(tls=True)"
        context = ssl.create_default_context(cafile=str(self.cafile))
        client = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=context, timeout=10)
        client.login(self.user, self.password)
        return client

    def append(self, message: bytes, folder: str = "INBOX", flags: str = "") -> int:
        """IMAP APPEND as the mailbox's user; returns the new message's UID."""
        client = self.client()
        try:
            typ, data = client.append(folder, flags or None, None, message)
            if typ != "OK":
                raise DovecotError(f"APPEND failed: {data!r}")
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            assert match is not None
            return int(match.group(1))
        finally:
            client.logout()

    # ------------------------------------------------------------------ doveadm

    def doveadm(self, *args: str) -> str:
        kwargs: dict[str, object] = {}
        if self._as_root:
            kwargs = {"user": self.uid, "group": self.gid, "extra_groups": []}
        proc = subprocess.run(
            [str(DOVEADM), "-c", str(self.root / "dovecot.conf"), *args],
            capture_output=True, text=True, cwd=self.root, check=False,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(self.root)},
            **kwargs)  # type: ignore[call-overload]
        if proc.returncode not in (0, 68):  # 68: "no users kicked" and similar
            raise DovecotError(f"doveadm {' '.join(args)}: {proc.stderr.strip()}")
        return str(proc.stdout)

    def uidvalidity(self, folder: str = "INBOX") -> int:
        out = self.doveadm("mailbox", "status", "-u", self.user, "uidvalidity", folder)
        match = re.search(r"uidvalidity=(\d+)", out)
        assert match is not None, out
        return int(match.group(1))

    def change_uidvalidity(self, folder: str = "INBOX", value: int | None = None) -> int:
        """Set a new UIDVALIDITY; messages keep their UIDs (which a client must distrust)."""
        new = value if value is not None else self.uidvalidity(folder) + 1
        self.doveadm("mailbox", "update", "-u", self.user, "--uid-validity", str(new), folder)
        return new

    def recreate_mailbox(self, folder: str = "INBOX") -> int:
        """What a rebuilt mailbox looks like: the same messages numbered again from UID 1
        under a UIDVALIDITY greater than any it had; returns the new UIDVALIDITY."""
        old = self.uidvalidity(folder)
        path = self.folder_path(folder)
        for item in path.iterdir():
            if item.name.startswith("dovecot") and item.name != "dovecot-uidvalidity" \
                    and not item.name.startswith("dovecot-uidvalidity."):
                item.unlink()
        for done in (path / "cur").iterdir():
            os.rename(done, path / "new" / done.name.split(":")[0])
        # Dovecot's counter may hand back a value an earlier change_uidvalidity() used.
        rebuilt = self.uidvalidity(folder)
        return rebuilt if rebuilt > old else self.change_uidvalidity(folder, old + 1)

    def drop_connections(self) -> None:
        """Cut every IMAP session of the user (the server stays up)."""
        self.doveadm("kick", self.user)

    def flags(self, folder: str = "INBOX") -> dict[int, set[str]]:
        out = self.doveadm("fetch", "-u", self.user, "uid flags", "mailbox", folder, "all")
        result: dict[int, set[str]] = {}
        for uid, flags in re.findall(r"uid: (\d+)\nflags: ?([^\n]*)", out):
            result[int(uid)] = set(flags.split())
        return result


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    """A fresh Dovecot (plain IMAP on loopback) per test, about 0.3 s to start."""
    with Dovecot() as server:
        yield server


@pytest.fixture
def dovecot_tls() -> Iterator[Dovecot]:
    """A fresh Dovecot with IMAPS on a self-signed certificate (``cafile`` trusts it)."""
    with Dovecot(tls=True) as server:
        yield server
