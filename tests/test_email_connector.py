"""The e-mail connector end to end: the real App and imaplib against a real Dovecot
(tests/servers/dovecot.py), mail delivered into its maildir as an MTA would. Nothing of
our own is mocked. Every test ends with the silence check: no flag set, nothing moved."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import pytest

from connectors.email.client import ALLOWED, ForbiddenCommand, ImapReader
from connectors.email.connector import AUTH_PROBLEM, EmailConnector
from tests.conftest import eventually as until
from tests.conftest import write_config
from tests.servers.dovecot import Dovecot, dovecot, dovecot_tls, free_port, make_message
from watcher.app import App
from watcher.core.config import load

__all__ = ["dovecot", "dovecot_tls"]  # the fixtures, imported to be found by pytest
pytestmark = pytest.mark.timeout(90)

SAM = "sam@example.org"
CODE = "the network went down at work"


def email_config(server: Dovecot, *, poll: str = "300s", idle: bool = True,
                 port: int | None = None, extra: str = "") -> str:
    return f"""
    [connectors.email]
    host = "127.0.0.1"
    port = {port or server.port}
    tls = "none"
    username = "{server.user}"
    password = {{ env = "IMAP_PASSWORD" }}
    poll_interval = "{poll}"
    idle = {"true" if idle else "false"}
    {extra}

    [people.sam.email]
    addresses = ["{SAM}"]
    """


class Rig:
    """An App on its own database, running as in `watcher run`."""

    def __init__(self, folder: Path, config_text: str, password: str,
                 db: Path | None = None) -> None:
        self.config = load(write_config(folder, extra=config_text),
                           environ={"IMAP_PASSWORD": password})
        self.out = io.StringIO()
        self.stop_event = asyncio.Event()
        self.app = App(self.config, database=db or folder / "w.db", stdout=self.out)
        self.task = asyncio.create_task(self.app.run(stop=self.stop_event))

    @property
    def connector(self) -> EmailConnector:
        found = [c for c in self.app.connectors if isinstance(c, EmailConnector)]
        return found[0]

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)
        await self.app.aclose()

    def matched(self) -> list[str]:
        rows = self.app.store.conn.execute("SELECT event_key FROM matches ORDER BY id")
        return [str(r[0]) for r in rows.fetchall()]

    def events(self) -> int:
        rows = self.app.store.conn.execute(
            "SELECT count(*) FROM seen_events WHERE key LIKE 'email:%'").fetchone()
        return int(rows[0])

    def health(self) -> dict[str, Any]:
        return next((h for h in self.app.store.health() if h["feed"] == "sam/email"), {})

    async def watching(self) -> None:
        await until(lambda: self.app.store.cursor("email:INBOX") is not None, "the baseline")
        await until(lambda: self.connector.readers, "a session")


def old(path: Path, days: int = 2) -> None:
    """Make a delivered mail look as old as it is meant to be (INTERNALDATE is its mtime)."""
    stamp = time.time() - days * 86400
    os.utime(path, (stamp, stamp))


def assert_silent(server: Dovecot, delivered: int) -> None:
    """No flag on any mail, nothing moved or deleted; read through doveadm, not IMAP."""
    flags = set_flags(server)
    assert len(flags) == delivered and all(f == set() for f in flags.values()), flags
    assert len(names(server)) == delivered
    assert sorted(p.name for p in server.maildir.iterdir() if p.name.startswith(".")) == []


def set_flags(server: Dovecot) -> dict[int, set[str]]:
    """Flags a client could have set: \\Recent is the server's own (RFC 3501 2.3.2), kept
    by a read-only session rather than cleared."""
    return {uid: flags - {"\\Recent"} for uid, flags in server.flags().items()}


def names(server: Dovecot) -> set[str]:
    return {p.name.split(":")[0] for sub in ("new", "cur")
            for p in (server.maildir / sub).iterdir()}


def mail_with(sender: str = SAM, *, body: str = CODE, subject: str = "hi",
              html: str | None = None, image: bytes | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "alex@example.org", subject
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain="test.invalid")
    if html is not None and not body:
        msg.set_content(html, subtype="html")
    else:
        msg.set_content(body)
    if image is not None:
        msg.add_attachment(image, maintype="image", subtype="jpeg", filename="big.jpg")
    return msg.as_bytes()


# ------------------------------------------------------------------------------ alerts


async def test_idle_wakes_on_a_code_and_only_sams_new_unquoted_mail_fires(
        tmp_path: Path, dovecot: Dovecot, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    old(dovecot.deliver(make_message(SAM, "before", CODE)))  # already there: never fires
    rig = Rig(tmp_path, email_config(dovecot), dovecot.password)
    try:
        await rig.watching()
        # A poll interval of 5 minutes: only IDLE can bring these in within the test.
        dovecot.deliver(make_message("mallory@example.net", "hi", CODE))  # a stranger
        dovecot.deliver(make_message(SAM, "Re: hi", f"Sure.\n\n> {CODE}\n"))
        dovecot.deliver(make_message(
            SAM, "hi", f"ok\n\nOn Mon, 7 Dec 2026, Alex <alex@example.org> wrote:\n{CODE}"))
        dovecot.deliver(mail_with(html=f"<p>Hello</p><p>{CODE}</p>", body=""))
        await until(lambda: rig.events() == 3, "Sam's three mails")
        assert len(rig.matched()) == 1  # the HTML-only one; quotes and strangers do not fire
        dovecot.deliver(make_message(SAM, "hello", f"Hi Alex, {CODE}. Sam"))
        await until(lambda: len(rig.matched()) == 2, "the plain mail")
        await until(lambda: "Sam used the 'network-down' code" in rig.out.getvalue())
        assert rig.health().get("failures", 0) == 0
    finally:
        await rig.stop()
    sent = rig.connector.sent  # every command of every session, once each was closed
    assert {"EXAMINE", "UID SEARCH", "UID FETCH", "IDLE", "DONE"} <= set(sent)
    assert set(sent) <= ALLOWED | {"DONE"}
    assert_silent(dovecot, 6)
    assert CODE not in caplog.text and SAM not in caplog.text  # NO LEAK


async def test_dropped_connection_and_restart_lose_nothing(tmp_path: Path,
                                                           dovecot: Dovecot) -> None:
    rig = Rig(tmp_path, email_config(dovecot, poll="2s"), dovecot.password)
    try:
        await rig.watching()
        dovecot.drop_connections()
        dovecot.deliver(make_message(SAM, "one", CODE))
        await until(lambda: len(rig.matched()) == 1, "the mail after the kick")
        dovecot.stop()
        dovecot.deliver(make_message(SAM, "two", CODE))  # arrives while IMAP is down
        await until(lambda: rig.health().get("failures", 0) > 0, "the outage noticed")
        assert "unreachable" in rig.health()["detail"]
        assert not rig.health().get("permanent")
        dovecot.start()
        await until(lambda: len(rig.matched()) == 2, "the mail from the outage")
        await until(lambda: rig.health().get("failures", 1) == 0, "the watch restored")
    finally:
        await rig.stop()
    assert_silent(dovecot, 2)


@pytest.mark.parametrize("rebuild", ["renumbered", "same-uids"])
async def test_a_uidvalidity_change_fires_new_mail_only(tmp_path: Path, dovecot: Dovecot,
                                                        rebuild: str) -> None:
    old(dovecot.deliver(make_message(SAM, "long ago", CODE)))
    config = email_config(dovecot, poll="1s", idle=False)
    rig = Rig(tmp_path, config, dovecot.password)
    try:
        await rig.watching()
        dovecot.deliver(make_message(SAM, "seen", CODE))
        await until(lambda: len(rig.matched()) == 1)
    finally:
        await rig.stop()
    if rebuild == "renumbered":
        dovecot.recreate_mailbox()
    else:
        dovecot.change_uidvalidity()
    dovecot.deliver(make_message(SAM, "after the rebuild", CODE))
    rig = Rig(tmp_path, config, dovecot.password)
    try:
        await until(lambda: len(rig.matched()) == 2, "the new mail")
        cursor = rig.app.store.cursor("email:INBOX")
        assert cursor is not None and cursor.split(":")[0] == str(dovecot.uidvalidity())
        dovecot.deliver(make_message(SAM, "later still", CODE))  # and the new UIDs work
        await until(lambda: len(rig.matched()) == 3)
        assert rig.events() == 3  # the old mail never fired, the seen one not twice
    finally:
        await rig.stop()
    assert_silent(dovecot, 4)


async def test_a_20_mb_attachment_is_not_checked_but_the_text_still_fires(
        tmp_path: Path, dovecot: Dovecot) -> None:
    raw = mail_with(body=CODE, image=b"\xff\xd8\xff\xe0" + os.urandom(20_000_000))
    config = email_config(dovecot, poll="1s", idle=False, extra="max_message_bytes = 2000000")
    rig = Rig(tmp_path, config, dovecot.password)
    try:
        await rig.watching()
        tracemalloc.start()  # counts what is allocated from here on, in every thread
        try:
            dovecot.deliver(raw)
            await until(lambda: len(rig.matched()) == 1, "the code in the text")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 25_000_000  # the 27 MB (base64) mail was never held whole
        # The image is recorded as not checked (told to the contacts), not passed as clean.
        [row] = await until(lambda: rig.app.store.unchecked(), "the image recorded unchecked")
        assert row["platform"] == "email" and "flower" in row["reason"]
    finally:
        await rig.stop()
    assert_silent(dovecot, 1)


async def test_malformed_mime_never_stops_the_folder(tmp_path: Path, dovecot: Dovecot) -> None:
    rig = Rig(tmp_path, email_config(dovecot, poll="1s", idle=False), dovecot.password)
    hostile = [
        b"\xff\xfe\x00garbage with no headers at all\r\n",
        f"From: {SAM}\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
        f"Content-Type: text/plain; charset=x-nonsense\r\nContent-Transfer-Encoding: "
        f"base64\r\n\r\n!!!{CODE}\r\n".encode(),  # never closed, bad base64
        f"From: =?x?Q?bad?= <{SAM}>\r\nSubject: =?utf-8?B?!!?=\r\n\r\n".encode()
        + b"\x80\x81\x82" * 1000,
        f"From: {SAM}\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n".encode()
        + b"--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n" * 500,
    ]
    try:
        await rig.watching()
        for raw in hostile:
            dovecot.deliver(raw)
        dovecot.deliver(make_message(SAM, "fine", CODE))
        await until(lambda: len(rig.matched()) >= 1, "the good mail after the bad ones")
        assert rig.events() == 4  # the three hostile ones of Sam's are stored, not lost
        assert rig.health().get("failures", 0) == 0
    finally:
        await rig.stop()
    assert_silent(dovecot, 5)


# ---------------------------------------------------------------------------- failures


async def test_a_missing_folder_is_a_blind_spot_and_the_others_are_still_read(
        tmp_path: Path, dovecot: Dovecot) -> None:
    config = email_config(dovecot, poll="1s", extra='folders = ["INBOX", "Spam"]')
    rig = Rig(tmp_path, config, dovecot.password)
    try:
        await until(lambda: rig.health().get("permanent"), "the missing folder reported")
        assert "Spam" in rig.health()["detail"] and "does not exist" in rig.health()["detail"]
        await rig.watching()
        dovecot.deliver(make_message(SAM, "hi", CODE))
        await until(lambda: len(rig.matched()) == 1, "the mail in INBOX")
        dovecot.create_folder("Spam")  # created later (or the typo fixed): watched again
        await until(lambda: rig.app.store.cursor("email:Spam") is not None, "Spam's baseline")
        await until(lambda: rig.health().get("failures", 1) == 0, "the watch restored")
        dovecot.deliver(make_message(SAM, "hi again", CODE), folder="Spam")
        await until(lambda: len(rig.matched()) == 2, "the mail in Spam")
    finally:
        await rig.stop()


async def test_a_wrong_password_is_a_permanent_blind_watch(tmp_path: Path,
                                                           dovecot: Dovecot) -> None:
    rig = Rig(tmp_path, email_config(dovecot), "not-the-password")
    try:
        await until(lambda: rig.health().get("failures", 0) > 0, "the failure reported")
        assert rig.health()["detail"] == AUTH_PROBLEM
        assert rig.health()["permanent"]
    finally:
        await rig.stop()


async def test_an_unreachable_server_is_a_temporary_failure(tmp_path: Path,
                                                            dovecot: Dovecot) -> None:
    rig = Rig(tmp_path, email_config(dovecot, port=free_port()), dovecot.password)
    try:
        await until(lambda: rig.health().get("failures", 0) > 0, "the failure reported")
        assert "unreachable" in rig.health()["detail"]
        assert "password" not in rig.health()["detail"]
        assert not rig.health()["permanent"]
    finally:
        await rig.stop()


@pytest.mark.parametrize("mode", ["tls", "starttls"])
async def test_tls_with_the_servers_own_certificate(tmp_path: Path, dovecot_tls: Dovecot,
                                                    mode: str) -> None:
    assert dovecot_tls.cafile is not None
    port = dovecot_tls.tls_port if mode == "tls" else dovecot_tls.port
    text = email_config(dovecot_tls, port=port).replace(
        'tls = "none"', f'tls = "{mode}"\n    ca_file = "{dovecot_tls.cafile}"')
    rig = Rig(tmp_path, text.replace('"127.0.0.1"', '"localhost"'), dovecot_tls.password)
    try:
        await rig.watching()
        dovecot_tls.deliver(make_message(SAM, "hi", CODE))
        await until(lambda: len(rig.matched()) == 1)
    finally:
        await rig.stop()
    if mode == "starttls":
        assert "STARTTLS" in rig.connector.sent  # before LOGIN: no password in clear
        assert rig.connector.sent.index("STARTTLS") < rig.connector.sent.index("LOGIN")
    untrusted = email_config(dovecot_tls, port=port).replace('tls = "none"', f'tls = "{mode}"')
    rig = Rig(tmp_path / "b", untrusted, dovecot_tls.password)
    try:
        await until(lambda: rig.health().get("failures", 0) > 0)
        assert "certificate" in rig.health()["detail"]
    finally:
        await rig.stop()


# ----------------------------------------------------------------------------- silence


def test_the_client_cannot_send_a_write(dovecot: Dovecot) -> None:
    uid = dovecot.append(make_message(SAM, "hi", CODE))
    reader = ImapReader("127.0.0.1", dovecot.port, "none", dovecot.user, dovecot.password)
    try:
        reader.examine("INBOX")
        attempts: list[Callable[[], object]] = [
            lambda: reader.imap.uid("STORE", str(uid), "+FLAGS", "(\\Seen)"),
            lambda: reader.imap.store("1", "+FLAGS", "(\\Deleted)"),
            lambda: reader.imap.uid("FETCH", str(uid), "(BODY[])"),
            lambda: reader.imap.uid("FETCH", str(uid), "(RFC822)"),
            lambda: reader.imap.uid("FETCH", str(uid), "(BODY.PEEK[] BODY[TEXT])"),
            lambda: reader.imap.uid("COPY", str(uid), "Trash"),
            lambda: reader.imap.uid("MOVE", str(uid), "Trash"),
            lambda: reader.imap.expunge(),
            lambda: reader.imap.select("INBOX"),
            lambda: reader.imap.append("INBOX", None, None, b"x"),
            lambda: reader.imap.create("Trash"),
            lambda: reader.imap.delete("INBOX"),
            lambda: reader.imap.uid("SEARCH", "ALL\r\nA1 STORE 1 +FLAGS (\\Seen)"),
        ]
        for attempt in attempts:
            with pytest.raises(ForbiddenCommand):
                attempt()
        reader.noop()  # the session is intact: nothing half-sent
        fetched = reader.message(uid, 1_000_000)  # the allowed way still works
        assert CODE.encode() in fetched.data
    finally:
        reader.logout()
    assert set_flags(dovecot) == {uid: set()}
    assert names(dovecot) and not (dovecot.maildir / ".Trash").exists()
