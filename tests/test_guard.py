"""Nothing reaches the survivor's side: refused at load what the config shows, refused at the
moment of sending what only running shows, on every channel, and the others are told.

Issue #13's cases, through the real config loader, the Signal stand-in, real Apprise against
a loopback sink, and a property test over the one guard every outbox row passes."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from playbooks.channels import AppriseChannel, ConsoleChannel
from playbooks.guard import Guard
from playbooks.runner import PlaybookRunner
from tests.conftest import Clock, write_config
from tests.conftest import eventually as until
from tests.fakes.signal_api import (
    Contact,
    FakeSignalApi,
    group_message,
    make_contact,
    rest_group_id,
    text_message,
)
from watcher.app import App
from watcher.core.channel import Channel
from watcher.core.config import ConfigError, load
from watcher.core.models import Event
from watcher.core.store import Store
from watcher.supervision import failsafe

pytestmark = pytest.mark.timeout(60)

SAM_ID = 111222333  # Sam's Telegram user id
SAM_PHONE = "+447700900123"
JO_UUID = "0d0e0f10-0000-4000-8000-00000000000a"  # Jo's own uuid (a group contact needs it)
ACCOUNT = "+15550000001"
SAM = Contact("5a3e0c1e-0000-4000-8000-000000000005", "+15550000005", "Sam")
ALEX = make_contact("+15550000002", "Alex")
FAMILY = "family-internal-id"  # a Signal group Sam writes in
PHRASE = "Ugh, the network went down at work again"
NOT_SENT = "not sent: it would have reached Sam's side"
TELEGRAM = f"""
[connectors.telegram]
token = {{ env = "TG_TOKEN" }}
chats = [-1001000000001]

[people.sam.telegram]
user_id = {SAM_ID}
"""


def problems(tmp_path: Path, extra: str, environ: dict[str, str] | None = None) -> list[str]:
    path = write_config(tmp_path, extra=extra)
    try:
        load(path, environ={"TG_TOKEN": "1:x", **(environ or {})})
    except ConfigError as exc:
        return exc.problems
    return []


# -- at load ----------------------------------------------------------------------------

def test_a_contact_telegram_group_is_refused_at_load(tmp_path: Path) -> None:
    """A group where Sam posts but which is not in `chats`: the watcher cannot know who is
    in it, so no group or channel is ever a contact's chat."""
    found = problems(tmp_path, TELEGRAM + "[contacts.jo.telegram]\nchat_id = -1009999\n")
    assert any(p.startswith("contacts.jo.telegram.chat_id: -1009999 is a group or channel")
               for p in found), found


@pytest.mark.parametrize("url", [
    f"tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/{SAM_ID}",
    f"tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/{SAM_ID}/?format=text",
    "mailto://me:secret@example.org?to=sam@example.com",
    "mailtos://smtp.example.org?user=me&pass=x&to=SAM@Example.com",
    "mailto:sam@example.com",
    f"twilio://ACabc:token@+15551234567/{SAM_PHONE}",
    "twilio://ACabc:token@+15551234567/07700%20900123",  # national spelling of Sam's phone
    f"signal://localhost:8080/{ACCOUNT}/{SAM.number}",
    f"json://hooks.example.org/send?to={SAM.uuid}",
])
def test_an_apprise_url_to_sam_is_refused_at_load(tmp_path: Path, url: str) -> None:
    extra = TELEGRAM + f"""
    [people.sam.signal]
    uuid = "{SAM.uuid}"
    number = "{SAM.number}"

    [contacts.jo2]
    name = "Jo"
    apprise = ["{url}"]
    """
    path = write_config(tmp_path, extra=extra)
    path.write_text(path.read_text().replace(
        '[people.sam]\nname = "Sam"\n',
        f'[people.sam]\nname = "Sam"\naddresses = ["sam@example.com", "{SAM_PHONE}"]\n'))
    with pytest.raises(ConfigError) as caught:
        load(path, environ={"TG_TOKEN": "1:x"})
    assert any(p.startswith("contacts.jo2.apprise[0]: this URL sends to an address of "
                            "Sam's side") for p in caught.value.problems), caught.value.problems


@pytest.mark.parametrize("url", ["ntfy://alex-topic-7731", "json://hooks.example.org/alerts",
                                 "mailto://me:secret@example.org?to=alex@example.org"])
