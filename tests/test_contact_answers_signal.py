"""Who may act on Signal, tried as an attacker would, through the real client against the
signal-cli-rest-api stand-in: a stranger in the contacts' group, a contact's number under
another uuid, a contact whose number is hidden."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors.signal.translate import Directory
from tests.conftest import eventually, write_config
from tests.fakes.signal_api import (
    Contact,
    FakeSignalApi,
    group_message,
    make_contact,
    quote_reply,
    rest_group_id,
    text_message,
)
from tests.test_signal_connector import (
    ACCOUNT,
    ALEX,
    BOT,
    JO,
    PHRASE,
    SAM,
    STRANGER,
    assert_silent,
)
from watcher.app import App
from watcher.core import evidence
from watcher.core.config import ConfigError, load
from watcher.core.models import IncidentState
from watcher.core.store import Store

pytestmark = pytest.mark.timeout(30)

CIRCLE = "Y2lyY2xlLW9mLXRydXN0"  # the contacts' own group (its internal id)


def config_toml(url: str) -> str:
    return f"""
    [contacts.alex.signal]
    group = "{rest_group_id(CIRCLE)}"
    uuid = "{ALEX.uuid}"

    [contacts.jo.signal]
    number = "{JO.number}"

    [connectors.signal]
    url = "{url}"
    number = "{ACCOUNT}"
    mode = "normal"
    poll_interval = "1s"

    [people.sam.signal]
    uuid = "{SAM.uuid}"
    """


class Rig:
    def __init__(self, tmp_path: Path, api: FakeSignalApi) -> None:
        path = write_config(tmp_path, extra=config_toml(api.base_url))
        self.api = api
        self.app = App(load(path, environ={}), database=tmp_path / "w.db",
                       stdout=io.StringIO())
        self.store = self.app.store
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.app.run(stop=self.stop))

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
        await self.app.aclose()

    def texts_to(self, recipient: str | None) -> list[str]:
        return [c.body["message"] for c in self.api.sends()
                if recipient in c.body.get("recipients", []) and c.status == 201]

    async def alert_ref(self, contact: str) -> int:
        def rows() -> list[dict[str, Any]]:
            return [d for d in self.store.deliveries() if d["channel"] == "signal"
                    and d["contact"] == contact and d["status"] == "sent"]
        found = await eventually(rows, f"the alert to {contact} sent")
        return int(found[0]["platform_ref"])

    async def answer(self, envelope: dict[str, Any], to: str | None) -> str:
        """The watcher's answer to a message; notices still on their way are let through
        first, so that the next message to arrive is the answer."""
        await eventually(lambda: quiet(self.store), "notices and alerts all sent")
        before = len(self.texts_to(to))
        self.api.inject(envelope)
        got = await eventually(lambda: self.texts_to(to)[before:], f"an answer to {to}")
        return got[0]

    def state(self, incident: int) -> IncidentState:
        found = self.store.incident(incident)
        assert found is not None
        return found.state


def quiet(store: Store) -> bool:
    pending = store.conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
    return not store.pending_notices() and int(pending.fetchone()[0]) == 0


@pytest.fixture
async def api() -> AsyncIterator[FakeSignalApi]:
    async with FakeSignalApi(ACCOUNT, mode="normal") as fake:
        yield fake
        assert_silent(fake)


@pytest.fixture
async def rig(tmp_path: Path, api: FakeSignalApi) -> AsyncIterator[Rig]:
    running = Rig(tmp_path, api)
    try:
        yield running
    finally:
        await running.close()


async def test_a_stranger_in_the_contact_group_gets_silence_and_changes_nothing(
        rig: Rig) -> None:
    group = rest_group_id(CIRCLE)
    rig.api.inject(text_message(SAM, PHRASE))
    ref = await rig.alert_ref("alex")
    await rig.alert_ref("jo")
    sent = len(rig.api.sends())
    tries = [group_message(STRANGER, CIRCLE, "/standdown"),
             group_message(STRANGER, CIRCLE, "/status"),
             group_message(STRANGER, CIRCLE, "ok"),
             quote_reply(STRANGER, "on it", BOT, ref, "alert"),
             text_message(STRANGER, "/standdown 1")]
    tries[3]["dataMessage"]["groupInfo"] = {"groupId": CIRCLE, "type": "DELIVER"}
    # Someone with no uuid at all (a malformed or forged envelope) is nobody.
    tries.append(group_message(Contact("", JO.number, "Jo?"), CIRCLE, "/standdown"))
    for envelope in tries:
        await rig.api.wait_delivered(rig.api.inject(envelope))
    # A contact's message after them is answered: the silence above was not a slow loop.
    said = await rig.answer(group_message(ALEX, CIRCLE, "/status"), group)
    assert "alert" in said.lower()
    assert len(rig.api.sends()) == sent + 1
    assert rig.state(1) == IncidentState.OPEN


async def test_only_configured_contacts_act_in_the_group_each_as_themselves(
        rig: Rig) -> None:
    group = rest_group_id(CIRCLE)
    rig.api.inject(text_message(SAM, PHRASE))
    ref = await rig.alert_ref("alex")
    await rig.alert_ref("jo")
    # Contacts talk among themselves in their group: an aside gets no answer from us...
    await rig.api.wait_delivered(rig.api.inject(group_message(ALEX, CIRCLE, "calling her")))
    # ...but a reply to the alert that is not an ack gets the one line on how to.
    question = quote_reply(ALEX, "who saw it?", BOT, ref, "alert")
    question["dataMessage"]["groupInfo"] = {"groupId": CIRCLE}
    said = await rig.answer(question, group)
    assert said.startswith("To acknowledge")
    # Jo is a configured contact (known by number, her uuid learnt): in the group she is Jo.
    reply = quote_reply(JO, "On it", BOT, ref, "alert")
    reply["dataMessage"]["groupInfo"] = {"groupId": CIRCLE}
    said = await rig.answer(reply, group)
    assert said == "Thank you. You are handling alert #1; Alex was told."
    assert rig.store.acked_by(1) == "jo"
    said = await rig.answer(group_message(ALEX, CIRCLE, "/standdown"), group)
    assert said == "Stood down: #1. Everyone alerted is told."
    log = [(e.kind, e.incident, e.data) for e in evidence.entries(rig.store.conn)]
    assert ("ack", 1, {"contact": "jo", "channel": "signal"}) in log
    assert ("incident", 1, {"state": "stood_down", "by": "alex"}) in log
    await eventually(lambda: any("was ended by Alex" in t for t in rig.texts_to(JO.number)))


async def test_a_number_only_contact_is_known_by_the_uuid_first_seen_with_it(
        rig: Rig) -> None:
    rig.api.inject(text_message(SAM, PHRASE))
    ref = await rig.alert_ref("jo")
    said = await rig.answer(text_message(JO, "/status"), JO.number)
    assert "alert" in said.lower()
    # Jo's number re-registered by someone else (another uuid): not Jo any more.
    impostor = make_contact(JO.number, "Jo")
    await rig.api.wait_delivered(rig.api.inject(text_message(impostor, "/standdown")))
    # Jo with her number hidden (only her uuid in the envelope) is still Jo.
    hidden = Contact(JO.uuid, None, "Jo")
    said = await rig.answer(quote_reply(hidden, "ok", BOT, ref, "alert"), JO.number)
    assert said == "Thank you. You are handling alert #1; Alex was told."
    assert rig.store.acked_by(1) == "jo"
    assert rig.state(1) == IncidentState.ACKNOWLEDGED  # not stood down by the impostor


async def test_the_uuid_learnt_for_a_number_is_still_insisted_on_after_a_restart(
        tmp_path: Path, api: FakeSignalApi) -> None:
    first = Rig(tmp_path, api)
    try:
        api.inject(text_message(SAM, PHRASE))
        ref = await first.alert_ref("jo")
        assert "alert" in (await first.answer(text_message(JO, "/status"), JO.number)).lower()
    finally:
        await first.close()
    again = Rig(tmp_path, api)
    try:
        impostor = make_contact(JO.number, "Jo")
        await api.wait_delivered(api.inject(text_message(impostor, "/standdown")))
        said = await again.answer(quote_reply(Contact(JO.uuid, None, "Jo"), "ok", BOT, ref,
                                              "alert"), JO.number)
        assert said == "Thank you. You are handling alert #1; Alex was told."
        assert again.state(1) == IncidentState.ACKNOWLEDGED
    finally:
        await again.close()


def test_a_contact_group_needs_the_contacts_own_uuid(tmp_path: Path) -> None:
    toml = config_toml("http://127.0.0.1:9")
    bare = toml.replace(f'uuid = "{ALEX.uuid}"\n', "", 1)
    with pytest.raises(ConfigError, match=r"contacts\.alex\.signal\.uuid: Alex is reached in "
                                          r"a group"):
        load(write_config(tmp_path, extra=bare), environ={})
    with pytest.raises(ConfigError, match=r"contacts\.alex\.signal\.uuid: not a Signal uuid"):
        load(write_config(tmp_path, extra=toml.replace(ALEX.uuid, "alex")), environ={})
    with pytest.raises(ConfigError, match=r"contacts\.alex\.signal\.uuid: this is watched "
                                          r"person sam's uuid"):
        load(write_config(tmp_path, extra=toml.replace(ALEX.uuid, SAM.uuid)), environ={})
    assert load(write_config(tmp_path, extra=toml), environ={}).contacts["alex"].signal


def test_a_kept_uuid_never_overrides_the_config(tmp_path: Path) -> None:
    config = load(write_config(tmp_path, extra=config_toml("http://127.0.0.1:9")), environ={})
    directory = Directory.from_config(config, ACCOUNT)
    directory.restore({"jo": [JO.number, ALEX.uuid], "alex": [JO.number, STRANGER.uuid]})
    assert directory.contact_of(text_message(ALEX, "ok")) == "alex"
    assert directory.learnt() == {}  # nothing was taken back
    directory.restore({"jo": ["+15550000077", JO.uuid]})  # a number no longer configured
    assert directory.learnt() == {}
    directory.restore({"jo": [JO.number, JO.uuid]})
    assert directory.contact_of(text_message(Contact(JO.uuid, None, "Jo"), "ok")) == "jo"
    assert directory.learnt() == {"jo": [JO.number, JO.uuid]}
