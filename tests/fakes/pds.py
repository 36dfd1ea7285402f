"""A real Bluesky PDS (plus an in-memory PLC directory) on loopback, for tests.

``LocalPds`` runs ``tests/pds/start-pds.mjs`` on the Node 22 that
``scripts/install-pds.sh`` puts in ``<repo>/.cache/node22``. Run that script
once first (the project's test command does).

    with LocalPds() as pds:
        did, handle = pds.create_account("survivor", "hunter22")
        client = pds.login_client(handle, "hunter22")
        client.send_post("hello")          # works: login_client fills client.me
        reader = pds.anonymous_client()    # no login: listRecords, getBlob, ...

``stop()`` then ``start()`` is an outage: the node process goes away (connection
refused) and comes back on the same ports and data directory, with every
account, record, blob and session token intact. ``freeze()``/``thaw()`` is the
other kind of outage: the process stops answering but keeps its sockets open.

For pytest, ``pds_session`` is a session-scoped fixture. Register it from
``tests/conftest.py`` with ``pytest_plugins = ["tests.fakes.pds"]`` (this also
registers the ``pds`` marker), or import it there:
``from tests.fakes.pds import pds_session  # noqa: F401``.

(PYTEST_DONT_REWRITE: test modules import this before pytest loads it as a plugin.)
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PDS_DIR = REPO_ROOT / "tests" / "pds"
START_SCRIPT = PDS_DIR / "start-pds.mjs"
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-pds.sh"
NODE = REPO_ROOT / ".cache" / "node22" / "bin" / "node"

HANDLE_DOMAIN = ".test"  # the PDS's only user domain when PDS_HOSTNAME=localhost


class PdsError(RuntimeError):
    """The local PDS could not be started or driven."""


class PdsNotInstalled(PdsError):
    """Node 22 or tests/pds/node_modules is missing."""


def free_port() -> int:
    """A loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_handle(prefix: str = "user") -> str:
    """A fresh handle such as ``survivor3f9a1c.test``.

    The PDS wants the part before ``.test`` to be 3-18 letters/digits/hyphens.
    """
    label = "".join(c for c in prefix.lower() if c.isalnum() or c == "-")[:12] or "user"
    return f"{label}{secrets.token_hex(3)}{HANDLE_DOMAIN}"


def full_handle(handle: str) -> str:
    """``survivor`` -> ``survivor.test``; a handle with a dot is kept as is."""
    return handle if "." in handle else handle + HANDLE_DOMAIN


_live: weakref.WeakSet[LocalPds] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for pds in list(_live):
        with contextlib.suppress(Exception):
            pds.stop()


