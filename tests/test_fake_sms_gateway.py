"""The SMS Gateway stand-in speaks the app's documented API and webhook format.

Signatures are checked with an HMAC written here from RFC 2104 (checked against RFC 4231), not
with the stand-in's own code, over the raw bytes as the app's docs prescribe.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from tests.fakes.sms_gateway import (
    BASE_RETRY_DELAY,
    FakeSmsGateway,
    Sms,
    basic_auth,
    inbox_text_hash,
    java_string_hash,
)

SAM = "+447700900001"
SKEW = 300  # the docs' advice: accept timestamps within ±5 minutes
GSON_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")


# ----------------------------------------------------------------- an independent verifier


def rfc2104_hmac_sha256(key: bytes, message: bytes) -> bytes:
    block = 64
    if len(key) > block:
        key = hashlib.sha256(key).digest()
    key = key.ljust(block, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + message).digest()
    return hashlib.sha256(bytes(k ^ 0x5C for k in key) + inner).digest()


def verify(key: str, raw_body: bytes, headers: Any, now: float | None = None) -> bool:
    """The docs' steps: raw body + X-Timestamp, HMAC-SHA256, compare with X-Signature."""
    timestamp, signature = headers.get("X-Timestamp"), headers.get("X-Signature")
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((now or time.time()) - int(timestamp)) > SKEW:
        return False
    expected = rfc2104_hmac_sha256(key.encode(), raw_body + timestamp.encode()).hex()
    return bool(expected == signature)


