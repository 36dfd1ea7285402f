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


def test_runs_unprivileged_on_loopback_only(dovecot: Dovecot) -> None:
    owners = {_uid(pid) for pid in os.listdir("/proc") if pid.isdigit() and _is_ours(pid, dovecot)}
    assert owners, "no dovecot process found"
    assert owners == {dovecot.uid}
    if os.geteuid() == 0:
        assert dovecot.uid != 0  # every Dovecot process runs as the unprivileged user
    assert _listening_addresses(dovecot.port) == {"127.0.0.1"}


def _is_ours(pid: str, server: Dovecot) -> bool:
    try:
        return str(server.root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _uid(pid: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("Uid:")[1].split()[0])


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the sockets listening on ``port`` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(_address(address))
    return found


def _address(hex_address: str) -> str:
    if len(hex_address) == 8:
        return socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_address)[::-1])
    words = [bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, 32, 8)]
    return socket.inet_ntop(socket.AF_INET6, b"".join(words))


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
