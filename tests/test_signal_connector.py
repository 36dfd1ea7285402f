"""The Signal connector end to end: the real App, client, HTTP and websockets, against the
signal-cli-rest-api stand-in in both modes. Nothing of our own is mocked."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import connectors.signal.connector
from connectors.signal.connector import SignalConnector
from tests.conftest import EXAMPLES, write_config
from tests.conftest import eventually as until
from tests.fakes.signal_api import (
    Contact,
    FakeSignalApi,
    Mode,
    attachment_message,
    edit_message,
    group_message,
    make_blob,
    make_contact,
    quote_reply,
    reaction,
    receipt,
    sync_sent,
    text_message,
    typing,
)
from watcher.app import App
from watcher.core.config import load
from watcher.core.models import DeliveryError, IncidentState

pytestmark = pytest.mark.timeout(30)

ACCOUNT = "+15550000001"  # the account the service serves (a spare number)
BOT = Contact("0b07a1e2-0000-4000-8000-000000000001", ACCOUNT, "Watcher")
SAM = Contact("5a3e0c1e-0000-4000-8000-000000000005", "+15550000005", "Sam")
ALEX = make_contact("+15550000002", "Alex")
JO = make_contact("+15550000003", "Jo")
MUM = Contact("3c0ffee0-0000-4000-8000-000000000004", "+15550000004", "Mum")
STRANGER = make_contact("+15550000099", "Stranger")
MUM_POST = 1_700_000_000_123  # the message of Mum's that Sam reacts to as a code
PHRASE = "Ugh, the network went down at work again"
FLOWER = (EXAMPLES / "photos" / "flower-as-posted.jpg").read_bytes()
ALLOWED = {"about", "health", "receive", "attachment", "delete_attachment", "send", "devices",
           "groups"}  # all reads but send; send only ever to contacts (assert_silent)


def signal_config(url: str, mode: str, account: str = ACCOUNT) -> str:
    # Contacts are reached on Signal unless the account is Sam's own (setup 3 in the docs).
    contacts = "" if account == SAM.number else f"""
    [contacts.alex.signal]
    number = "{ALEX.number}"

    [contacts.jo.signal]
    number = "{JO.number}"
    """
    return contacts + f"""
    [connectors.signal]
    url = "{url}"
    number = "{account}"
    mode = "{mode}"
    poll_interval = "1s"

    [people.sam.signal]
    uuid = "{SAM.uuid}"
    number = "{SAM.number}"

    [codes.thumbs]
    person = "sam"
    reaction = {{ on = "signal:{MUM.uuid}/{MUM_POST}", emoji = "👍" }}
    playbook = "check-on-me"
    """



class Rig:
    """An App on a config pointing at the stand-in, running as in `watcher run`."""

    def __init__(self, tmp_path: Path, api: FakeSignalApi, mode: str = "auto",
                 account: str = ACCOUNT) -> None:
        path = write_config(tmp_path, extra=signal_config(api.base_url, mode, account))
        self.config = load(path, environ={})
        self.api = api
        self.db = tmp_path / "w.db"
        self.out = io.StringIO()
        self.stop_event = asyncio.Event()
        self.app = App(self.config, database=self.db, stdout=self.out)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Rig:
        self.task = asyncio.create_task(self.app.run(stop=self.stop_event))
        return self

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
        await self.app.aclose()

    def incidents(self, code: str | None = None) -> list[Any]:
        return [i for i in self.app.store.incidents() if code is None or i.code == code]

    def signal_rows(self, contact: str, status: str = "sent") -> list[dict[str, Any]]:
        return [d for d in self.app.store.deliveries() if d["channel"] == "signal"
                and d["contact"] == contact and d["status"] == status]

    def texts_to(self, number: str | None) -> list[str]:
        return [c.body["message"] for c in self.api.sends()
                if number in c.body.get("recipients", []) and c.status == 201]

    async def alert_ref(self, contact: str = "alex") -> int:
        await until(lambda: bool(self.signal_rows(contact)))
        return int(self.signal_rows(contact)[0]["platform_ref"])

    def health(self, feed: str) -> dict[str, Any]:
        return next((h for h in self.app.store.health() if h["feed"] == feed), {})


def assert_silent(api: FakeSignalApi) -> None:
    """The rules never broken, checked over everything the stand-in saw."""
    assert not {SAM.number, SAM.uuid, ACCOUNT} & api.sent_to()
    assert all(p.get("send_read_receipts") == "false" for p in api.receive_params())
    assert {c.route for c in api.calls} <= ALLOWED  # no receipts, typing, reactions


@pytest.fixture(params=["normal", "json-rpc"])
async def any_api(request: pytest.FixtureRequest) -> AsyncIterator[FakeSignalApi]:
    mode: Mode = request.param
    async with FakeSignalApi(ACCOUNT, mode=mode) as api:
        yield api
        assert_silent(api)


@pytest.fixture
async def api() -> AsyncIterator[FakeSignalApi]:
    async with FakeSignalApi(ACCOUNT, mode="normal") as fake:
        yield fake
        assert_silent(fake)


@pytest.fixture
async def rpc_api() -> AsyncIterator[FakeSignalApi]:
    async with FakeSignalApi(ACCOUNT, mode="json-rpc") as fake:
        yield fake
        assert_silent(fake)


async def running(tmp_path: Path, api: FakeSignalApi, **kw: Any) -> Rig:
    rig = Rig(tmp_path, api, **kw).start()
    if api.mode == "json-rpc":
        await api.wait_for_listeners()
    return rig


# ----------------------------------------------------------------------------- both modes


async def test_codes_alert_and_quote_acknowledges(tmp_path: Path,
                                                  any_api: FakeSignalApi) -> None:
    api = any_api
    rig = await running(tmp_path, api)
    try:
        api.inject(text_message(STRANGER, PHRASE))  # a stranger's words are never a code
        api.inject(typing(SAM))
        api.inject(text_message(SAM, PHRASE))
        await until(lambda: len(rig.incidents()) == 1)
        incident = rig.incidents()[0]
        assert incident.code == "network-down" and incident.person == "sam"
        ref = await rig.alert_ref("alex")
        await rig.alert_ref("jo")
        assert "Sam used the 'network-down' code" in rig.texts_to(ALEX.number)[0]
        api.inject(quote_reply(ALEX, "on it", BOT, ref, "Sam used the code"))
        await until(lambda: rig.incidents()[0].state == IncidentState.ACKNOWLEDGED)
        await until(lambda: any("Alex is handling" in t for t in rig.texts_to(JO.number)))
        await until(lambda: any("Thank you" in t for t in rig.texts_to(ALEX.number)))
        assert STRANGER.number not in api.sent_to()
        assert rig.health("sam/signal")["failures"] == 0
    finally:
        await rig.stop()


async def test_photo_reaction_group_and_edit_codes(tmp_path: Path,
                                                   any_api: FakeSignalApi) -> None:
    api = any_api
    rig = await running(tmp_path, api)
    try:
        blob = make_blob(FLOWER)
        api.inject(attachment_message(SAM, [blob], "garden"), blobs=[blob])
        await until(lambda: len(rig.incidents("flower")) == 1)
        await until(lambda: blob.id not in api.attachments)  # deleted once stored
        api.inject(reaction(SAM, "👍", MUM, MUM_POST, remove=True))  # un-liking never fires
        api.inject(reaction(SAM, "👍", MUM, MUM_POST))
        await until(lambda: len(rig.incidents("thumbs")) == 1)
        api.inject(group_message(SAM, "ZmFtaWx5LWdyb3Vw", PHRASE))
        await until(lambda: len(rig.incidents("network-down")) == 1)
        first = text_message(SAM, "see you later")
        api.inject(first)
        api.inject(edit_message(SAM, first["timestamp"], PHRASE))
        await until(lambda: len(rig.incidents("network-down")) == 2)
        edited = rig.incidents("network-down")[1]
        assert edited.event_key == f"signal:{SAM.uuid}/{first['timestamp']}/edit/" \
            + edited.event_key.rsplit("/", 1)[1]
    finally:
        await rig.stop()


# ----------------------------------------------------------------------------- normal mode


async def test_reaction_acknowledges_and_others_are_told(tmp_path: Path,
                                                         api: FakeSignalApi) -> None:
    rig = await running(tmp_path, api)
    try:
        api.inject(text_message(SAM, PHRASE))
        ref = await rig.alert_ref("jo")
        api.inject(receipt(JO, [ref]))
        api.inject(reaction(STRANGER, "👍", BOT, ref))  # not a contact: no effect, no reply
        api.inject(reaction(JO, "👍", BOT, ref))
        await until(lambda: rig.incidents()[0].state == IncidentState.ACKNOWLEDGED)
        await until(lambda: any("Jo is handling" in t for t in rig.texts_to(ALEX.number)))
        assert rig.app.store.acked_by(rig.incidents()[0].id) == "jo"
    finally:
        await rig.stop()


async def test_restart_loses_nothing(tmp_path: Path, api: FakeSignalApi) -> None:
    rig = await running(tmp_path, api)
    blob = make_blob(FLOWER)
    # The service acknowledges the batch when it returns it; then the photo cannot be
    # fetched and the watcher stops: the batch must survive in the store.
    api.fault("attachment", drop=True)
    api.inject(attachment_message(SAM, [blob]), blobs=[blob])
    api.inject(text_message(SAM, PHRASE))
    await until(lambda: any(c.route == "attachment" for c in api.calls))
    await until(lambda: bool(rig.health("sam/signal").get("blind_since")))
    assert rig.incidents() == [] and all(r.delivered_at for r in api.injected)
    await rig.stop()
    api.inject(reaction(SAM, "👍", MUM, MUM_POST))  # while the watcher is down
    again = await running(tmp_path, api)
    try:
        await until(lambda: {i.code for i in again.incidents()}
                    == {"flower", "network-down", "thumbs"})
        await until(lambda: not api.attachments)
        assert len(again.incidents()) == 3
    finally:
        await again.stop()


async def test_captcha_rate_limit_is_reported(tmp_path: Path, api: FakeSignalApi) -> None:
    api.fault("send", status=429, challenge_tokens=["chal-tok-1"], times=50)
    rig = await running(tmp_path, api)
    try:
        api.inject(text_message(SAM, PHRASE))
        await until(lambda: bool(rig.signal_rows("alex", "failed")))
        sending = rig.health("signal-sending")
        assert "captcha" in sending["detail"] and "chal-tok-1" in sending["detail"]
        assert sending["blind_since"]
        failed = rig.signal_rows("alex", "failed")[0]
        assert "captcha" in failed["error"] and PHRASE not in failed["error"]
    finally:
        await rig.stop()


async def test_survivors_own_linked_account_only_watches(tmp_path: Path) -> None:
    own = FakeSignalApi(SAM.number or "", mode="normal")
    async with own:
        rig = await running(tmp_path, own, account=SAM.number or "")
        connector = rig.app.connectors[0]
        assert isinstance(connector, SignalConnector)
        try:
            own.inject(sync_sent(SAM, MUM, PHRASE))  # Sam typed it on her phone
            await own.wait_delivered(own.inject(text_message(ALEX, "ok")))  # to Sam, not us
            await until(lambda: len(rig.incidents()) == 1)
            with pytest.raises(DeliveryError, match="would show on their phone"):
                await connector.send("alex", ALEX.number or "", "alert")
            assert own.sends() == [] and rig.incidents()[0].state == IncidentState.OPEN
        finally:
            await rig.stop()
        assert_silent(own)


async def test_never_sends_to_a_watched_person(tmp_path: Path, api: FakeSignalApi) -> None:
    rig = await running(tmp_path, api)
    connector = rig.app.connectors[0]
    assert isinstance(connector, SignalConnector)
    try:
        for address in (SAM.number or "", "+1 555-000-0005", ACCOUNT):
            with pytest.raises(DeliveryError) as caught:
                await connector.send("alex", address, "secret words")
            assert caught.value.permanent and "secret words" not in caught.value.message
        api.inject(text_message(SAM, PHRASE))
        await rig.alert_ref("alex")
        api.inject(text_message(SAM, "/status"))  # a watched person is never answered
        await api.wait_delivered(api.inject(quote_reply(SAM, "ok", BOT, 1, "x")))
        await until(lambda: len(rig.signal_rows("jo")) == 1)
    finally:
        await rig.stop()
    assert_silent(api)
    assert all(c.body["number"] == ACCOUNT for c in api.sends())


# ----------------------------------------------------------------------------- json-rpc mode


async def test_websocket_cut_is_reported_as_gap(tmp_path: Path,
                                                rpc_api: FakeSignalApi) -> None:
    api = rpc_api
    rig = await running(tmp_path, api)
    try:
        api.fault("about", hang=1.0)  # the reconnect takes a second: a real gap
        await api.cut_websockets()
        await until(lambda: "websocket was cut" in (rig.health("sam/signal").get("detail")
                                                    or ""))
        lost = api.inject(text_message(SAM, PHRASE))
        assert lost.dropped
        await api.wait_for_listeners()
        await until(lambda: rig.health("sam/signal")["failures"] == 0)
        api.inject(text_message(SAM, PHRASE))
        await until(lambda: len(rig.incidents()) == 1)
        upgrades = [c for c in api.calls if c.route == "receive"]
        assert len(upgrades) == 2  # reconnected at once, no backoff after one cut
    finally:
        await rig.stop()


async def test_once_reads_briefly(tmp_path: Path, rpc_api: FakeSignalApi) -> None:
    rig = Rig(tmp_path, rpc_api)
    waiter = asyncio.create_task(rig.app.run(once=True))
    await rpc_api.wait_for_listeners()
    rpc_api.inject(text_message(SAM, PHRASE))
    await asyncio.wait_for(waiter, 10)
    assert len(rig.incidents()) == 1 and rpc_api.listeners == 0
    await rig.app.aclose()


async def test_unregistered_account_needs_a_person(tmp_path: Path,
                                                   api: FakeSignalApi) -> None:
    rig = Rig(tmp_path, api, account="+15550000777")
    await rig.app.run(once=True)
    health = rig.health("sam/signal")
    assert "not registered" in health["detail"] and "qrcodelink" in health["detail"]
    await rig.app.aclose()


async def test_wrong_mode_is_refused(tmp_path: Path, api: FakeSignalApi) -> None:
    rig = Rig(tmp_path, api, mode="json-rpc")
    await rig.app.run(once=True)
    assert 'mode = "json-rpc"' in rig.health("sam/signal")["detail"]
    assert api.receive_params() == []  # never opened a websocket on a normal-mode service
    await rig.app.aclose()


@pytest.mark.parametrize("how", ["unlinked", "unregistered"])
async def test_a_lost_account_is_blind_within_one_poll_and_restored(
        tmp_path: Path, any_api: FakeSignalApi, how: str) -> None:
    """The phone removes the linked device (Signal refuses signal-cli's login) or the number
    is unregistered, while the watcher runs: the next receive fails, the contacts are told
    at once (no stale_after grace) what happened and what to do; once linked again, a read
    restores the watch and a code is seen."""
    rig = await running(tmp_path, any_api)
    await until(lambda: rig.health("sam/signal").get("last_ok"), "a first read")
    if any_api.mode == "json-rpc":
        await any_api.wait_for_listeners()
    any_api.lose_account(how)
    if any_api.mode == "json-rpc":
        await any_api.cut_websockets()  # a json-rpc reader learns on its next connect
    blind = await until(lambda: [d for d in rig.app.store.deliveries()
                                 if d["kind"] == "blind" and d["channel"] == "console"],
                        "a blind-watch alert")
    expected = "linked device was removed" if how == "unlinked" else "not registered"
    assert expected in blind[0]["text"] and "qrcodelink" in blind[0]["text"]
    health = rig.health("sam/signal")
    assert health["permanent"] == 1 and ACCOUNT not in health["detail"]
    any_api.restore_account()
    await until(lambda: [d for d in rig.app.store.deliveries() if d["kind"] == "recovered"],
                "the watch restored", timeout=20)
    any_api.inject(text_message(SAM, PHRASE))
    await until(rig.incidents, "a code after the return")
    await rig.stop()


async def test_json_rpc_notices_a_lost_account_while_the_websocket_stays_open(
        tmp_path: Path, rpc_api: FakeSignalApi, monkeypatch: pytest.MonkeyPatch) -> None:
    """In json-rpc mode an open websocket says nothing about the account: once the phone
    unlinks the device the service may just go quiet. The periodic account check (GET
    /v1/devices, read-only) finds it; the first check that works again restores it."""
    monkeypatch.setattr(connectors.signal.connector, "ACCOUNT_CHECK", 0.2)
    rig = await running(tmp_path, rpc_api)
    rpc_api.lose_account("unlinked")
    blind = await until(lambda: [d for d in rig.app.store.deliveries()
                                 if d["kind"] == "blind" and d["channel"] == "console"],
                        "a blind-watch alert")
    assert "linked device was removed" in blind[0]["text"]
    assert rpc_api.listeners == 1  # the websocket never closed
    rpc_api.restore_account()
    await until(lambda: [d for d in rig.app.store.deliveries() if d["kind"] == "recovered"],
                "the watch restored")
    await rig.stop()
