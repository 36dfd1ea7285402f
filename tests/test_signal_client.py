"""SignalClient against the signal-cli-rest-api stand-in, over real HTTP and websockets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from connectors.signal.client import (
    SendResult,
    SignalClient,
    SignalError,
    SignalNotFound,
    SignalRateLimited,
    SignalTooLarge,
    SignalUnreachable,
)
from tests.fakes.signal_api import (
    FakeSignalApi,
    attachment_message,
    edit_message,
    make_blob,
    make_contact,
    quote_reply,
    reaction,
    receipt,
    rest_group_id,
    sync_sent,
    text_message,
    typing,
)

pytestmark = pytest.mark.timeout(15)

ACCOUNT = "+15550000001"  # the watched (survivor's) number
ALICE = make_contact("+15550000002", "Alice")
HIDDEN = make_contact(None, "Number hidden")
TRUSTED = ["+15550000009", "+15550000010"]


@pytest.fixture
async def api() -> AsyncIterator[FakeSignalApi]:
    async with FakeSignalApi(ACCOUNT) as fake:
        yield fake
        # whatever a test did: the watched number is never messaged, receipts never requested
        assert ACCOUNT not in fake.sent_to()
        assert all(p.get("send_read_receipts") == "false" for p in fake.receive_params())


@pytest.fixture
async def client(api: FakeSignalApi) -> AsyncIterator[SignalClient]:
    async with SignalClient(api.base_url, ACCOUNT, timeout=2) as c:
        yield c


async def next_item(it: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(it), 5)


# ----------------------------------------------------------------------------- general


async def test_about_health_mode(api: FakeSignalApi, client: SignalClient) -> None:
    about = await client.about()
    assert set(about) >= {"versions", "build", "mode", "version", "capabilities"}
    assert await client.health() is True
    assert await client.mode() == "normal"
    api.mode, api.version = "json-rpc", "0.95"
    assert await client.mode() == "json-rpc"
    assert (await client.about())["version"] == "0.95"
    api.mode = "native"  # same REST behaviour as normal mode
    assert await client.mode() == "native"
    api.inject(text_message(ALICE, "hi"))
    assert len(await client.receive(timeout=1)) == 1


async def test_health_false_when_unreachable_or_failing(api: FakeSignalApi) -> None:
    api.fault("health", status=500)
    async with SignalClient(api.base_url, ACCOUNT, timeout=2) as c:
        assert await c.health() is False
        assert await c.health() is True
    async with SignalClient("http://127.0.0.1:9", ACCOUNT, timeout=1) as c:
        assert await c.health() is False
        with pytest.raises(SignalUnreachable) as err:
            await c.about()
        assert err.value.permanent is False


async def test_unknown_route_is_plain_404(api: FakeSignalApi) -> None:
    async with httpx.AsyncClient(base_url=api.base_url) as h:
        r = await h.get("/v1/nope")
        assert (r.status_code, r.text) == (404, "404 page not found")
        assert (await h.post("/v1/about")).status_code == 404


async def test_injected_http_client_is_used_and_not_closed(api: FakeSignalApi) -> None:
    async with httpx.AsyncClient(headers={"X-Probe": "1"}) as h:
        c = SignalClient(api.base_url, ACCOUNT, http=h)
        assert await c.health()
        await c.aclose()
        assert not h.is_closed


# ----------------------------------------------------------------------------- normal mode


async def test_receive_returns_and_acknowledges(api: FakeSignalApi, client: SignalClient) -> None:
    first = api.inject(text_message(ALICE, "pineapple"))
    api.inject(text_message(HIDDEN, "hello"))
    items = await client.receive(timeout=1)
    assert [i["envelope"]["dataMessage"]["message"] for i in items] == ["pineapple", "hello"]
    assert {i["account"] for i in items} == {ACCOUNT}
    assert items[0]["envelope"]["sourceUuid"] == ALICE.uuid
    assert items[1]["envelope"]["sourceNumber"] is None  # match on sourceUuid, not number
    assert first.delivered_at is not None and first.delivered_at >= first.available_at
    t0 = time.monotonic()
    assert await client.receive(timeout=1) == []  # acknowledged: gone
    assert time.monotonic() - t0 >= 0.9  # an empty receive holds for `timeout`
    params = api.receive_params()[0]
    assert params == {"timeout": "1", "ignore_attachments": "false", "ignore_stories": "true",
                      "send_read_receipts": "false"}


async def test_receive_wakes_when_a_message_arrives(api: FakeSignalApi,
                                                   client: SignalClient) -> None:
    poll = asyncio.create_task(client.receive(timeout=10))
    await api.wait_until(lambda: bool(api.receive_params()), 5)
    rec = api.inject(text_message(ALICE, "now"))
    items = await asyncio.wait_for(poll, 5)
    assert items[0]["envelope"]["timestamp"] == rec.timestamp
    assert rec.delivered_at is not None and rec.delivered_at - rec.available_at < 1


async def test_receive_max_messages(api: FakeSignalApi, client: SignalClient) -> None:
    for n in range(3):
        api.inject(text_message(ALICE, f"m{n}"))
    assert len(await client.receive(timeout=1, max_messages=2)) == 2
    assert api.receive_params()[0]["max_messages"] == "2"
    assert len(await client.receive(timeout=1)) == 1


async def test_every_envelope_kind_round_trips(api: FakeSignalApi, client: SignalClient) -> None:
    orig = text_message(ALICE, "original")
    me = make_contact(ACCOUNT, "Me")
    envs = [orig, reaction(ALICE, "🍍", me, orig["timestamp"]),
            quote_reply(ALICE, "re", me, 123, "quoted"),
            edit_message(ALICE, orig["timestamp"], "edited"), sync_sent(me, ALICE, "out"),
            typing(ALICE), receipt(ALICE, [orig["timestamp"]]),
            text_message(ALICE, "in group", group_id="aGVsbG8=")]
    for env in envs:
        api.inject(env)
    got = [i["envelope"] for i in await client.receive(timeout=1)]
    assert got == envs
    assert got[1]["dataMessage"]["reaction"]["targetSentTimestamp"] == orig["timestamp"]
    assert got[3]["editMessage"]["dataMessage"]["message"] == "edited"
    assert got[4]["syncMessage"]["sentMessage"]["destinationUuid"] == ALICE.uuid
    assert got[7]["dataMessage"]["groupInfo"]["groupId"] == "aGVsbG8="


async def test_receive_in_json_rpc_mode_is_a_permanent_error(api: FakeSignalApi,
                                                            client: SignalClient) -> None:
    api.mode = "json-rpc"
    with pytest.raises(SignalError) as err:
        await client.receive(timeout=1)
    assert err.value.permanent and err.value.status == 400


async def test_unknown_account_is_permanent(api: FakeSignalApi) -> None:
    async with SignalClient(api.base_url, "+15559999999", timeout=2) as c:
        with pytest.raises(SignalError) as err:
            await c.receive(timeout=1)
        assert (err.value.permanent, err.value.status) == (True, 400)
        assert "not registered" in err.value.message


# ----------------------------------------------------------------------------- json-rpc mode


async def test_stream_yields_and_drops_when_nobody_listens(api: FakeSignalApi,
                                                          client: SignalClient) -> None:
    api.mode = "json-rpc"
    lost = api.inject(text_message(ALICE, "nobody is listening"))
    stream = client.stream()
    try:
        first = asyncio.create_task(next_item(stream))
        await api.wait_for_listeners()
        kept = api.inject(text_message(ALICE, "pineapple"))
        item = await first
        assert item == kept.item and item["account"] == ACCOUNT
        assert api.record_for(item["envelope"]["timestamp"]) is kept
        assert lost.dropped and lost.delivered_at is None
        assert kept.delivered_at is not None and kept.delivered_at - kept.available_at < 1
        api.inject(reaction(ALICE, "👍", ALICE, kept.timestamp))
        assert "reaction" in (await next_item(stream))["envelope"]["dataMessage"]
    finally:
        await stream.aclose()  # type: ignore[attr-defined]
    await api.wait_until(lambda: api.listeners == 0, 5)
    assert api.inject(text_message(ALICE, "gone again")).dropped
    assert api.receive_params()[-1]["send_read_receipts"] == "false"


@pytest.mark.parametrize(("abrupt", "code"), [(True, 0), (False, 1011), (False, 1000)])
async def test_stream_cut_raises_and_reconnect_works(api: FakeSignalApi, client: SignalClient,
                                                     abrupt: bool, code: int) -> None:
    api.mode = "json-rpc"
    stream = client.stream()
    pending = asyncio.create_task(next_item(stream))
    await api.wait_for_listeners()
    await api.cut_websockets(abrupt=abrupt, code=code)
    with pytest.raises(SignalUnreachable) as err:
        await pending
    assert err.value.permanent is False
    again = client.stream()  # what the caller does: reconnect
    nxt = asyncio.create_task(next_item(again))
    await api.wait_for_listeners()
    rec = api.inject(text_message(ALICE, "after reconnect"))
    assert (await nxt) == rec.item
    await again.aclose()  # type: ignore[attr-defined]


async def test_stream_refuses_normal_mode_service(api: FakeSignalApi,
                                                 client: SignalClient) -> None:
    rec = api.inject(text_message(ALICE, "must not be swallowed"))
    with pytest.raises(SignalError) as err:
        await anext(client.stream())
    assert err.value.permanent
    assert api.receive_params() == [] and rec.delivered_at is None
    # without the guard the handshake "fails" but the GET really received the message
    with pytest.raises(SignalError):
        await anext(client.stream(check_mode=False))
    assert rec.delivered_at is not None


async def test_stream_handshake_faults(api: FakeSignalApi, client: SignalClient) -> None:
    api.mode = "json-rpc"
    api.fault("receive", status=500)
    with pytest.raises(SignalUnreachable):
        await anext(client.stream())
    api.fault("receive", status=400)
    with pytest.raises(SignalError) as err:
        await anext(client.stream())
    assert err.value.permanent and err.value.status == 400
    api.fault("receive", drop=True)
    with pytest.raises(SignalUnreachable):
        await anext(client.stream())


# ----------------------------------------------------------------------------- attachments


async def test_attachment_fetch_cap_and_delete(api: FakeSignalApi, client: SignalClient) -> None:
    small, big = make_blob(b"\xff\xd8small-jpeg"), make_blob(b"x" * 200_000, "image/png")
    api.inject(attachment_message(ALICE, [small, big], "look"), blobs=[small, big])
    [item] = await client.receive(timeout=1)
    ids = [a["id"] for a in item["envelope"]["dataMessage"]["attachments"]]
    assert ids == [small.id, big.id] and big.id.endswith(".png")
    assert await client.attachment(small.id, max_bytes=1000) == small.data
    with pytest.raises(SignalTooLarge) as err:
        await client.attachment(big.id, max_bytes=100_000)
    assert err.value.permanent
    assert await client.attachment(big.id, max_bytes=200_000) == big.data
    assert await client.delete_attachment(small.id) is True
    assert small.id not in api.attachments
    assert await client.delete_attachment(small.id) is False
    with pytest.raises(SignalNotFound) as nf:
        await client.attachment(small.id, max_bytes=1000)
    assert nf.value.permanent and "No attachment" in nf.value.message


async def test_attachment_not_stored_when_ignored(api: FakeSignalApi,
                                                 client: SignalClient) -> None:
    blob = make_blob(b"data")
    api.inject(attachment_message(ALICE, [blob]), blobs=[blob])
    await client.receive(timeout=1, ignore_attachments=True)
    with pytest.raises(SignalNotFound):
        await client.attachment(blob.id, max_bytes=100)


async def test_attachment_500_temporary_and_bad_ids_rejected(api: FakeSignalApi,
                                                            client: SignalClient) -> None:
    api.fault("attachment", status=500)
    with pytest.raises(SignalUnreachable):
        await client.attachment("abc.jpg", max_bytes=10)
    for bad in ("../../etc/passwd", "..", "", "a/b", "a%2Fb"):
        with pytest.raises(ValueError):
            await client.attachment(bad, max_bytes=10)
    assert [c.path for c in api.calls if c.route == "attachment"] == ["/v1/attachments/abc.jpg"]


# ----------------------------------------------------------------------------- send


async def test_send_old_reply_shape(api: FakeSignalApi, client: SignalClient) -> None:
    result = await client.send(TRUSTED, "Check on Sam *now*",
                               quote={"timestamp": 1, "author": ALICE.number, "message": "q"})
    assert isinstance(result, SendResult) and result.failed == []
    assert result.timestamp.isdigit()
    call = await api.next_send()
    assert call.body["recipients"] == TRUSTED and call.body["number"] == ACCOUNT
    assert call.body["text_mode"] == "normal" and call.body["message"] == "Check on Sam *now*"
    assert (call.body["quote_timestamp"], call.body["quote_author"]) == (1, ALICE.number)


async def test_send_new_reply_shape_with_recipient_errors(api: FakeSignalApi,
                                                         client: SignalClient) -> None:
    api.reply_shape = "list"
    group = rest_group_id("internal-id")
    ok = await client.send([TRUSTED[0], group], "hi")
    assert ok.failed == [] and ok.timestamp.isdigit()
    api.fail_recipient(TRUSTED[1], "Unregistered user")
    res = await client.send(TRUSTED, "alert")
    assert [(f["number"], f["reason"]) for f in res.failed] == [(TRUSTED[1], "Unregistered user")]
    assert len(api.sends()) == 2


async def test_send_old_shape_recipient_error_is_permanent(api: FakeSignalApi,
                                                          client: SignalClient) -> None:
    api.fail_recipient(TRUSTED[1])
    with pytest.raises(SignalError) as err:
        await client.send(TRUSTED, "alert")
    assert err.value.permanent and err.value.status == 400 and TRUSTED[1] in err.value.message


async def test_send_guards(api: FakeSignalApi, client: SignalClient) -> None:
    for recipients in ([], [ACCOUNT], [TRUSTED[0], ACCOUNT]):
        with pytest.raises(ValueError):
            await client.send(recipients, "x")
    with pytest.raises(ValueError):
        await client.send(TRUSTED, "x", quote={"bogus": 1})
    with pytest.raises(SignalError) as err:
        await client.send(["not-a-number"], "x")
    assert err.value.permanent
    assert len(api.sends()) == 1


async def test_send_429_with_challenge_is_permanent(api: FakeSignalApi,
                                                   client: SignalClient) -> None:
    api.fault("send", status=429, challenge_tokens=["tok-1"], error="rate limited")
    with pytest.raises(SignalRateLimited) as err:
        await client.send(TRUSTED, "alert")
    assert err.value.permanent and err.value.challenge_tokens == ["tok-1"]
    assert len(api.sends()) == 1  # never retried by itself


async def test_429_retry_after(api: FakeSignalApi, client: SignalClient) -> None:
    api.fault("send", status=429, retry_after="7")
    with pytest.raises(SignalRateLimited) as err:
        await client.send(TRUSTED, "alert")
    assert (err.value.permanent, err.value.retry_after) == (False, 7.0)
    api.fault("about", status=429, retry_after="0")  # reads honour a short Retry-After
    assert (await client.about())["mode"] == "normal"
    assert [c.status for c in api.calls if c.route == "about"] == [429, 200]
    api.fault("about", status=429, retry_after="60")
    with pytest.raises(SignalRateLimited) as late:
        await client.about()
    assert late.value.retry_after == 60.0


async def test_500_hang_and_drop_are_temporary(api: FakeSignalApi) -> None:
    async with SignalClient(api.base_url, ACCOUNT, timeout=0.3) as c:
        api.fault("send", status=500)
        with pytest.raises(SignalUnreachable) as e500:
            await c.send(TRUSTED, "alert")
        assert (e500.value.permanent, e500.value.status) == (False, 500)
        api.fault("send", hang=5)
        t0 = time.monotonic()
        with pytest.raises(SignalUnreachable) as hung:
            await c.send(TRUSTED, "alert")
        assert hung.value.permanent is False and time.monotonic() - t0 < 2
        api.fault("receive", hang=5)
        with pytest.raises(SignalUnreachable):  # read timeout = client timeout + poll timeout
            await c.receive(timeout=1)
        api.fault("receive", drop=True)
        with pytest.raises(SignalUnreachable):
            await c.receive(timeout=1)
        api.fault("attachment", hang=5)
        with pytest.raises(SignalUnreachable):
            await c.attachment("x.jpg", max_bytes=10)
        assert (await c.send(TRUSTED, "alert")).timestamp
