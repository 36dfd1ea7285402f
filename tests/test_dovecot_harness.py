"""The Dovecot harness gives a real IMAP server that behaves as the e-mail connector will need,
checked with Python's own imaplib (no project code)."""

from __future__ import annotations

import imaplib
import os
import socket
import ssl
from pathlib import Path

import pytest

from tests.servers.dovecot import Dovecot, dovecot, dovecot_tls, make_message

__all__ = ["dovecot", "dovecot_tls"]  # the fixtures, imported to be found by pytest

SAM = "sam@example.org"


def message(body: str = "the network went down at work", subject: str = "hi") -> bytes:
    return make_message(SAM, subject, body)


def examine(server: Dovecot, folder: str = "INBOX") -> tuple[imaplib.IMAP4, int]:
    client = server.client()
    typ, _ = client.select(folder, readonly=True)  # imaplib sends EXAMINE
    assert typ == "OK"
    _, [validity] = client.response("UIDVALIDITY")
    assert validity is not None
    return client, int(validity)


def read_until(client: imaplib.IMAP4, marker: bytes, limit: int = 20) -> bytes:
    """Read untagged lines (with the socket's 10 s timeout) until one contains ``marker``."""
    for _ in range(limit):
        line = client.readline()
        if marker in line:
            return line
    raise AssertionError(f"no {marker!r} within {limit} lines")


def test_runs_unprivileged_on_loopback(dovecot: Dovecot) -> None:
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    owners = {int(Path(f"/proc/{p}/status").read_text().split("Uid:")[1].split()[0])
              for p in pids if _is_dovecot(p, dovecot)}
    assert owners, "no dovecot process found"
    if os.geteuid() == 0:
        assert 0 not in owners  # every Dovecot process dropped root
    with pytest.raises(OSError):  # the listener is bound to 127.0.0.1 only
        socket.create_connection((_non_loopback_address(), dovecot.port), timeout=2)


def _is_dovecot(pid: str, server: Dovecot) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(server.root).encode() in cmdline


def _non_loopback_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks a source address
        address = str(probe.getsockname()[0])
    return address if not address.startswith("127.") else "192.0.2.1"


def test_login_and_examine_is_read_only(dovecot: Dovecot) -> None:
    dovecot.deliver(message())
    client, validity = examine(dovecot)
    assert client.untagged_responses.get("READ-ONLY") is not None
    assert validity > 0
    typ, data = client.uid("FETCH", "1:*", "(UID BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
    assert typ == "OK" and b"sam@example.org" in data[0][1]
    client.uid("STORE", "1", "+FLAGS", r"(\Deleted \Seen)")  # Dovecot answers OK...
    client.logout()
    assert dovecot.flags()[1] <= {"\\Recent"}  # ...but a read-only session changes nothing


def test_body_peek_leaves_seen_unset_and_body_sets_it(dovecot: Dovecot) -> None:
    for i in range(2):
        dovecot.deliver(message(f"text {i}"))
    client, _ = examine(dovecot)
    typ, data = client.uid("FETCH", "1:2", "(BODY.PEEK[])")
    assert typ == "OK" and b"text 0" in data[0][1]
    client.logout()
    assert all("\\Seen" not in flags for flags in dovecot.flags().values())
    # The control: a read-write SELECT and a plain BODY[] do set \Seen, and flags() sees it.
    client = dovecot.client()
    client.select("INBOX")
    client.uid("FETCH", "2", "(BODY[])")
    client.logout()
    flags = dovecot.flags()
    assert "\\Seen" not in flags[1] and "\\Seen" in flags[2]


def test_idle_wakes_on_delivery(dovecot: Dovecot) -> None:
    dovecot.deliver(message("before"))
    client, _ = examine(dovecot)
    client.send(b"i1 IDLE\r\n")
    assert client.readline().startswith(b"+")
    dovecot.deliver(message("during"))  # written into new/, as an MTA would
    assert read_until(client, b"EXISTS").strip() == b"* 2 EXISTS"
    client.send(b"DONE\r\n")
    assert read_until(client, b"i1 ").startswith(b"i1 OK")
    client.logout()


def test_uidvalidity_change_and_recreated_mailbox(dovecot: Dovecot) -> None:
    for i in range(3):
        dovecot.deliver(message(f"m{i}"))
    client, first = examine(dovecot)
    _, uids = client.uid("SEARCH", "ALL")
    assert uids[0] == b"1 2 3"
    client.logout()
    assert dovecot.change_uidvalidity() == first + 1
    client, second = examine(dovecot)
    assert second == first + 1 == dovecot.uidvalidity()
    client.logout()

    dovecot.append(message("m3"))  # UID 4
    third = dovecot.recreate_mailbox()
    assert third > second
    client, seen = examine(dovecot)
    assert seen == third
    _, uids = client.uid("SEARCH", "ALL")
    assert uids[0] == b"1 2 3 4"  # numbered again from 1
    client.logout()


def test_append_into_a_folder(dovecot: Dovecot) -> None:
    dovecot.create_folder("Codes")
    assert dovecot.append(message("one"), folder="Codes") == 1
    dovecot.deliver(message("two"), folder="Codes")
    client, _ = examine(dovecot, "Codes")
    _, data = client.uid("SEARCH", "ALL")
    assert data[0] == b"1 2"
    client.logout()


def test_wrong_password_differs_from_unreachable(dovecot: Dovecot) -> None:
    client = imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        client.login(dovecot.user, "not-the-password")
    client.shutdown()
    dovecot.stop()
    with pytest.raises(ConnectionRefusedError):
        imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=10)


def test_dropped_connection_and_restart_keep_the_mail(dovecot: Dovecot) -> None:
    dovecot.deliver(message("kept"))
    client, validity = examine(dovecot)
    dovecot.drop_connections()
    with pytest.raises((imaplib.IMAP4.abort, OSError)):
        client.noop()
        client.noop()  # the first may still read the BYE as a response
    dovecot.restart()
    client, after = examine(dovecot)
    assert after == validity  # a restart is not a UIDVALIDITY change
    _, data = client.uid("FETCH", "1", "(BODY.PEEK[TEXT])")
    assert b"kept" in data[0][1]
    client.logout()


def test_tls_with_a_self_signed_certificate(dovecot_tls: Dovecot) -> None:
    client = dovecot_tls.tls_client()
    assert client.noop()[0] == "OK"
    client.logout()
    untrusting = ssl.create_default_context()  # the system store does not know the cert
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL("127.0.0.1", dovecot_tls.tls_port, ssl_context=untrusting,
                          timeout=10)


def test_a_large_message_is_delivered_whole(dovecot: Dovecot) -> None:
    body = "x" * (20 * 1024 * 1024)
    dovecot.deliver(message(body))
    client, _ = examine(dovecot)
    _, data = client.uid("FETCH", "1", "(RFC822.SIZE)")
    size = int(data[0].split(b"RFC822.SIZE ")[1].rstrip(b")"))
    assert size > 20 * 1024 * 1024
    client.logout()
