"""The webhook handler and the pure translation, under hostile input (hypothesis).

The handler runs inside the real App and its real listener; requests are real HTTP with the
app's own signature (tests/fakes/sms_gateway.py `sign`)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.sms.connector import SmsConnector
from connectors.sms.translate import Directory, NotAText, Text, from_inbox, from_webhook
from tests.conftest import write_config
from tests.fakes.sms_gateway import FakeSmsGateway, gson_date, gson_dumps, sign
from tests.test_sms_connector import KEY, SAM, sms_config
from watcher.app import App
from watcher.core.config import load
from watcher.core.phones import e164

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
senders = st.sampled_from([SAM, "07700 900001", "+447700900099", "BANK", "", "+", "0"]) | \
    st.text(max_size=20)
times = st.sampled_from(["2026-12-06T12:46:40.000+07:00", "2026-12-06T05:46:40.000Z",
                         "2026-12-06", "yesterday", ""]) | st.text(max_size=30)
payloads = st.fixed_dictionaries({}, optional={
    "message": st.text(max_size=50) | json_values, "sender": senders | json_values,
    "receivedAt": times | json_values, "simNumber": st.integers(-2, 3) | json_values,
    "messageId": st.text(max_size=8)})
bodies = st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=21), "event": st.sampled_from(["sms:received", "sms:sent",
                                                          "system:ping"]) | json_values,
    "deviceId": st.text(max_size=8), "payload": payloads | json_values})


@given(bodies | json_values)
def test_from_webhook_reads_or_refuses_never_crashes(data: Any) -> None:
    try:
        text = from_webhook(data)
    except NotAText:
        return
    assert text is None or (isinstance(text, Text) and text.at.tzinfo is not None)


@given(st.text(max_size=200), st.integers(0, 2**41), st.sampled_from([None, 1, 2]),
       st.integers(-12 * 60, 14 * 60))
def test_webhook_and_inbox_copies_share_a_key(message: str, millis: int, sim: int | None,
                                              offset: int) -> None:
    """The same text, its webhook in one zone and its inbox row in another: one key."""
    hook = {"event": "sms:received", "payload": {
        "message": message, "sender": SAM, "simNumber": sim,
        "receivedAt": gson_date(millis, offset)}}
    row = {"type": "SMS", "sender": SAM, "simNumber": sim, "contentPreview": message,
           "createdAt": gson_date(millis, 0)}
    a, b = from_webhook(json.loads(gson_dumps(hook))), from_inbox(json.loads(gson_dumps(row)))
    assert a is not None and b is not None and a.key == b.key
    other = Text(SAM, message + "!", a.at, sim)
    assert other.key != a.key


def test_numbers_compare_in_e164_with_the_persons_region(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, extra=sms_config("http://127.0.0.1:9")),
                  environ={"SMS_PASSWORD": "x", "SMS_KEY": KEY})
    directory = Directory.from_config(config)
    for form in (SAM, "07700 900001", "+44 7700 900001", "00447700900001"):
        assert directory.person_of(form) == "sam", form
    assert directory.person_of("+447700900002") is None
    assert directory.person_of("BANK") is None
    assert e164("07700 900001") is None  # a local form needs a region
    assert directory.contact_of("+447700900003") == "jo"
    assert directory.contact_of(SAM) is None


def test_random_requests_never_crash_and_200_means_stored(tmp_path: Path) -> None:
    """Signed or not, well-formed or not: the handler answers, and a 200 for a text of
    Sam's means it is in the store (the phone stops retrying only once it is safe)."""
    loop = asyncio.new_event_loop()
    config = load(write_config(tmp_path, extra=sms_config("http://127.0.0.1:9")),
                  environ={"SMS_PASSWORD": "x", "SMS_KEY": KEY})
    app = App(config, database=tmp_path / "w.db")
    connector = next(c for c in app.connectors if isinstance(c, SmsConnector))
    loop.run_until_complete(connector.start(app))
    session = loop.run_until_complete(_session())
    url = f"http://127.0.0.1:{connector.port}/hooks/sms"

    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(bodies | json_values, st.booleans(), st.sampled_from(["ok", "forged", "stale"]))
    def check(data: Any, raw_garbage: bool, signing: str) -> None:
        body = b"\xff{not json" if raw_garbage else gson_dumps(data).encode()
        stamp = str(int(time.time()) - (400 if signing == "stale" else 0))
        mac = sign(KEY if signing != "forged" else "wrong", body, stamp)
        status = loop.run_until_complete(_post(session, url, body, stamp, mac))
        assert status in (200, 400, 401)
        if signing != "ok":
            assert status == 401
        if status != 200:
            return
        text = from_webhook(json.loads(body))
        if text is not None and connector.directory.person_of(text.sender) is not None:
            assert app.store.seen(f"sms:{text.key}")

    try:
        check()
    finally:
        loop.run_until_complete(session.close())
        loop.run_until_complete(connector.close())
        app.close()
        loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()


async def _post(session: aiohttp.ClientSession, url: str, body: bytes, stamp: str,
                mac: str) -> int:
    async with session.post(url, data=body, headers={
            "Content-Type": "application/json", "X-Timestamp": stamp,
            "X-Signature": mac}) as resp:
        await resp.read()
        return resp.status


def test_fake_gateway_is_used_for_real_signatures() -> None:
    """The stand-in and the handler agree on the signature (a mismatch would make every
    test above pass on 401s)."""
    from connectors.sms.webhook import refusal

    body = b'{"event":"sms:received"}'
    now = int(datetime.now(UTC).timestamp())
    headers = FakeSmsGateway(signing_key=KEY).signed_headers(body, timestamp=now)
    assert refusal(KEY, body, headers["X-Timestamp"], headers["X-Signature"], now) is None
    assert refusal(KEY, body + b" ", headers["X-Timestamp"], headers["X-Signature"], now)
