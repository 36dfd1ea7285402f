"""The SMS connector end to end: the real App, httpx client and aiohttp listener, against the
SMS Gateway stand-in (tests/fakes/sms_gateway.py), which sends real signed webhooks with the
app's retries. Nothing of our own is mocked."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.sms.connector import CURSOR, SmsConnector
from tests.conftest import eventually as until
from tests.conftest import write_config
from tests.fakes.sms_gateway import FakeSmsGateway, Sms
from watcher.app import App
from watcher.core.config import ConfigError, load
from watcher.core.models import DeliveryError, IncidentState, parse_time

pytestmark = pytest.mark.timeout(60)

KEY = "a-long-random-signing-key-0123456789abcdef"
SAM = "+447700900001"  # Sam's phone, configured in local form below
SAM_LOCAL = "07700 900001"
JO = "+447700900003"  # a contact who acks by replying to the alert text
STRANGER = "+447700900099"
PHRASE = "ugh, the network went down at work"


def sms_config(url: str, extra: str = "", stale_after: str = "2h") -> str:
    return f"""
    [contacts.jo.sms]
    number = "{JO}"

    [people.sam.sms]
    numbers = ["{SAM_LOCAL}"]
    region = "GB"

    [connectors.sms]
    url = "{url}"
    password = {{ env = "SMS_PASSWORD" }}
    signing_key = {{ env = "SMS_KEY" }}
    listen = "127.0.0.1:0"
    owner = "alex"
    poll_interval = "1h"
    health_interval = "1s"
    stale_after = "{stale_after}"
    {extra}
    """


class Rig:
    """An App on a config pointing at the stand-in, running as in `watcher run`."""

    def __init__(self, tmp_path: Path, gw: FakeSmsGateway, stale_after: str = "2h",
                 db: Path | None = None) -> None:
        path = write_config(tmp_path, extra=sms_config(gw.base_url, stale_after=stale_after))
        self.config = load(path, environ={"SMS_PASSWORD": gw.password, "SMS_KEY": KEY})
        self.gw = gw
        self.db = db or tmp_path / "w.db"
        self.out = io.StringIO()
        self.stop_event = asyncio.Event()
        self.app = App(self.config, database=self.db, stdout=self.out)
        self.task: asyncio.Task[None] | None = None

    @property
    def sms(self) -> SmsConnector:
        found = [c for c in self.app.connectors if isinstance(c, SmsConnector)]
        assert len(found) == 1
        return found[0]

    @property
    def hook_url(self) -> str:
        return f"http://127.0.0.1:{self.sms.port}/hooks/sms"

    async def start(self, register: bool = True) -> Rig:
        self.task = asyncio.create_task(self.app.run(stop=self.stop_event))
        await until(lambda: self.sms.port is not None, "the webhook listener")
        if register and not self.gw.webhooks:
            await self.gw.register_webhook(self.hook_url)
        elif register:
            for hook in self.gw.webhooks.values():
                hook.url = self.hook_url  # a restarted watcher listens on a new port
        return self

    async def stop(self) -> None:
        self.stop_event.set()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
        await self.app.aclose()

    def incidents(self) -> list[Any]:
        return [i for i in self.app.store.incidents() if i.code == "network-down"]

    def seen(self) -> int:
        conn = self.app.store.conn
        return int(conn.execute("SELECT COUNT(*) FROM seen_events WHERE key LIKE 'sms:%'"
                                ).fetchone()[0])


@pytest.fixture
async def gw() -> Any:
    async with FakeSmsGateway(signing_key=KEY, time_factor=0.001) as gateway:
        yield gateway


def assert_silent(gw: FakeSmsGateway) -> None:
    """Nothing ever sent to Sam, in any form of the number."""
    for msg in gw.outbox.values():
        for number in msg.phone_numbers:
            assert number.replace(" ", "")[-9:] != SAM[-9:], "a text went to Sam's number"


async def test_a_code_in_a_text_alerts_and_a_reply_acks(
        tmp_path: Path, gw: FakeSmsGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    rig = await Rig(tmp_path, gw).start()
    try:
        sms = gw.receive_sms(SAM, PHRASE)
        await gw.wait_until(lambda: gw.completed(sms.event_ids[0]))
        assert len(rig.incidents()) == 1  # committed before the 200
        alert = await until(lambda: gw.sent_to(JO), "the alert texted to Jo")
        assert "network-down" in alert[0].text
        gw.receive_sms(JO, "OK")
        await until(lambda: rig.incidents()[0].state == IncidentState.ACKNOWLEDGED,
                    "Jo's ack by SMS")
        # A stranger's "OK" is neither acted on nor answered.
        before = len(gw.outbox)
        gw.receive_sms(STRANGER, "/standdown")
        await gw.wait_until(lambda: all(q.status == "completed" for q in gw.queue.values()))
        assert len(gw.outbox) == before
        assert rig.incidents()[0].state == IncidentState.ACKNOWLEDGED
        assert_silent(gw)
        # No number, text or key in the logs, at any level.
        for secret in (SAM[-9:], JO[-9:], STRANGER[-9:], PHRASE, KEY, gw.password):
            assert secret not in caplog.text
    finally:
        await rig.stop()


async def test_ack_with_number_and_chatter_gets_silence(tmp_path: Path,
                                                        gw: FakeSmsGateway) -> None:
    rig = await Rig(tmp_path, gw).start()
    try:
        gw.receive_sms(SAM, PHRASE)
        await until(lambda: gw.sent_to(JO), "the alert")
        sent = len(gw.outbox)
        gw.receive_sms(JO, "see you at dinner")  # Jo talking to Alex, not to the watcher
        await gw.wait_until(lambda: all(q.status == "completed" for q in gw.queue.values()))
        assert len(gw.outbox) == sent, [m.text for m in gw.outbox.values()]
        number = rig.incidents()[0].id
        gw.receive_sms(JO, f"/ack {number}")
        await until(lambda: rig.incidents()[0].state == IncidentState.ACKNOWLEDGED, "/ack N")
    finally:
        await rig.stop()


async def test_forged_stale_unsigned_and_tampered_requests_are_refused(
        tmp_path: Path, gw: FakeSmsGateway, caplog: pytest.LogCaptureFixture) -> None:
    rig = await Rig(tmp_path, gw).start(register=False)
    try:
        # A text the phone never had (else the gap fill would find it in the inbox).
        sms = Sms(SAM, PHRASE, int(time.time()) * 1000, 1, None)
        body = gw.sms_received_body(sms).encode()
        now = int(time.time())
        forged = gw.signed_headers(body, key="not-the-key")
        stale = gw.signed_headers(body, timestamp=now - 301)
        future = gw.signed_headers(body, timestamp=now + 301)
        unsigned = {"Content-Type": "application/json"}
        no_stamp = {k: v for k, v in gw.signed_headers(body).items() if k != "X-Timestamp"}
        tampered_body = body.replace(b"network", b"netw0rk")
        for headers, payload in [(forged, body), (stale, body), (future, body),
                                 (unsigned, body), (no_stamp, body),
                                 (gw.signed_headers(body), tampered_body)]:
            assert await gw.post_raw(rig.hook_url, payload, headers) == 401
        assert rig.seen() == 0 and rig.incidents() == []
        assert PHRASE not in caplog.text and SAM not in caplog.text
        # Within the window, correctly signed: stored.
        assert await gw.post_raw(rig.hook_url, body,
                                 gw.signed_headers(body, timestamp=now - 250)) == 200
        assert len(rig.incidents()) == 1
    finally:
        await rig.stop()


async def test_replays_and_redeliveries_fire_once(tmp_path: Path, gw: FakeSmsGateway) -> None:
    rig = await Rig(tmp_path, gw).start()
    try:
        sms = gw.receive_sms(SAM, PHRASE)
        event_id = sms.event_ids[0]
        await gw.wait_until(lambda: gw.completed(event_id))
        attempt = gw.attempts_for(event_id)[0]
        assert await gw.replay(attempt) == 200  # a captured request, within 5 minutes
        gw.redeliver(event_id)  # the app's own retry after a lost answer
        await gw.wait_until(lambda: len([a for a in gw.attempts_for(event_id)
                                         if a.status == 200]) == 2)
        # The same text exported again arrives under a new event id: one event still.
        again = gw.sms_received_body(sms).encode()
        assert await gw.post_raw(rig.hook_url, again, gw.signed_headers(again)) == 200
        assert rig.seen() == 1
        assert len(rig.incidents()) == 1
    finally:
        await rig.stop()


async def test_out_of_order_delivery_loses_nothing(tmp_path: Path, gw: FakeSmsGateway) -> None:
    rig = await Rig(tmp_path, gw).start()
    try:
        gw.hold()
        base = int(time.time()) * 1000 + 60_000  # after the watch began
        texts = [gw.receive_sms(SAM, f"ordinary text {n}", date_ms=base + 1000 * n)
                 for n in range(5)]
        gw.release("reverse")  # newest first
        await gw.wait_until(lambda: all(gw.completed(t.event_ids[0]) for t in texts))
        assert rig.seen() == 5
        # The cursor is the newest text's time, not the last one to arrive.
        cursor = rig.app.store.cursor(CURSOR)
        assert cursor is not None
        assert parse_time(cursor) == datetime.fromtimestamp((base + 4000) / 1000, UTC)
    finally:
        await rig.stop()


async def test_texts_while_the_watcher_was_down_are_filled_from_the_inbox(
        tmp_path: Path) -> None:
    # retry_count=0: a webhook that fails once is given up on, so only the gap fill can
    # bring those texts back (the worst case: the app's 45 hours of retries ran out).
    async with FakeSmsGateway(signing_key=KEY, time_factor=0.001, retry_count=0) as gw:
        rig = await Rig(tmp_path, gw).start()
        gw.receive_sms(SAM, "before the restart")
        await until(lambda: rig.seen() == 1, "the first text")
        await rig.stop()

        lost = gw.receive_sms(SAM, PHRASE)  # its webhook is refused: nobody listens
        await gw.wait_until(lambda: gw.rows(lost.event_ids[0])[0].status
                            == "permanently_failed")
        gw.receive_sms(SAM, "the app was killed", app_running=False)  # only in Android's store

        rig2 = await Rig(tmp_path / "again", gw, db=rig.db).start()
        try:
            await until(lambda: rig2.seen() == 3, "the gap filled from GET /inbox")
            assert len(rig2.incidents()) == 1
            assert ("POST", "/inbox/refresh", 202) in gw.calls
        finally:
            await rig2.stop()


async def test_a_phone_that_stops_reporting_is_a_blind_watch(tmp_path: Path,
                                                              gw: FakeSmsGateway) -> None:
    rig = await Rig(tmp_path, gw, stale_after="2s").start()
    try:
        await until(lambda: rig.app.store.cursor("sms/last-report"), "a health report")
        await gw.go_offline()

        def blind() -> Any:
            return [s for s in rig.app.supervisor.states() if s.feed == "sam/sms" and s.blind]

        state = (await until(blind, "the blind watch"))[0]
        assert state.detail.startswith(
            "Alex's phone has not reported for 2 seconds: is the SMS Gateway app running?")
        await until(lambda: any("WATCH BLIND" in d["text"] for d in
                                rig.app.store.deliveries() if d["contact"] == "jo"),
                    "the blind-watch alert queued for Jo")
        await gw.go_online()
        await until(lambda: not blind(), "the watch restored")
    finally:
        await rig.stop()


async def test_sending_refuses_a_watched_number_in_any_form(tmp_path: Path,
                                                            gw: FakeSmsGateway) -> None:
    rig = await Rig(tmp_path, gw).start()
    try:
        for form in (SAM, SAM_LOCAL, "+44 (0)7700 900001", "447700900001"):
            with pytest.raises(DeliveryError) as info:
                await rig.sms.send("jo", form, "hello")
            assert info.value.permanent
        # and the runner's guard says so before a row is ever handed to the channel
        assert rig.app.runner.guard.refusal("sms", "jo", SAM_LOCAL) is not None
        assert_silent(gw)
        assert await rig.sms.send("jo", JO, "a test") is not None
        assert gw.sent_to(JO)
    finally:
        await rig.stop()


def test_config_refuses_a_contact_number_that_is_a_watched_persons(tmp_path: Path) -> None:
    text = sms_config("http://127.0.0.1:9").replace(f'number = "{JO}"', f'number = "{SAM}"')
    path = write_config(tmp_path, extra=text)
    with pytest.raises(ConfigError) as info:
        load(path, environ={"SMS_PASSWORD": "x", "SMS_KEY": KEY})
    assert "contacts.jo" in str(info.value)


def test_config_refuses_numbers_that_are_not_numbers(tmp_path: Path) -> None:
    text = sms_config("http://127.0.0.1:9").replace('region = "GB"\n', "")
    path = write_config(tmp_path, extra=text)
    with pytest.raises(ConfigError) as info:
        load(path, environ={"SMS_PASSWORD": "x", "SMS_KEY": KEY})
    assert "people.sam.sms.numbers[0]" in str(info.value)


async def test_a_contacts_reply_is_acted_on_once_however_many_copies_arrive(
        tmp_path: Path, gw: FakeSmsGateway) -> None:
    rig = await Rig(tmp_path, gw).start()
    try:
        ask = gw.receive_sms(JO, "/status")
        answer = await until(lambda: gw.sent_to(JO), "the answer to /status")
        assert len(answer) == 1
        gw.redeliver(ask.event_ids[0])  # the app's retry after a lost 200
        await gw.wait_until(lambda: len([a for a in gw.attempts_for(ask.event_ids[0])
                                         if a.status == 200]) == 2)
        assert await rig.sms.fill() == 0  # the inbox's copy too
        assert len(gw.sent_to(JO)) == 1
    finally:
        await rig.stop()
    # After a restart, the gap fill reads the same reply again: still answered once.
    def fills() -> int:
        return gw.calls.count(("GET", "/inbox", 200))

    before = fills()
    rig2 = await Rig(tmp_path / "again", gw, db=rig.db).start()
    try:
        await until(lambda: fills() > before, "the gap fill at start")
        assert await rig2.sms.fill() == 0
        assert len(gw.sent_to(JO)) == 1
    finally:
        await rig2.stop()


async def test_a_phone_reporting_fail_is_reported(tmp_path: Path, gw: FakeSmsGateway) -> None:
    rig = await Rig(tmp_path, gw).start()
    try:
        gw.battery_level = 5  # the app's health answers "fail" (HTTP 500) under 10 %
        problem = await until(lambda: rig.app.store.feed_failing("sam/sms"), "the report")
        assert problem.startswith("Alex's phone reports a failure")
        gw.battery_level = 80
        await until(lambda: not rig.app.store.feed_failing("sam/sms"), "the phone recovered")
    finally:
        await rig.stop()


async def test_with_the_contacts_page_the_webhook_is_served_on_its_listener(
        tmp_path: Path, gw: FakeSmsGateway) -> None:
    """One listener: with [web] configured the SMS connector starts none of its own."""
    path = write_config(tmp_path, extra=sms_config(gw.base_url)
                        + '\n[web]\nlisten = "127.0.0.1:0"\n')
    config = load(path, environ={"SMS_PASSWORD": gw.password, "SMS_KEY": KEY})
    app = App(config, database=tmp_path / "w.db", stdout=io.StringIO())
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    try:
        web = app.web
        assert web is not None
        await until(lambda: web.port is not None, "the contacts' page listener")
        [sms] = [c for c in app.connectors if isinstance(c, SmsConnector)]
        assert sms.port is None  # no listener of its own
        await gw.register_webhook(f"http://127.0.0.1:{web.port}/hooks/sms")
        text = gw.receive_sms(SAM, PHRASE)
        await gw.wait_until(lambda: gw.completed(text.event_ids[0]))
        assert [i.code for i in app.store.incidents()] == ["network-down"]
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await app.aclose()