def test_apprise_urls_that_reach_no_watched_person_load(tmp_path: Path, url: str) -> None:
    extra = TELEGRAM + f'\n[contacts.jo2]\nname = "Jo"\napprise = ["{url}"]\n'
    assert problems(tmp_path, extra) == []


def test_a_contact_given_sams_number_in_another_spelling_is_refused(tmp_path: Path) -> None:
    extra = f"""
    [connectors.signal]
    number = "{ACCOUNT}"

    [people.sam.signal]
    number = "+1 (555) 000-0005"

    [contacts.jo.signal]
    number = "{SAM.number}"
    """
    found = problems(tmp_path, extra)
    assert any(p.startswith("contacts.jo.signal.number: this is the number of watched person")
               for p in found), found


# -- at send: Signal, through the stand-in ---------------------------------------------

def signal_config(url: str, jo: str) -> str:
    return f"""
    [contacts.alex.signal]
    number = "{ALEX.number}"

    [contacts.jo.signal]
    {jo}

    [connectors.signal]
    url = "{url}"
    number = "{ACCOUNT}"
    poll_interval = "1s"

    [people.sam.signal]
    uuid = "{SAM.uuid}"
    """


@pytest.fixture
async def api() -> AsyncIterator[FakeSignalApi]:
    async with FakeSignalApi(ACCOUNT) as fake:
        yield fake


async def run_app(tmp_path: Path, api: FakeSignalApi, jo: str) -> tuple[App, asyncio.Event,
                                                                       asyncio.Task[None]]:
    path = write_config(tmp_path, extra=signal_config(api.base_url, jo))
    app = App(load(path, environ={}), database=tmp_path / "w.db", stdout=io.StringIO())
    stop = asyncio.Event()
    return app, stop, asyncio.create_task(app.run(stop=stop))


def texts_to(api: FakeSignalApi, recipient: str) -> list[str]:
    return [str(c.body["message"]) for c in api.sends()
            if recipient in c.body.get("recipients", []) and c.status == 201]


async def test_sam_by_uuid_only_and_a_contact_given_sams_number(tmp_path: Path,
                                                                api: FakeSignalApi) -> None:
    """The config cannot tell; Sam's envelope shows the number, and the guard holds it."""
    app, stop, task = await run_app(tmp_path, api, f'number = "{SAM.number}"')
    try:
        api.inject(text_message(SAM, PHRASE))
        await until(lambda: any(NOT_SENT in t for t in texts_to(api, ALEX.number or "")),
                    "Alex told that Jo's alert was not sent")
        assert SAM.number not in api.sent_to()
        failed = [d for d in app.store.deliveries()
                  if d["contact"] == "jo" and d["channel"] == "signal"]
        assert failed and all(d["status"] == "failed" and d["error"] == NOT_SENT
                              for d in failed)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await app.aclose()


async def test_a_contact_group_sam_writes_in(tmp_path: Path, api: FakeSignalApi) -> None:
    """docs/signal.md used to suggest exactly this: a group with Sam and the contacts."""
    group = rest_group_id(FAMILY)
    app, stop, task = await run_app(tmp_path, api, f'group = "{group}"\nuuid = "{JO_UUID}"')
    try:
        api.inject(group_message(SAM, FAMILY, "dinner at 7?"))
        await until(lambda: ("signal", group, "sam") in app.store.places(), "the place learnt")
        api.inject(group_message(SAM, FAMILY, PHRASE))
        await until(lambda: any(NOT_SENT in t for t in texts_to(api, ALEX.number or "")),
                    "Alex told that Jo's alert was not sent")
        assert group not in api.sent_to()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await app.aclose()