def test_the_verifier_is_rfc_4231_hmac_sha256() -> None:
    # RFC 4231 test cases 2 and 6 (a key longer than the block size).
    assert rfc2104_hmac_sha256(b"Jefe", b"what do ya want for nothing?").hex() == (
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    assert rfc2104_hmac_sha256(
        b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First").hex() == (
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


# ----------------------------------------------------------------- a webhook receiver


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]
    at: float

    @property
    def json(self) -> dict[str, Any]:
        value = json.loads(self.body)
        assert isinstance(value, dict)
        return value


@dataclass
class Receiver:
    url: str = ""
    got: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to give, then 200

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(Received(await request.read(), dict(request.headers), time.monotonic()))
        return web.Response(status=self.answers.pop(0) if self.answers else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/sms", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.url = f"http://127.0.0.1:{runner.addresses[0][1]}/sms"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def gw() -> AsyncIterator[FakeSmsGateway]:
    async with FakeSmsGateway(time_factor=0.01, tz_offset_minutes=420) as server:
        yield server


async def api(gw: FakeSmsGateway, method: str, path: str, body: Any = None,
              auth: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    async with aiohttp.ClientSession() as session, session.request(
            method, gw.base_url + path, json=body, headers=auth or gw.auth) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None), resp.headers


async def register(gw: FakeSmsGateway, url: str, event: str = "sms:received") -> str:
    status, hook, _ = await api(gw, "POST", "/webhooks", {"url": url, "event": event})
    assert status == 201
    assert set(hook) == {"id", "url", "event", "source"} and hook["source"] == "Local"
    return str(hook["id"])


# ----------------------------------------------------------------- webhook format


async def test_sms_received_webhook_has_the_documented_shape_and_signature(
        gw: FakeSmsGateway, receiver: Receiver) -> None:
    hook_id = await register(gw, receiver.url)
    sms = gw.receive_sms(SAM, "the network went down at work", date_ms=1_765_000_000_123)
    await gw.wait_until(lambda: gw.completed(sms.event_ids[0]))

    [got] = receiver.got
    assert got.headers["Content-Type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f]{64}", got.headers["X-Signature"])
    assert abs(int(got.headers["X-Timestamp"]) - time.time()) < 5
    assert verify(gw.signing_key, got.body, got.headers)
    assert not verify("another-key", got.body, got.headers)

    event = got.json
    assert list(event) == ["id", "webhookId", "event", "deviceId", "payload"]
    assert event["event"] == "sms:received" and event["webhookId"] == hook_id
    assert event["deviceId"] == gw.device_id and len(event["id"]) == 21
    payload = event["payload"]
    assert set(payload) == {"messageId", "message", "sender", "recipient", "simNumber",
                            "receivedAt", "phoneNumber"}
    assert payload["message"] == "the network went down at work"
    assert payload["sender"] == payload["phoneNumber"] == SAM
    assert payload["simNumber"] == 1
    assert payload["receivedAt"] == "2025-12-06T12:46:40.123+07:00"  # device zone, ms
    assert GSON_DATE.match(payload["receivedAt"])
    assert payload["messageId"] == format(
        inbox_text_hash(SAM, 1_765_000_000_123, 1, payload["message"]) & 0xFFFFFFFF, "x")


def test_java_hashcode_matches_known_values() -> None:
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("Aa") == java_string_hash("BB") == 2112
    assert java_string_hash("polygenelubricants") == -(2**31)
    assert java_string_hash("😀") == 31 * 0xD83D + 0xDE00  # UTF-16 code units


async def test_nulls_are_omitted_and_html_characters_escaped_as_gson_does(
        gw: FakeSmsGateway, receiver: Receiver) -> None:
    gw.phone_number = None
    await register(gw, receiver.url)
    text = "<b>'a'</b> & x=1 \u2028 😀 \"q\""
    sms = gw.receive_sms(SAM, text, sim_number=None)
    await gw.wait_until(lambda: gw.completed(sms.event_ids[0]))
    [got] = receiver.got
    raw = got.body.decode()
    for escape in ("\\u003cb\\u003e", "\\u0027a\\u0027", "\\u0026", "x\\u003d1", "\\u2028",
                   "😀", '\\"q\\"'):
        assert escape in raw
    assert "simNumber" not in got.json["payload"] and "recipient" not in got.json["payload"]
    assert got.json["payload"]["message"] == text
    # Re-serialising the parsed JSON changes the bytes: verify over the raw body only.
    reencoded = json.dumps(got.json, separators=(",", ":"), ensure_ascii=False).encode()
    assert reencoded != got.body
    assert not verify(gw.signing_key, reencoded, got.headers)


async def test_message_id_is_a_content_hash_and_not_unique(
        gw: FakeSmsGateway, receiver: Receiver) -> None:
    await register(gw, receiver.url)
    date = 1_765_000_000_000
    a = gw.receive_sms(SAM, "Aa", date_ms=date)
    b = gw.receive_sms(SAM, "BB", date_ms=date)  # a different text, the same hash
    again = gw.receive_sms(SAM, "Aa", date_ms=date)  # the same text in the same second
    other = gw.receive_sms(SAM, "Aa", date_ms=date + 1000)
    await gw.wait_until(lambda: len(receiver.got) == 2)
    assert a.message_id == b.message_id == again.message_id != other.message_id
    # The app dedupes on the same 32-bit hash (IncomingMessagesService.buildId): a repeat in
    # the same second is dropped, and so is a different text whose hash collides.
    assert b.event_ids == [] and again.event_ids == []
    assert [r.json["payload"]["message"] for r in receiver.got] == ["Aa", "Aa"]
    assert receiver.got[0].json["id"] != receiver.got[1].json["id"]
    # Another device can send the same messageId for another text.
    async with FakeSmsGateway() as phone2:
        assert phone2.receive_sms(SAM, "BB", date_ms=date).message_id == a.message_id


HOSTILE_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=200)


@given(HOSTILE_TEXT, HOSTILE_TEXT.filter(bool))
def test_any_text_survives_the_wire_format_and_verifies(text: str, sender: str) -> None:
    gw = FakeSmsGateway()  # not started: only its serialiser and signer are used
    sms = Sms(sender, text, 1_765_000_000_000, None, None)
    body = gw.sms_received_body(sms).encode()
    assert verify(gw.signing_key, body, gw.signed_headers(body))
    payload = json.loads(body)["payload"]
    assert payload["message"] == text and payload["sender"] == sender
    assert not set("<>&='\u2028\u2029") & set(body.decode())  # Gson's escapes


@given(st.text(max_size=40), st.text(min_size=1, max_size=20),
       st.integers(min_value=0, max_value=2**41), st.one_of(st.none(), st.integers(1, 4)))
def test_message_id_is_eight_hex_digits_at_most(text: str, sender: str, date_ms: int,
                                                sim: int | None) -> None:
    h = inbox_text_hash(sender, date_ms, sim, text)
    assert -(2**31) <= h < 2**31
    assert re.fullmatch(r"[0-9a-f]{1,8}", format(h & 0xFFFFFFFF, "x"))


# ----------------------------------------------------------------- retries and the queue


async def test_failed_deliveries_are_retried_with_doubling_delays_and_fresh_signatures(
        gw: FakeSmsGateway, receiver: Receiver) -> None:
    await register(gw, receiver.url)
    receiver.answers = [500, 503, 404]
    sms = gw.receive_sms(SAM, "call me")
    await gw.wait_until(lambda: gw.completed(sms.event_ids[0]))
    assert len(receiver.got) == 4
    assert len({r.json["id"] for r in receiver.got}) == 1  # one event id across retries
    assert len({r.body for r in receiver.got}) == 1
    for r in receiver.got:
        assert verify(gw.signing_key, r.body, r.headers)
    gaps = [b.at - a.at for a, b in zip(receiver.got, receiver.got[1:], strict=False)]
    for n, gap in enumerate(gaps):
        assert gap >= BASE_RETRY_DELAY * 2**n * gw.time_factor * 0.99
    assert gw.rows(sms.event_ids[0])[0].retry_count == 3


async def test_the_app_gives_up_after_the_retry_count_and_export_does_not_resend(
        receiver: Receiver) -> None:
    async with FakeSmsGateway(time_factor=0.001, retry_count=3) as gw:
        await register(gw, receiver.url)
        receiver.answers = [500] * 10
        sms = gw.receive_sms(SAM, "lost webhook")
        await gw.wait_until(lambda: gw.rows(sms.event_ids[0])[0].status == "permanently_failed")
        assert len(receiver.got) == 4  # the first try and 3 retries
        since = datetime.fromtimestamp(sms.date_ms / 1000 - 60, UTC).isoformat()
        until = datetime.fromtimestamp(sms.date_ms / 1000 + 60, UTC).isoformat()
        status, _, _ = await api(gw, "POST", "/messages/inbox/export",
                                 {"since": since, "until": until})
        assert status == 202
        assert len(gw.queue) == 1  # already processed: no new webhook
        # ... but the local inbox API still lists it, with the full text.
        status, page, headers = await api(gw, "GET", "/inbox?type=SMS")
        assert status == 200 and headers["X-Total-Count"] == "1"
        assert page[0]["contentPreview"] == "lost webhook" and page[0]["id"] == sms.inbox_id


async def test_offline_phone_queues_without_spending_retries(
        gw: FakeSmsGateway, receiver: Receiver) -> None:
    await register(gw, receiver.url)
    async with aiohttp.ClientSession() as kept_alive:
        async with kept_alive.get(gw.base_url + "/health") as resp:
            assert resp.status == 200
        await gw.go_offline()
        with pytest.raises(aiohttp.ClientConnectionError):
            async with kept_alive.get(gw.base_url + "/health") as resp:
                await resp.read()
    texts = [gw.receive_sms(SAM, f"text {i}") for i in range(3)]
    with pytest.raises(aiohttp.ClientConnectionError):
        await api(gw, "GET", "/health")
    assert gw.attempts == []
    await gw.go_online()
    await gw.wait_until(lambda: all(gw.completed(t.event_ids[0]) for t in texts))
    assert [r.json["payload"]["message"] for r in receiver.got] == ["text 0", "text 1", "text 2"]
    assert all(row.retry_count == 0 for row in gw.queue.values())


async def test_held_webhooks_can_be_released_out_of_order(
        gw: FakeSmsGateway, receiver: Receiver) -> None:
    await register(gw, receiver.url)
    gw.hold()
    texts = [gw.receive_sms(SAM, f"text {i}") for i in range(4)]
    gw.release("reverse")
    await gw.wait_until(lambda: all(gw.completed(t.event_ids[0]) for t in texts))
    assert [r.json["payload"]["message"] for r in receiver.got] == [
        "text 3", "text 2", "text 1", "text 0"]


async def test_redelivery_replay_and_forgery(gw: FakeSmsGateway, receiver: Receiver) -> None:
    await register(gw, receiver.url)
    sms = gw.receive_sms(SAM, "pineapple")
    event_id = sms.event_ids[0]
    await gw.wait_until(lambda: gw.completed(event_id))
    gw.redeliver(event_id)
    await gw.wait_until(lambda: len(gw.attempts_for(event_id)) == 2
                        and gw.attempts_for(event_id)[1].status == 200)
    first, second = receiver.got
    assert first.body == second.body and verify(gw.signing_key, second.body, second.headers)

    # A byte-for-byte replay of a capture still carries a valid MAC: only the timestamp
    # window and a dedupe key stop it.
    status = await gw.replay(gw.attempts[0])
    assert status == 200
    assert receiver.got[2].body == first.body
    assert receiver.got[2].headers["X-Signature"] == first.headers["X-Signature"]
    later = int(first.headers["X-Timestamp"]) + SKEW + 1
    assert not verify(gw.signing_key, first.body, first.headers, now=later)

    body = gw.sms_received_body(sms).encode()
    stale = gw.signed_headers(body, timestamp=int(time.time()) - SKEW - 60)
    forged = gw.signed_headers(body, key="guessed")
    tampered = gw.signed_headers(body)
    for headers, raw in ((stale, body), (forged, body),
                         (tampered, body.replace(b"pineapple", b"pineapplf")),
                         ({"Content-Type": "application/json"}, body)):
        assert await gw.post_raw(receiver.url, raw, headers) == 200
        assert not verify(gw.signing_key, receiver.got[-1].body, receiver.got[-1].headers)
    assert verify(gw.signing_key, body, gw.signed_headers(body))


async def test_texts_received_while_the_app_was_killed_are_found_by_refresh_and_export(
        gw: FakeSmsGateway, receiver: Receiver) -> None:
    await register(gw, receiver.url)
    now_ms = int(time.time()) * 1000
    missed = gw.receive_sms(SAM, "missed one", date_ms=now_ms - 5000, app_running=False)
    also = gw.receive_sms(SAM, "missed two", date_ms=now_ms - 4000, app_running=False)
    _, page, _ = await api(gw, "GET", "/inbox")
    assert page == [] and gw.queue == {}
    window = {"since": datetime.fromtimestamp(now_ms / 1000 - 60, UTC).isoformat(),
              "until": datetime.fromtimestamp(now_ms / 1000 + 60, UTC).isoformat()}
    status, _, _ = await api(gw, "POST", "/messages/inbox/export", window)
    assert status == 202
    await gw.wait_until(lambda: len(receiver.got) == 2)
    assert [r.json["payload"]["message"] for r in receiver.got] == ["missed one", "missed two"]
    assert missed.processed and also.processed
    status, page, _ = await api(gw, "GET", "/inbox")
    assert [m["contentPreview"] for m in page] == ["missed two", "missed one"]  # newest first
    quiet = gw.receive_sms(SAM, "refreshed", date_ms=now_ms - 3000, app_running=False)
    status, _, _ = await api(gw, "POST", "/inbox/refresh", window)
    assert status == 202 and quiet.processed and quiet.event_ids == []


# ----------------------------------------------------------------- the local-server API


async def test_api_requires_basic_auth_except_health(gw: FakeSmsGateway) -> None:
    status, _, headers = await api(gw, "GET", "/inbox",
                                   auth=basic_auth(gw.username, "wrong"))
    assert status == 401 and headers["WWW-Authenticate"].startswith('Basic realm="')
    async with aiohttp.ClientSession() as session, session.get(gw.base_url + "/inbox") as r:
        assert r.status == 401
    status, health, _ = await api(gw, "GET", "/health", auth=basic_auth("x", "y"))
    assert status == 200 and health["status"] == "pass"
    assert {"version", "releaseId", "status", "checks"} == set(health)
    assert health["checks"]["battery:level"]["observedUnit"] == "percent"
    gw.battery_level = 5
    status, health, _ = await api(gw, "GET", "/health")
    assert status == 500 and health["status"] == "fail"


async def test_send_message_state_and_sent_webhook(gw: FakeSmsGateway,
                                                   receiver: Receiver) -> None:
    await register(gw, receiver.url, "sms:sent")
    status, msg, _ = await api(gw, "POST", "/message", {
        "id": "alert-1", "textMessage": {"text": "Sam used a code"},
        "phoneNumbers": ["+447700900123"]})
    assert status == 202 and msg["state"] == "Pending" and msg["id"] == "alert-1"
    assert msg["recipients"] == [{"phoneNumber": "+447700900123", "state": "Pending"}]
    status, msg, _ = await api(gw, "GET", "/message/alert-1")
    assert status == 200 and msg["state"] == "Sent" and "Sent" in msg["states"]
    await gw.wait_until(lambda: receiver.got)
    assert receiver.got[0].json["event"] == "sms:sent"
    assert receiver.got[0].json["payload"]["recipient"] == "+447700900123"
    status, _, _ = await api(gw, "POST", "/messages", {
        "id": "alert-1", "textMessage": {"text": "again"}, "phoneNumbers": ["+447700900123"]})
    assert status == 409
    assert (await api(gw, "GET", "/messages/nope"))[0] == 404
    assert (await api(gw, "POST", "/message", {"phoneNumbers": []}))[0] == 400
    assert [m.id for m in gw.sent_to("+447700900123")] == ["alert-1"] and gw.sent_to(SAM) == []


async def test_inbox_paging_and_filters(gw: FakeSmsGateway) -> None:
    base = 1_765_000_000_000
    for i in range(5):
        gw.receive_sms(SAM, f"n{i}", date_ms=base + i * 1000)
    status, page, headers = await api(gw, "GET", "/inbox?limit=2&offset=1")
    assert status == 200 and headers["X-Total-Count"] == "5"
    assert [m["contentPreview"] for m in page] == ["n3", "n2"]
    assert all(GSON_DATE.match(m["createdAt"]) for m in page)
    start = datetime.fromtimestamp((base + 1000) / 1000, UTC).isoformat()
    end = datetime.fromtimestamp((base + 3000) / 1000, UTC).isoformat()
    _, page, headers = await api(gw, "GET", f"/inbox?from={start}&to={end}".replace("+", "%2B"))
    assert [m["contentPreview"] for m in page] == ["n3", "n2", "n1"]
    assert (await api(gw, "GET", "/inbox?limit=501"))[0] == 400
    assert (await api(gw, "GET", "/inbox?type=FAX"))[0] == 400
    assert (await api(gw, "GET", "/inbox?deviceId=other"))[0] == 400


async def test_webhook_registration_rules(gw: FakeSmsGateway) -> None:
    assert (await api(gw, "POST", "/webhooks",
                      {"url": "http://192.168.1.5/sms", "event": "sms:received"}))[0] == 400
    assert (await api(gw, "POST", "/webhooks",
                      {"url": "https://h.example/sms", "event": "sms:eaten"}))[0] == 400
    hook = await register(gw, "https://h.example/sms")
    _, hooks, _ = await api(gw, "GET", "/webhooks")
    assert [h["id"] for h in hooks] == [hook]
    assert (await api(gw, "DELETE", f"/webhooks/{hook}"))[0] == 204
    assert (await api(gw, "GET", "/webhooks"))[1] == []
