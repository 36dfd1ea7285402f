"""E-mail end to end: a mail delivered into a real Dovecot's maildir -> incident stored.

N code uses, one at a time, through the real App (imaplib in IDLE, EXAMINE, BODY.PEEK,
translation, detection, storage) against a real Dovecot (tests/servers/dovecot.py, IDLE woken
by inotify) on loopback. The clock starts just before the mail is written into the maildir
(tmp/ then rename into new/, as an MTA delivers); the watcher's incident is seen by reading the
store every 2 ms, so its figures carry up to 2 ms of that resolution. Beside it, the floor: a
bare imaplib session in IDLE on the same folder that notices the delivery (`* n EXISTS`), and
the same plus ending IDLE and fetching the new mail with BODY.PEEK[] (the least a reader must do
before it can know what a mail says).

Dovecot tells an IDLE session of a change 500 ms after inotify sees it (NOTIFY_DELAY_MSECS in
its mailbox-watch.c), so the IDLE path cannot be quicker than that. Each mail is therefore
delivered `--gap` seconds after the previous one was handled, once the reader is back in IDLE
(the same for the floor); with `--gap 0` a mail often lands while the watcher is still catching
up after the previous one and is found without waiting for IDLE, which measures something else.
Needs Dovecot (scripts/install-dovecot.sh).
Run: .venv/bin/python benchmarks/email_latency.py [--mails 200] [--gap 0.3]
"""

from __future__ import annotations

import argparse
import asyncio
import imaplib
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import header, percentile  # noqa: E402
from tests.servers.dovecot import Dovecot, make_message  # noqa: E402
from watcher.app import App  # noqa: E402
from watcher.core.config import load  # noqa: E402

SAM = "sam@example.org"
CODE = "the network went down at work"
RESOLUTION = 0.002  # seconds between two reads of the store
CONFIG = """
[watcher]
database = "bench.db"
[people.sam]
name = "Sam"
email = {{ addresses = ["{sam}"] }}
[contacts.alex]
name = "Alex"
console = true
[codes.code]
person = "sam"
phrase = ["{code}"]
playbook = "p"
[playbooks.p]
steps = [ {{ notify = ["alex"], message = "{{person}} used the code ({{incident}})" }} ]
[connectors.email]
host = "127.0.0.1"
port = {port}
tls = "none"
username = "{user}"
password = {{ env = "IMAP_PASSWORD" }}
poll_interval = "300s"
idle = true
"""


def mail(n: int) -> bytes:
    return make_message(SAM, f"hello ({n})", f"Hi Alex, {CODE}. Sam ({n})")


def incidents(app: App) -> int:
    return int(app.store.conn.execute("SELECT count(*) FROM incidents").fetchone()[0])


async def stored_after(app: App, before: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while incidents(app) <= before:
        if time.monotonic() > deadline:
            raise RuntimeError("no incident stored for a delivered code")
        await asyncio.sleep(RESOLUTION)


async def watcher_run(server: Dovecot, mails: int, gap: float) -> list[float]:
    folder = Path(tempfile.mkdtemp())
    (folder / "config.toml").write_text(CONFIG.format(
        sam=SAM, code=CODE, port=server.port, user=server.user))
    app = App(load(folder / "config.toml", environ={"IMAP_PASSWORD": server.password}),
              stdout=io.StringIO())
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    try:
        deadline = time.monotonic() + 30
        while app.store.cursor("email:INBOX") is None:  # the baseline, before any mail
            if time.monotonic() > deadline:
                raise RuntimeError("the e-mail connector did not start")
            await asyncio.sleep(0.02)
        server.deliver(mail(-1))  # warm-up, untimed: the session is then in IDLE
        await stored_after(app, 0)
        latencies = []
        for n in range(mails):
            await asyncio.sleep(gap)  # let the session go back into IDLE (see the docstring)
            before = incidents(app)
            start = time.monotonic()
            server.deliver(mail(n))
            await stored_after(app, before)
            latencies.append((time.monotonic() - start) * 1000)
        if incidents(app) != mails + 1:
            raise RuntimeError(f"{incidents(app)} incidents for {mails + 1} code uses")
    finally:
        stop.set()
        await task
        await app.aclose()
        shutil.rmtree(folder, ignore_errors=True)
    return latencies


def _until(client: imaplib.IMAP4, wanted: bytes, *, start: bool = False) -> bytes:
    """Read lines until one contains `wanted` (or, with `start`, begins with it)."""
    while True:
        line = client.readline()
        if not line:
            raise RuntimeError("the IMAP connection closed")
        if line.startswith(wanted) if start else wanted in line:
            return line


def floor_run(server: Dovecot, mails: int, gap: float) -> tuple[list[float], list[float]]:
    """A bare imaplib reader: EXAMINE, IDLE until EXISTS, DONE, fetch the new mail."""
    client = server.client()
    client.select("INBOX", readonly=True)  # EXAMINE: nothing is changed
    noticed: list[float] = []
    fetched: list[float] = []
    try:
        for n in range(-1, mails):  # -1: warm-up, untimed
            client.send(b"B1 IDLE\r\n")
            _until(client, b"+", start=True)
            time.sleep(gap)  # in IDLE as long as the watcher is given
            start = time.monotonic()
            server.deliver(mail(n))
            line = _until(client, b" EXISTS")
            seen = time.monotonic()
            client.send(b"DONE\r\n")
            _until(client, b"B1 ", start=True)
            number = line.split()[1].decode()
            status, _ = client.fetch(number, "(BODY.PEEK[])")
            if status != "OK":
                raise RuntimeError("the floor could not fetch the mail")
            if n >= 0:
                noticed.append((seen - start) * 1000)
                fetched.append((time.monotonic() - start) * 1000)
    finally:
        client.logout()
    return noticed, fetched


def line(name: str, values: list[float]) -> str:
    return (f"{name:>24}: p50 {percentile(values, 50):7.1f} ms  p99 "
            f"{percentile(values, 99):7.1f} ms  max {max(values):7.1f} ms")


async def main(mails: int, gap: float) -> None:
    print(header(f"E-mail: delivered into Dovecot (IDLE) -> incident stored, {mails} mails "
                 f"{gap:g} s apart, on loopback"))
    with Dovecot() as server:
        ours = await watcher_run(server, mails, gap)
    with Dovecot() as server:
        noticed, fetched = floor_run(server, mails, gap)
    print(line("watcher: stored", ours))
    print(line("floor: EXISTS noticed", noticed))
    print(line("floor: noticed + fetched", fetched))
    p50 = percentile(ours, 50) / percentile(fetched, 50)
    p99 = percentile(ours, 99) / percentile(fetched, 99)
    print(f"ratio stored/fetched floor: p50 {p50:.2f}x  p99 {p99:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.3,
                        help="seconds between a mail handled and the next delivered")
    args = parser.parse_args()
    asyncio.run(main(args.mails, args.gap))