async def test_a_contact_group_with_sam_in_it_is_refused_from_the_start(
        tmp_path: Path, api: FakeSignalApi) -> None:
    """Before Sam ever writes there: the members listed at start say it."""
    group = rest_group_id(FAMILY)
    api.groups = [{"id": group, "internal_id": FAMILY, "name": "Family", "members":
                   [ACCOUNT, ALEX.number, SAM.uuid], "pending_invites": [], "admins": []},
                  {"id": rest_group_id("other"), "internal_id": "other", "members": [ACCOUNT]}]
    app, stop, task = await run_app(tmp_path, api, f'group = "{group}"\nuuid = "{JO_UUID}"')
    try:
        await until(lambda: ("signal", group, "sam") in app.store.places(), "the place")
        problem = next(h for h in app.store.health() if h["feed"] == "signal-contact-groups")
        assert problem["blind_since"] and "contacts.jo.signal.group" in problem["detail"]
        # A contact's command in that group is answered nowhere: the answer would go there.
        api.inject(group_message(ALEX, FAMILY, "/status"))
        api.inject(text_message(SAM, PHRASE))  # handled after it, in order
        await until(lambda: any(NOT_SENT in t for t in texts_to(api, ALEX.number or "")),
                    "Alex told that Jo's alert was not sent")
        assert group not in api.sent_to()
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await app.aclose()


async def test_the_database_failure_notice_passes_the_guard(tmp_path: Path,
                                                            api: FakeSignalApi) -> None:
    """failsafe.tell_everyone sends around the outbox, never around the guard: with the
    database unreadable the places last read still hold."""
    path = write_config(tmp_path, extra=signal_config(api.base_url,
                                                      f'number = "{SAM.number}"'))
    config = load(path, environ={})
    store = Store(tmp_path / "w.db")
    event = Event("signal", "sam", "message", "x/1", datetime(2026, 1, 1, tzinfo=UTC),
                  places=(SAM.number or "",))
    with store.transaction():
        store.record_places(event, event.at)
    guard = Guard(config, store)
    assert guard.refusal("signal", "jo", SAM.number or "") == NOT_SENT
    store.close()  # from here on the store cannot be read: the guard keeps what it knew
    from connectors.signal.connector import SignalConnector

    connector = SignalConnector(config)
    try:
        sent = await failsafe.tell_everyone(config, {"signal": connector}, "stopped", guard)
    finally:
        await connector.close()
    assert sent == 1 and api.sent_to() == {ALEX.number}


# -- at send: real Apprise, a secret URL the loader could not read ------------------------

