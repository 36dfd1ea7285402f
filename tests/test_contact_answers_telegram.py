"""What a contact's answer means on Telegram, tried as an attacker would, through real PTB
against the Bot API stand-in: a reply naming another chat's message, a replayed button for
an ended incident, loose words; and a 10 000-character code use that must still alert."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually, write_config
from tests.fakes.telegram_api import FakeTelegram
from tests.test_telegram_connector import (
    ALEX,
    GROUP,
    JO,
    SAM,
    Watch,
    audit,
    populate,
    texts,
)
from watcher.core import evidence
from watcher.core.config import load
from watcher.core.models import IncidentState
from watcher.core.store import Store

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

TOML = """
[people.sam.telegram]
user_id = 5001

[contacts.alex.telegram]
chat_id = 5002

[contacts.jo.telegram]
chat_id = 5003

[codes.pineapple]
person = "sam"
phrase = ["pineapple express"]
playbook = "both"

[codes.quoted]
person = "sam"
phrase = ["the bus is late"]
playbook = "quote"

[playbooks.both]
steps = [ { notify = ["alex", "jo"], message = "{person} used {code}: alert #{incident}" } ]

[playbooks.quote]
steps = [ { notify = ["alex"], message = "{person} wrote: {matched} (#{incident})" } ]