class LocalPds:
    """The reference PDS and an in-memory PLC, run by Node on 127.0.0.1.

    Attributes (valid once started): ``pds_url`` and ``plc_url``
    (``http://localhost:PORT``), ``xrpc_url``, ``ws_url``
    (``ws://localhost:PORT/xrpc``, for the firehose), ``pds_port``, ``plc_port``,
    ``admin_password``, ``data_dir``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        startup_timeout: float = 60.0,
        node: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        pds_port: int | None = None,
        plc_port: int | None = None,
    ) -> None:
        """``data_dir`` from an earlier run must come with that run's two ports."""
        self._owns_data_dir = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.startup_timeout = startup_timeout
        self.node = Path(node) if node is not None else NODE
        self.extra_env = dict(env or {})
        if (pds_port is None) != (plc_port is None):
            raise ValueError("give both pds_port and plc_port, or neither")
        self.pds_port: int | None = pds_port
        self.plc_port: int | None = plc_port
        self.admin_password: str | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stdout_tail: collections.deque[str] = collections.deque(maxlen=50)

    # ---------------------------------------------------------------- lifecycle

    @property
    def pds_url(self) -> str:
        return f"http://localhost:{self._port('pds')}"

    @property
    def plc_url(self) -> str:
        return f"http://localhost:{self._port('plc')}"

    @property
    def xrpc_url(self) -> str:
        return self.pds_url + "/xrpc"

    @property
    def ws_url(self) -> str:
        return f"ws://localhost:{self._port('pds')}/xrpc"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _port(self, which: str) -> int:
        port = self.pds_port if which == "pds" else self.plc_port
        if port is None:
            raise PdsError("the local PDS has not been started")
        return port

    def start(self) -> LocalPds:
        """Start (or restart, on the same ports and data) the PDS; wait until it serves."""
        if self.running:
            return self
        if not self.node.exists() or not (PDS_DIR / "node_modules" / "@atproto" / "pds").exists():
            raise PdsNotInstalled(
                f"the local PDS is not installed ({self.node} or {PDS_DIR / 'node_modules'} "
                f"is missing): run `bash {INSTALL_SCRIPT.relative_to(REPO_ROOT)}` first"
            )
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="duress-pds-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)

        first_start = self.pds_port is None
        attempts = 3 if first_start else 1
        for attempt in range(attempts):
            if first_start:
                self.pds_port, self.plc_port = free_port(), free_port()
                while self.plc_port == self.pds_port:
                    self.plc_port = free_port()
            try:
                self._launch()
                return self
            except _PortInUse:
                if attempt == attempts - 1:
                    raise PdsError(
                        f"ports {self.pds_port}/{self.plc_port} are in use"
                        + (
                            ""
                            if first_start
                            else " (a restart must reuse them: the DID documents name them)"
                        )
                        + f"\n{self._stderr_tail()}"
                    ) from None
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        assert self.data_dir is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PDS_", "LOG_", "PLC_"))}
        env.update(self.extra_env)
        self._stderr = open(self.data_dir / "pds.log", "ab")  # noqa: SIM115 - closed in stop()
        self._stderr.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
        self._stderr.flush()
        self._lines = queue.Queue()
        began = time.monotonic()
        self._proc = subprocess.Popen(
            [
                str(self.node),
                str(START_SCRIPT),
                "--data-dir",
                str(self.data_dir),
                "--pds-port",
                str(self.pds_port),
                "--plc-port",
                str(self.plc_port),
            ],
            cwd=PDS_DIR,
            env=env,
            stdin=subprocess.PIPE,  # the script exits when this closes: no orphan if we die
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # a Ctrl-C in the terminal reaches pytest, which stops us
        )
        _live.add(self)
        self._reader = threading.Thread(
            target=self._read_stdout, name="local-pds-stdout", daemon=True
        )
        self._reader.start()

        deadline = began + self.startup_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._kill()
                raise PdsError(
                    f"the local PDS did not report ready within {self.startup_timeout:g}s\n"
                    f"{self._stderr_tail()}"
                )
            try:
                line = self._lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:  # stdout closed: the process ended
                code = self._proc.wait()
                self._close_files()
                raise PdsError(
                    f"the local PDS exited with code {code} before it was ready\n"
                    + self._stderr_tail()
                )
            event = _parse_event(line)
            if event is None:
                continue
            if event.get("event") == "ready":
                self.admin_password = event.get("adminPassword")
                self.startup_seconds = time.monotonic() - began
                return
            if event.get("event") == "error":
                self._proc.wait(timeout=10)
                self._close_files()
                if event.get("code") == "EADDRINUSE":
                    raise _PortInUse
                raise PdsError(
                    f"the local PDS failed to start: {event.get('message')}\n{self._stderr_tail()}"
                )

    def _read_stdout(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        lines = self._lines
        for raw in proc.stdout:
            text = raw.decode("utf-8", "replace").rstrip("\n")
            self._stdout_tail.append(text)
            lines.put(text)
        lines.put(None)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node process (PDS and PLC). Data, ports and secrets are kept for start()."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()  # the script shuts down gracefully on EOF ...
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGCONT)  # in case it was frozen
                proc.terminate()  # ... and on SIGTERM
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill()
        self._close_files()
        self._proc = None
        _live.discard(self)

    def restart(self) -> LocalPds:
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and delete the data directory if this object created it."""
        self.stop()
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
            self.pds_port = self.plc_port = None

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted by the kernel but never answered (a hung server)."""
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        if self.running and self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)

    def rss_bytes(self) -> int | None:
        """Resident memory of the node process, from /proc."""
        if not self.running:
            return None
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return None

    def _kill(self) -> None:
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # its own group (start_new_session)
        with contextlib.suppress(Exception):
            proc.wait(timeout=5)
        self._close_files()

    def _close_files(self) -> None:
        proc = self._proc
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                with contextlib.suppress(Exception):
                    if stream is not None:
                        stream.close()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2)
        if self._stderr is not None:
            with contextlib.suppress(Exception):
                self._stderr.close()
            self._stderr = None

    def _stderr_tail(self, lines: int = 40) -> str:
        if self.data_dir is None:
            return ""
        try:
            text = (self.data_dir / "pds.log").read_text(errors="replace")
        except OSError:
            return ""
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- stderr of start-pds.mjs ({self.data_dir / 'pds.log'}) ---\n{tail}"

    def __enter__(self) -> LocalPds:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LocalPds {state} pds={self.pds_port} plc={self.plc_port} data={self.data_dir}>"

    # ------------------------------------------------------------------ helpers

    def anonymous_client(self, timeout: float | None = None) -> Any:
        """An ``atproto.Client`` on this PDS with no session (public reads only)."""
        from atproto import Client, Request

        request = Request(timeout=timeout) if timeout is not None else None
        return Client(base_url=self.xrpc_url, request=request)

    def create_account(
        self, handle: str, password: str, email: str | None = None
    ) -> tuple[str, str]:
        """Create an account; returns ``(did, handle)``. ``"alice"`` becomes ``"alice.test"``."""
        from atproto import models

        handle = full_handle(handle)
        email = email or f"{handle.split('.')[0]}@example.com"
        response = self.anonymous_client().com.atproto.server.create_account(
            models.ComAtprotoServerCreateAccount.Data(handle=handle, password=password, email=email)
        )
        return response.did, response.handle

    def login_client(self, identifier: str, password: str) -> Any:
        """An authenticated ``atproto.Client`` for an account on this PDS.

        Logs in with ``fetch_bsky_profile=False`` (a bare PDS has no AppView), and
        then sets ``client.me`` to a stub profile with the session's DID and
        handle, because the SDK's helpers (``send_post``, ``like``, ``repost``,
        ``follow``, ...) read the repo DID from ``client.me``.
        """
        from atproto import Client, models

        client = Client(base_url=self.xrpc_url)
        identifier = identifier if identifier.startswith("did:") else full_handle(identifier)
        client.login(identifier, password, fetch_bsky_profile=False)
        session = client._session  # the SDK keeps it here; no public accessor in 0.0.73
        assert session is not None
        client.me = models.AppBskyActorDefs.ProfileViewDetailed(
            did=session.did, handle=session.handle
        )
        return client

    def new_account(
        self, prefix: str = "user", password: str | None = None
    ) -> tuple[Any, str, str]:
        """Create a fresh uniquely named account and log in: ``(client, did, handle)``."""
        password = password or secrets.token_urlsafe(12)
        did, handle = self.create_account(unique_handle(prefix), password)
        return self.login_client(handle, password), did, handle


    def takedown(self, did: str, applied: bool = True) -> None:
        """A moderator takes the account down (or restores it): the admin API
        com.atproto.admin.updateSubjectStatus with the PDS's admin password. The PDS then
        reports it inactive ("takendown") and emits an #account event."""
        import httpx

        response = httpx.post(
            f"{self.xrpc_url}/com.atproto.admin.updateSubjectStatus",
            auth=("admin", self.admin_password or ""), timeout=10,
            json={"subject": {"$type": "com.atproto.admin.defs#repoRef", "did": did},
                  "takedown": {"applied": applied, "ref": "test-takedown"}})
        if response.status_code != 200:
            raise PdsError(f"takedown failed: HTTP {response.status_code}")


class _PortInUse(Exception):
    pass


def _parse_event(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# ------------------------------------------------------------------- pytest


def pytest_configure(config: pytest.Config) -> None:
    """Registers the ``pds`` marker when this module is loaded as a plugin."""
    config.addinivalue_line(
        "markers", "pds: needs the local Bluesky PDS (deselect with -m 'not pds')"
    )


_shared: LocalPds | None = None
_shared_users = 0


@pytest.fixture(scope="session")
def pds_session() -> Iterator[LocalPds]:
    """One local PDS for the whole test session (about 3 s and 230 MB to start).

    The instance is shared even if the fixture is registered twice (a conftest
    plugin and a module import), so there is never more than one node process.
    """
    global _shared, _shared_users
    if _shared is None:
        _shared = LocalPds().start()
    _shared_users += 1
    try:
        yield _shared
    finally:
        _shared_users -= 1
        if _shared_users == 0:
            _shared.close()
            _shared = None


@pytest.fixture
def pds(pds_session: LocalPds) -> LocalPds:
    """The session's PDS, restarted or thawed first if an earlier test left it down."""
    pds_session.thaw()
    if not pds_session.running:
        pds_session.start()
    return pds_session