@pytest.fixture
async def hook() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(json.loads(await request.text()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"json://127.0.0.1:{port}/hook", received
    await runner.cleanup()


def secret_config(tmp_path: Path, people: str) -> Path:
    path = write_config(tmp_path, extra=people)
    raw = path.read_text()
    raw = raw.replace('[contacts.alex]\nname = "Alex"\nconsole = true\n',
                      '[contacts.alex]\nname = "Alex"\napprise = [{ env = "ALEX_URL" }]\n')
    raw = raw.replace('[contacts.jo]\nname = "Jo"\nconsole = true\n',
                      '[contacts.jo]\nname = "Jo"\napprise = [{ env = "JO_URL" }]\n')
    raw = raw.replace('[people.sam]\nname = "Sam"\n',
                      '[people.sam]\nname = "Sam"\naddresses = ["sam@example.com"]\n')
    path.write_text(raw)
    return path


@pytest.mark.parametrize("secret", [
    f"tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/{SAM_ID}",
    "mailtos://me:pw@example.org?to=sam@example.com",
])
def test_a_secret_apprise_url_to_sam_is_refused_at_load(tmp_path: Path, secret: str) -> None:
    path = secret_config(tmp_path, f"[people.sam.telegram]\nuser_id = {SAM_ID}\n")
    with pytest.raises(ConfigError) as caught:
        load(path, environ={"ALEX_URL": "json://127.0.0.1/hook", "JO_URL": secret})
    assert caught.value.problems == [
        "contacts.jo.apprise[0]: the URL in this secret sends to an address of Sam's side; "
        "alerts must never go there"]  # and the secret is not repeated


@pytest.mark.parametrize("secret", [
    f"twilio://ACabc:token@+15551234567/{SAM.number}",  # an SMS to Sam's number
    f"signal://localhost:8080/{ACCOUNT}/group.ZmFtaWx5",  # a Signal group Sam writes in
])
async def test_a_secret_apprise_url_to_a_place_learnt_at_run_time_is_refused_at_send(
        tmp_path: Path, hook: tuple[str, list[dict[str, Any]]], secret: str) -> None:
    """Sam is configured by uuid only: their number, and the group they write in, are only
    known once an event shows them."""
    url, received = hook
    path = secret_config(tmp_path, f'[people.sam.signal]\nuuid = "{SAM.uuid}"\n')
    config = load(path, environ={"ALEX_URL": url, "JO_URL": secret})
    clock = Clock()
    store = Store(tmp_path / "w.db")
    channels: dict[str, Channel] = {"apprise": AppriseChannel(config, config.secrets)}
    runner = PlaybookRunner(config, store, channels, clock)
    from detectors.codes import build_detectors
    from watcher.engine.engine import Engine

    engine = Engine(config, store, build_detectors(config)[0], clock)
    await engine.ingest(Event("signal", "sam", "message", "e/1", clock(), text=PHRASE,
                              places=(SAM.number or "", SAM.uuid, "group.ZmFtaWx5")))
    while await runner.tick():
        pass
    messages = [str(r["message"]) for r in received]
    assert any("used the 'network-down' code" in m for m in messages)
    assert any(NOT_SENT in m and "Jo" in m for m in messages), messages
    clock.advance(minutes=5)  # the playbook notifies Jo again: refused again, told once
    while await runner.tick():
        pass
    jo = [d for d in store.deliveries() if d["contact"] == "jo"]
    assert len(jo) == 2 and all(d["status"] == "failed" and d["error"] == NOT_SENT for d in jo)
    assert sum(NOT_SENT in str(r["message"]) for r in received) == 1
    store.close()


# -- the property: no watched place is ever handed to a channel ---------------------------

class Recorder:
    """A channel that records what it was handed (a stand-in for a platform, not for code
    of ours: the runner and the guard under test are the real ones)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.handed: list[str] = []

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        self.handed.append(address)
        return None


def is_uuid(text: str) -> bool:
    return len(text) == 36 and text.count("-") == 4


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


PLACE = st.one_of(
    st.tuples(st.just("telegram"), st.integers(-10**13, 10**10).map(str)),
    st.tuples(st.just("signal"), st.sampled_from(
        ["group.ZmFtaWx5", "group.b3RoZXI=", SAM_PHONE, "+15550000042", SAM.uuid])),
)
SPELLINGS = st.sampled_from([SAM_PHONE, "+44 7700 900123", "0044 7700-900-123",
                             "07700 900123", "+15550000042", "+15550000077", "group.ZmFtaWx5",
                             "group.b3RoZXI=", "GROUP.zmFtAWx5", SAM.uuid.upper(), SAM.uuid])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(places=st.lists(PLACE, max_size=6),
       rows=st.lists(st.one_of(
           st.tuples(st.just("telegram"), st.one_of(st.just(str(SAM_ID)),
                                                    st.integers(-10**13, 10**10).map(str))),
           st.tuples(st.just("signal"), SPELLINGS)), min_size=1, max_size=12),
       learned_from=st.sampled_from(["events", "rows first"]))
def test_no_outbox_row_to_a_watched_place_reaches_a_channel(
        tmp_path: Path, places: list[tuple[str, str]], rows: list[tuple[str, str]],
        learned_from: str) -> None:
    path = write_config(tmp_path, extra=f"""
    [people.sam.telegram]
    user_id = {SAM_ID}
    """)
    config = load(path, environ={})
    store = Store(None)
    clock = Clock()
    recorders = {"telegram": Recorder("telegram"), "signal": Recorder("signal")}
    channels: dict[str, Channel] = {**recorders, "console": ConsoleChannel(config, io.StringIO())}
    runner = PlaybookRunner(config, store, channels, clock)

    def learn() -> None:
        with store.transaction():
            for platform, place in places:
                store.record_places(Event(platform, "sam", "message", place, clock(),
                                          places=(place,)), clock())

    if learned_from == "events":
        learn()
    with store.transaction():
        for channel, address in rows:
            store.enqueue(None, "alex", channel, address, "alert", clock(), "reminder")
    if learned_from == "rows first":
        learn()  # learnt after the row was queued, before it is sent: still refused
    asyncio.run(runner.deliver_due())

    # What is watched, decided here independently of the guard's own keys.
    telegram = {str(SAM_ID)} | {p for k, p in places if k == "telegram"}
    signal_groups = {p.lower() for k, p in places if k == "signal" and p.startswith("group.")}
    signal_ids = {p.lower() for k, p in places if k == "signal" and is_uuid(p)}
    phones = {digits(p)[-9:] for k, p in places if k == "signal" and p.startswith("+")}

    def watched(channel: str, address: str) -> bool:
        if channel == "telegram":
            return address in telegram
        if address.lower().startswith("group.") or is_uuid(address):
            return address.lower() in signal_groups | signal_ids
        return digits(address)[-9:] in phones

    for name, recorder in recorders.items():
        assert not [a for a in recorder.handed if watched(name, a)]
    for row in store.deliveries():
        refused = watched(row["channel"], row["address"])
        assert (row["status"] == "failed") == refused, row
    store.close()


# -- at send: a Telegram group Sam posts in, learnt through the Bot API stand-in ------------

async def test_a_telegram_group_sam_posts_in_is_learnt_and_refused(tmp_path: Path) -> None:
    """Sam posts in a group that is not in `chats` (the bot is there for another reason);
    an Apprise tgram:// URL held as a secret sends to that group: refused, Alex told."""
    from tests.fakes.telegram_api import FakeTelegram

    sam, alex, other = 5001, 5002, -1007777777777
    async with FakeTelegram() as tg:
        tg.add_user(sam, "Sam")
        tg.add_user(alex, "Alex")
        tg.add_chat(other, "supergroup", "Book club")
        tg.set_bot_member(other, "member")
        path = write_config(tmp_path, extra=f"""
        [people.sam.telegram]
        user_id = {sam}

        [contacts.alex.telegram]
        chat_id = {alex}

        [connectors.telegram]
        token = {{ env = "TG_TOKEN" }}
        api_url = "{tg.url}"
        poll_timeout = 5
        """)
        path.write_text(path.read_text().replace(
            '[contacts.jo]\nname = "Jo"\nconsole = true\n',
            '[contacts.jo]\nname = "Jo"\napprise = [{ env = "JO_URL" }]\n'))
        config = load(path, environ={"TG_TOKEN": tg.token,
                                     "JO_URL": f"tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K"
                                               f"5PALDsaw/{other}"})
        app = App(config, database=tmp_path / "w.db", stdout=io.StringIO())
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        try:
            await tg.wait_polling(timeout=8)
            tg.inject_message(other, sam, "see you thursday")
            await until(lambda: ("telegram", str(other), "sam") in app.store.places(),
                        "the group learnt as Sam's place")
            tg.inject_message(other, sam, PHRASE)
            await until(lambda: any(NOT_SENT in m.get("text", "")
                                    for m in tg.sent_messages(alex)), "Alex told")
            assert tg.writes_to(other) == [] and tg.writes_to(sam) == []
            jo = [d for d in app.store.deliveries() if d["contact"] == "jo"]
            assert jo and all(d["status"] == "failed" and d["error"] == NOT_SENT for d in jo)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await app.aclose()


# -- where an event says it happened ------------------------------------------------------

def test_telegram_events_name_their_chat_but_a_business_chat_is_no_place() -> None:
    """A business chat's id is the customer's user id, i.e. that of the customer's own
    private chat with the bot: Sam writing to Jo there must not make Jo's chat Sam's."""
    from telegram import Chat, Message, User

    from connectors.telegram.translate import message_event

    at = datetime(2026, 1, 1, tzinfo=UTC)
    sam = User(SAM_ID, "Sam", False)
    group = Message(1, at, Chat(-1001234, Chat.SUPERGROUP), from_user=sam, text="hi")
    business = Message(2, at, Chat(5003, Chat.PRIVATE), from_user=sam, text="hi",
                       business_connection_id="conn-1")
    assert message_event("message", group, "sam", ()).places == ("-1001234",)
    assert message_event("business_message", business, "sam", ()).places == ()


def test_signal_envelopes_name_the_group_and_the_senders_addresses() -> None:
    from connectors.signal.translate import Directory, person_draft

    directory = Directory(ACCOUNT, person_uuids={SAM.uuid: "sam"})
    draft = person_draft(directory, "sam", group_message(SAM, FAMILY, "hi"))
    assert draft is not None
    assert draft.event.places == (SAM.number, SAM.uuid, rest_group_id(FAMILY))