[connectors.telegram]
token = { env = "TG_TOKEN" }
api_url = "URL"
chats = [-1001234567890]
poll_timeout = 5
"""


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        populate(server)
        yield server
        audit(server)


@contextlib.asynccontextmanager
async def watching(tg: FakeTelegram, folder: Path) -> AsyncIterator[Watch]:
    path = write_config(folder, extra=TOML.replace("URL", tg.url))
    watch = Watch(load(path, environ={"TG_TOKEN": tg.token}), folder / "w.db")
    try:
        await tg.wait_polling(timeout=8)
        yield watch
    finally:
        await watch.close()


def alerts(tg: FakeTelegram, chat: int) -> dict[int, dict[str, Any]]:
    """The alerts in a chat by incident number (from their ack button)."""
    found = {}
    for message in tg.sent_messages(chat):
        markup = message.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            found[int(row[0]["callback_data"].split(":")[1])] = message
    return found


def quiet(store: Store) -> bool:
    pending = store.conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")
    return not store.pending_notices() and int(pending.fetchone()[0]) == 0


async def answer(tg: FakeTelegram, watch: Watch, chat: int, text: str,
                 reply_to: int | None = None) -> str:
    """The watcher's answer to a message; notices still on their way are let through first,
    so that the next message to arrive in the chat is the answer."""
    await eventually(lambda: quiet(watch.store), "notices and alerts all sent")
    before = len(tg.sent_messages(chat))
    tg.inject_message(chat, chat, text, reply_to_message_id=reply_to)
    got = await eventually(lambda: tg.sent_messages(chat)[before:], f"an answer in {chat}")
    return str(got[0]["text"])


async def test_a_reply_acknowledges_the_alert_it_replies_to_in_its_own_chat_only(
        tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        # Jo's chat gets two messages first, so the same alert has different ids per chat.
        assert "alert" in (await answer(tg, watch, JO, "/status")).lower()
        tg.inject_message(GROUP, SAM, "pineapple express tonight")
        await eventually(lambda: len(alerts(tg, JO)) == 1 and len(alerts(tg, ALEX)) == 1)
        tg.inject_message(GROUP, SAM, "more pineapple express, really")
        await eventually(lambda: len(alerts(tg, JO)) == 2 and len(alerts(tg, ALEX)) == 2)
        alex, jo = alerts(tg, ALEX), alerts(tg, JO)
        assert alex[1]["message_id"] != jo[1]["message_id"]
        first, second = sorted(alex)

        # A reply naming a message id that is an alert in Jo's chat, not in Alex's: it names
        # nothing here, and with two alerts open the watcher asks which one.
        forged = jo[second]["message_id"]
        assert forged not in {m["message_id"] for m in alex.values()}
        said = await answer(tg, watch, ALEX, "ok", reply_to=forged)
        assert said.startswith(f"Several alerts are open (#{first}, #{second})")
        assert {i.state for i in watch.incidents()} == {IncidentState.OPEN}

        said = await answer(tg, watch, JO, "On it!", reply_to=jo[first]["message_id"])
        assert said == f"Thank you. You are handling alert #{first}; Alex was told."
        assert watch.store.acked_by(first) == "jo"
        assert watch.store.incident(second).state == IncidentState.OPEN  # type: ignore[union-attr]
        await eventually(lambda: any("Jo is handling" in t for t in texts(tg, ALEX)))

        said = await answer(tg, watch, ALEX, "on it", reply_to=alex[first]["message_id"])
        assert said == f"Alert #{first} is already being handled by Jo."
        for loose in ("Yes I cannot go, someone else please", "okay, who is this?", "k"):
            said = await answer(tg, watch, ALEX, loose, reply_to=alex[second]["message_id"])
            assert said.startswith("To acknowledge, press the alert's button")
        assert watch.store.incident(second).state == IncidentState.OPEN  # type: ignore[union-attr]


async def test_a_replayed_button_or_reply_for_an_ended_incident_acknowledges_nothing(
        tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        tg.inject_message(GROUP, SAM, "pineapple express tonight")
        await eventually(lambda: len(alerts(tg, JO)) == 1 and len(alerts(tg, ALEX)) == 1)
        said = await answer(tg, watch, JO, "/standdown")
        assert said == "Stood down: #1. Everyone alerted is told."
        tg.inject_message(GROUP, SAM, "pineapple express again")  # #2: open, the only one
        await eventually(lambda: len(alerts(tg, ALEX)) == 2)

        tg.inject_callback(ALEX, alerts(tg, ALEX)[1], "ack:1")
        pressed = await tg.wait_for_call("answerCallbackQuery", timeout=8)
        assert pressed.params["text"].startswith("Alert #1 has already ended")
        # The press is also answered in the chat: let that arrive before the next answer.
        await eventually(lambda: sum("already ended" in t for t in texts(tg, ALEX)) == 1)
        said = await answer(tg, watch, ALEX, "ok", reply_to=alerts(tg, ALEX)[1]["message_id"])
        assert said.startswith("Alert #1 has already ended (it was stood down)")
        # Neither the button nor the reply moved to the incident that is open now.
        assert watch.store.incident(2).state == IncidentState.OPEN  # type: ignore[union-attr]
        assert watch.store.incident(1).state == IncidentState.STOOD_DOWN  # type: ignore[union-attr]

        said = await answer(tg, watch, ALEX, "ok")  # unquoted, one open alert: that one
        assert said == "Thank you. You are handling alert #2; Jo was told."
        log = [(e.kind, e.incident, e.data) for e in evidence.entries(watch.store.conn)]
        assert ("incident", 1, {"state": "stood_down", "by": "jo"}) in log
        assert ("ack", 2, {"contact": "alex", "channel": "telegram"}) in log


async def test_a_ten_thousand_character_code_use_is_alerted_within_telegrams_limit(
        tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        # The phrase matches across the filler, so {matched} is over 10 000 characters,
        # with newlines, a right-to-left override and zero-width characters in it.
        used = "the bus " + "\u202e-\u200b \n" * 2600 + "is late"
        tg.inject_message(GROUP, SAM, used)
        [incident] = await eventually(lambda: watch.incidents("quoted"), "the incident")
        assert len(incident.matched) > 10_000
        [alert] = await eventually(lambda: tg.sent_messages(ALEX), "the alert delivered")
        text = alert["text"]
        assert len(text) <= 4096 and len(text.encode("utf-16-le")) // 2 <= 4096
        assert text.startswith("Sam wrote: the bus - - -") and text.endswith("… (#1)")
        assert not {"\u202e", "\u200b", "\n"} & set(text)
        # The stand-in has it before the outbox row is marked: wait for the mark.
        await eventually(lambda: [r["status"] for r in watch.store.deliveries(incident.id)
                                  if r["channel"] == "telegram"] == ["sent"], "marked sent")
