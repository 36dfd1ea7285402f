"""The Telegram connector end to end: real App, real PTB, real HTTP against the Bot API stand-in.

Every stand-in used here is kept in STANDINS; the last test audits all their call logs for a
single write to a watched chat or to the survivor (SILENT), and each test's stand-in is
audited again when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from connectors.telegram.client import make_bot
from connectors.telegram.connector import TelegramConnector
from connectors.telegram.safety import TOKEN_REFUSED
from tests.conftest import EXAMPLES, eventually, write_config
from tests.fakes.telegram_api import FakeTelegram
from watcher.app import App
from watcher.core.config import Config, load
from watcher.core.models import DeliveryError, Event, Incident, IncidentState

T = TypeVar("T")
SAM, ALEX, JO, STRANGER = 5001, 5002, 5003, 5009
GROUP = -1001234567890  # a private supergroup: links are https://t.me/c/1234567890/N
QUIET = -1009876543210  # a watched chat where the bot was never made admin
CHANNEL = -1005555555555  # Sam's channel
WATCHED = (SAM, GROUP, QUIET, CHANNEL)
CODE_TEXT = "the network went down at work"
FLOWER = (EXAMPLES / "photos" / "flower-as-posted.jpg").read_bytes()
HOLIDAY = (EXAMPLES / "photos" / "holiday.jpg").read_bytes()
STANDINS: list[FakeTelegram] = []
# PTB itself reads RetryAfter.retry_after when building the error (a v22.2 deprecation notice).
pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

TELEGRAM_TOML = """
[people.sam.telegram]
user_id = 5001
channels = [-1005555555555]

[contacts.alex.telegram]
chat_id = 5002

[contacts.jo.telegram]
chat_id = 5003

[codes.heart]
person = "sam"
reaction = { on = "https://t.me/c/1234567890/42" }
playbook = "check-on-me"

[codes.pineapple]
person = "sam"
phrase = ["pineapple express"]
playbook = "quick"

[playbooks.quick]
steps = [
  { notify = ["alex"], message = "{person} used {code}" },
  { wait_ack = "1s" },
  { notify = ["jo"], message = "Nobody has acknowledged {person}'s alert #{incident}" },
]

[connectors.telegram]
token = { env = "TG_TOKEN" }
api_url = "URL"
chats = CHATS
poll_timeout = 5
profile_photo_interval = "INTERVAL"
"""


def audit(tg: FakeTelegram) -> None:
    """SILENT: nothing to a watched chat or the survivor, nothing via a business account."""
    for chat in WATCHED:
        assert tg.writes_to(chat) == [], f"wrote to watched chat {chat}"
    assert [c for c in tg.log if "business_connection_id" in c.params] == []


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        STANDINS.append(server)
        populate(server)
        yield server
        audit(server)


def populate(server: FakeTelegram) -> None:
    server.add_user(SAM, "Sam")
    server.add_user(ALEX, "Alex")
    server.add_user(JO, "Jo")
    server.add_user(STRANGER, "Stranger")
    server.add_chat(GROUP, "supergroup", "Family")
    server.set_bot_member(GROUP, "administrator")
    server.add_chat(CHANNEL, "channel", "Sam's notes")
    server.set_bot_member(CHANNEL, "administrator")
    server.add_chat(QUIET, "supergroup", "Quiet corner")
    server.set_bot_member(QUIET, "member")


def make_config(tg: FakeTelegram, folder: Path, *, chats: tuple[int, ...] = (GROUP,),
                interval: str = "15m", token: str | None = None, access: str = "5m",
                channels: tuple[int, ...] = (CHANNEL,)) -> Config:
    extra = (TELEGRAM_TOML.replace("URL", tg.url).replace("INTERVAL", interval)
             .replace("CHATS", str(list(chats)))
             .replace(f"channels = [{CHANNEL}]", f"channels = {list(channels)}")
             + f'access_check_interval = "{access}"\n')
    return load(write_config(folder, extra=extra), environ={"TG_TOKEN": token or tg.token})


class Watch:
    """An App running the Telegram connector in the background, as `watcher run` does."""

    def __init__(self, config: Config, database: Path) -> None:
        self.app = App(config, database=database, stdout=io.StringIO())
        self.store = self.app.store
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.app.run(stop=self.stop))

    def incidents(self, code: str | None = None) -> list[Incident]:
        return [i for i in self.store.incidents() if code is None or i.code == code]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
        await self.app.aclose()

    async def crash(self) -> None:
        """Cancelled mid-flight, as when the process is killed (nothing flushes)."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.app.aclose()


@contextlib.asynccontextmanager
async def watching(tg: FakeTelegram, folder: Path, **options: Any) -> AsyncIterator[Watch]:
    watch = Watch(make_config(tg, folder, **options), folder / "w.db")
    try:
        if "token" not in options:
            await tg.wait_polling(timeout=8)  # allowed_updates applied before any inject
        yield watch
    finally:
        await watch.close()



def texts(tg: FakeTelegram, chat: int) -> list[str]:
    return [m.get("text", "") for m in tg.sent_messages(chat)]


async def alert_for(tg: FakeTelegram, chat: int) -> dict[str, Any]:
    messages = await eventually(lambda: tg.sent_messages(chat), f"an alert to {chat}")
    return messages[0]


async def test_text_code_alerts_with_a_button_and_a_press_acknowledges(
        tg: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for name in ("", "telegram", "httpx"):  # as verbose as they can be (watcher.logs may
        caplog.set_level(logging.DEBUG, logger=name)  # have quietened them in another test)
    async with watching(tg, tmp_path) as watch:
        posted = tg.inject_message(GROUP, SAM, f"Ugh, {CODE_TEXT} again")
        alert = await alert_for(tg, ALEX)
        assert alert["reply_markup"]["inline_keyboard"][0][0] == {
            "text": "I'm on it", "callback_data": "ack:1"}
        [incident] = watch.incidents("network-down")
        number = posted["message"]["message_id"]
        assert incident.link == f"https://t.me/c/1234567890/{number}"
        await alert_for(tg, JO)

        press = tg.inject_callback(ALEX, alert, "ack:1")
        answer = await tg.wait_for_call("answerCallbackQuery", timeout=8)
        assert answer.params["callback_query_id"] == press["callback_query"]["id"]
        assert "Thank you" in answer.params["text"]
        await eventually(lambda: any("Alex is handling" in t for t in texts(tg, JO)),
                         "Jo told that Alex is handling it")
        assert watch.incidents()[0].state == IncidentState.ACKNOWLEDGED
        assert watch.store.pending_runs() == 0  # escalation stopped
    # NO LEAK, even at DEBUG: no token, no message text from PTB, httpx or us.
    assert tg.token not in caplog.text and tg.token.split(":")[1] not in caplog.text
    assert CODE_TEXT not in caplog.text and "Alex is handling" not in caplog.text
    assert "`sendMessage` with parameters [hidden]" in caplog.text  # PTB did try to log it


async def test_reply_to_the_alert_acknowledges(tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        tg.inject_message(GROUP, SAM, CODE_TEXT)
        alert = await alert_for(tg, JO)
        await alert_for(tg, ALEX)
        tg.inject_message(JO, JO, "on it", reply_to_message_id=alert["message_id"])
        await eventually(lambda: any("Thank you" in t for t in texts(tg, JO)), "Jo thanked")
        await eventually(lambda: any("Jo is handling" in t for t in texts(tg, ALEX)),
                         "Alex told that Jo is handling it")
        assert watch.incidents()[0].state == IncidentState.ACKNOWLEDGED
        assert watch.store.acked_by(1) == "jo"


async def test_escalates_when_nobody_acknowledges(tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path):
        tg.inject_message(GROUP, SAM, "pineapple express tonight?")
        await alert_for(tg, ALEX)
        assert tg.sent_messages(JO) == []
        escalated = await alert_for(tg, JO)
        assert "Nobody has acknowledged Sam's alert #1" in escalated["text"]


async def test_photo_codes_as_photo_as_document_and_in_a_caption(
        tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        photo = tg.inject_message(GROUP, SAM, photo=FLOWER, caption="spring!")
        document = tg.inject_message(GROUP, SAM, document=FLOWER, file_name="IMG_1.jpg",
                                     mime_type="image/jpeg")
        tg.inject_message(GROUP, SAM, photo=HOLIDAY, caption=CODE_TEXT)
        await eventually(lambda: len(watch.incidents()) == 3, "three incidents")
        assert sorted(i.code for i in watch.incidents()) == ["flower", "flower", "network-down"]
        keys = {i.event_key for i in watch.incidents("flower")}
        assert keys == {f"telegram:{GROUP}/{u['message']['message_id']}"
                        for u in (photo, document)}
        assert len(tg.calls("file")) == 3  # every image was fetched, each once


async def test_image_download_failures_neither_block_nor_lose(tg: FakeTelegram,
                                                             tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        tg.fail("getFile", 502)  # a network error: the update is fetched and tried again
        tg.inject_message(GROUP, SAM, photo=FLOWER)
        [incident] = await eventually(watch.incidents, "the flower after a retry")
        assert incident.code == "flower"
        gone = tg.inject_message(GROUP, SAM, photo=FLOWER)
        del tg.files[gone["message"]["photo"][0]["file_id"]]  # Telegram lost it: refused
        tg.inject_message(GROUP, SAM, CODE_TEXT)
        await eventually(lambda: watch.incidents("network-down"), "the code after it")
        # Telegram learns the offset moved only from the next getUpdates, which may come
        # after the incident is stored (both updates can arrive in one batch): wait for it.
        await tg.wait_confirmed(gone["update_id"], timeout=8)
        assert len(watch.incidents("flower")) == 1
        [unchecked] = watch.store.unchecked()
        assert unchecked["event_key"] == \
            f"telegram:{GROUP}/{gone['message']['message_id']}"


async def test_run_once_reads_what_is_waiting(tg: FakeTelegram, tmp_path: Path) -> None:
    used = tg.inject_message(GROUP, SAM, CODE_TEXT)
    app = App(make_config(tg, tmp_path), database=tmp_path / "w.db", stdout=io.StringIO())
    try:
        await asyncio.wait_for(app.run(once=True), 10)
        assert [i.code for i in app.store.incidents()] == ["network-down"]
        assert app.store.cursor("telegram:updates") == str(used["update_id"] + 1)
        assert [c.params["timeout"] for c in tg.calls("getUpdates")] == [0]
        assert len(tg.sent_messages(ALEX)) == 1
    finally:
        await app.aclose()


async def test_an_edit_that_adds_the_code_is_a_new_event(tg: FakeTelegram,
                                                         tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        first = tg.inject_message(GROUP, SAM, "hello all")
        number = first["message"]["message_id"]
        await tg.wait_confirmed(first["update_id"], timeout=8)
        assert watch.incidents() == []
        tg.inject_message(GROUP, SAM, f"hello all, {CODE_TEXT}", kind="edited_message",
                          message_id=number)
        [incident] = await eventually(watch.incidents, "an incident from the edit")
        assert (incident.event_key or "").startswith(f"telegram:{GROUP}/{number}/edit/")


async def test_reaction_code_matches_the_t_me_link(tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        other = tg.inject_reaction(GROUP, STRANGER, 42, ["👍"])
        elsewhere = tg.inject_reaction(GROUP, SAM, 41, ["👍"])
        await tg.wait_confirmed(elsewhere["update_id"], timeout=8)
        assert tg.updates[other["update_id"]].confirmed_at is not None
        assert watch.incidents() == []
        tg.inject_reaction(GROUP, SAM, 42, ["❤"])
        [incident] = await eventually(watch.incidents, "the reaction incident")
        assert incident.code == "heart"
        taken_back = tg.inject_reaction(GROUP, SAM, 42, [], ["❤"])
        await tg.wait_confirmed(taken_back["update_id"], timeout=8)
        assert len(watch.incidents()) == 1


async def test_profile_photo_change_is_a_code_but_the_first_photo_is_not(
        tg: FakeTelegram, tmp_path: Path) -> None:
    tg.add_profile_photo(SAM, HOLIDAY)
    async with watching(tg, tmp_path, interval="1s") as watch:
        await eventually(lambda: watch.store.cursor("telegram:profile:sam"), "the baseline")
        tg.add_profile_photo(SAM, FLOWER)
        [incident] = await eventually(watch.incidents, "the profile incident", timeout=6)
        assert incident.code == "flower"
        assert (incident.event_key or "").startswith(f"telegram:profile/{SAM}/")


async def test_business_messages_are_watched_and_never_answered(
        tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        tg.inject_business_connection(ALEX, "bc-alex")
        tg.inject_message(SAM, SAM, CODE_TEXT, kind="business_message",
                          business_connection_id="bc-alex")
        [incident] = await eventually(watch.incidents, "an incident from the business chat")
        assert (incident.event_key or "").startswith(f"telegram:business/bc-alex/{SAM}/")
        await alert_for(tg, ALEX)
        # Alex writing "ok" in their own chat with Sam is not an answer to us.
        ok = tg.inject_message(SAM, ALEX, "ok", kind="business_message",
                               business_connection_id="bc-alex")
        await tg.wait_confirmed(ok["update_id"], timeout=8)
        assert watch.incidents()[0].state == IncidentState.OPEN
        edit = tg.inject_message(SAM, SAM, "pineapple express", kind="edited_business_message",
                                 message_id=99, business_connection_id="bc-alex")
        await eventually(lambda: len(watch.incidents()) == 2, "an incident from the edit")
        assert tg.updates[edit["update_id"]].delivered_at is not None


async def test_strangers_and_watched_chats_get_no_answer(tg: FakeTelegram,
                                                        tmp_path: Path) -> None:
    async with watching(tg, tmp_path):
        fake_alert = {"message_id": 1, "date": 0, "chat": tg.chats[STRANGER]}
        updates = [
            tg.inject_message(STRANGER, STRANGER, "/status"),
            tg.inject_message(STRANGER, STRANGER, "hello? who is this"),
            tg.inject_callback(STRANGER, fake_alert, "ack:1"),
            tg.inject_message(GROUP, SAM, "/status"),
            tg.inject_message(GROUP, ALEX, "/status"),
            tg.inject_message(GROUP, STRANGER, "/ack 1"),
            tg.inject_message(SAM, SAM, "/status"),  # the survivor's own chat with the bot
        ]
        for update in updates:
            await tg.wait_confirmed(update["update_id"], timeout=8)
        # A registered contact in their private chat is answered: the silence above is real.
        tg.inject_message(ALEX, ALEX, "/status")
        reply = await tg.next_message(ALEX, timeout=8)
        assert "alert" in reply.params["text"].lower()  # the status, whatever its wording
    assert [c.params["chat_id"] for c in tg.calls("sendMessage")] == [ALEX]
    assert tg.calls("answerCallbackQuery") == [] and tg.writes_to(STRANGER) == []


async def test_rate_limits_and_network_errors_lose_nothing(
        tg: FakeTelegram, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="connectors.telegram")
    async with watching(tg, tmp_path) as watch:
        await tg.restart()  # the parked long poll is cut: a network error
        tg.fail("getUpdates", 502, times=1)
        lost = tg.inject_message(GROUP, SAM, CODE_TEXT)
        await eventually(watch.incidents, "the code sent during the outage")
        assert caplog.text.count("Telegram is unavailable") == 1
        assert caplog.text.count("reachable again") == 1

        tg.fail("getUpdates", 429, retry_after=1)
        tg.fail("sendMessage", 429, retry_after=1)
        tg.inject_message(GROUP, SAM, "stand by")  # ends the parked poll; the next gets 429
        await tg.wait_for_call("getUpdates", lambda c: c.status == 429, timeout=8)
        later = tg.inject_message(GROUP, SAM, "pineapple express")  # during the pause
        await eventually(lambda: len(watch.incidents()) == 2, "the code sent while throttled")
        await tg.wait_confirmed(later["update_id"], timeout=8)
        await eventually(lambda: len(tg.sent_messages(ALEX)) == 2, "every alert delivered")
        assert tg.updates[lost["update_id"]].confirmed_at is not None
        assert len(watch.incidents()) == 2  # and nothing twice
    assert len(tg.sent_messages(ALEX)) == 2


async def test_restart_resumes_from_the_committed_offset(tg: FakeTelegram,
                                                         tmp_path: Path) -> None:
    first = Watch(make_config(tg, tmp_path), tmp_path / "w.db")
    await tg.wait_polling(timeout=8)
    # Every poll that would confirm `used` to Telegram is cut until the crash. (Holding one
    # poll was not enough: PTB gives up on it after its read timeout and polls again, and
    # on a busy machine storing the incident can take longer than that.)
    tg.drop("getUpdates", times=None)
    used = tg.inject_message(GROUP, SAM, CODE_TEXT)
    await eventually(first.incidents, "the first incident")
    await first.crash()
    tg.clear_faults()
    assert tg.updates[used["update_id"]].confirmed_at is None  # stored, not yet confirmed
    missed = tg.inject_message(GROUP, SAM, "pineapple express")  # while the watcher is down
    tg.inject_message(GROUP, STRANGER, "anyone there?")

    log_start = len(tg.log)
    async with watching(tg, tmp_path) as second:
        await eventually(lambda: len(second.incidents()) == 2, "the missed code")
        await tg.wait_confirmed(missed["update_id"], timeout=8)
        polls = [c for c in tg.log[log_start:] if c.method == "getUpdates"]
        assert polls[0].params["offset"] == used["update_id"] + 1
        assert sorted(i.code for i in second.incidents()) == ["network-down", "pineapple"]


async def test_missing_admin_right_is_reported_as_a_blind_spot(tg: FakeTelegram,
                                                               tmp_path: Path) -> None:
    async with watching(tg, tmp_path, chats=(GROUP, QUIET)) as watch:
        tg.inject_message(GROUP, SAM, CODE_TEXT)
        await eventually(watch.incidents, "the watch goes on in the other chats")
        health = {row["feed"]: row for row in watch.store.health()}
    blind = health[f"telegram:chat:{QUIET}"]
    assert "not an admin in Quiet corner" in blind["detail"] and blind["blind_since"]
    assert health[f"telegram:chat:{GROUP}"]["detail"] is None
    assert health[f"telegram:chat:{CHANNEL}"]["detail"] is None
    assert health["sam/telegram"]["detail"] is None


async def test_a_refused_token_is_reported_not_crashed(tg: FakeTelegram,
                                                       tmp_path: Path) -> None:
    wrong = "987654321:AAHsomeOtherTokenThatTelegramRefuses-99"
    async with watching(tg, tmp_path, token=wrong) as watch:
        health = await eventually(lambda: {r["feed"]: r for r in watch.store.health()},
                                  "the token problem reported")
    assert health["sam/telegram"]["detail"] == TOKEN_REFUSED
    assert wrong not in str(health)


async def test_sending_refuses_watched_chats_and_classifies_failures(
        tg: FakeTelegram, tmp_path: Path) -> None:
    connector = TelegramConnector(make_config(tg, tmp_path))
    try:
        for address in (str(SAM), str(GROUP), str(STRANGER)):
            with pytest.raises(DeliveryError) as refused:
                await connector.send("alex", address, "alert", 1)
            assert refused.value.permanent
        tg.block_bot(JO)
        with pytest.raises(DeliveryError) as blocked:
            await connector.send("jo", str(JO), "alert text", 1)
        assert blocked.value.permanent and "alert text" not in blocked.value.message
        tg.fail("sendMessage", 400, "Bad Request: chat not found")
        with pytest.raises(DeliveryError) as unknown:
            await connector.send("alex", str(ALEX), "alert", 1)
        assert unknown.value.permanent
        tg.fail("sendMessage", 502)
        with pytest.raises(DeliveryError) as down:
            await connector.send("alex", str(ALEX), "alert", 1)
        assert not down.value.permanent
        assert await connector.send("alex", str(ALEX), "reminder") is not None
        assert "reply_markup" not in tg.calls("sendMessage")[-1].params
    finally:
        await connector.close()


async def test_no_stand_in_ever_saw_a_write_to_a_watched_chat(tmp_path: Path) -> None:
    """The SILENT audit over every stand-in of this module (and one more busy run)."""
    async with FakeTelegram() as server:
        STANDINS.append(server)
        populate(server)
        async with watching(server, tmp_path) as watch:
            server.inject_message(GROUP, SAM, CODE_TEXT)
            server.inject_reaction(GROUP, SAM, 42, ["👍"])
            server.inject_message(CHANNEL, None, "pineapple express", kind="channel_post")
            await eventually(lambda: len(watch.incidents()) == 3, "three incidents")
            alert = await alert_for(server, ALEX)
            server.inject_callback(ALEX, alert, "ack:1")
            await server.wait_for_call("answerCallbackQuery", timeout=8)
    assert len(STANDINS) >= 2
    for standin in STANDINS:
        audit(standin)
        assert standin.log, "every stand-in was really used"


@pytest.mark.parametrize("post_first", [True, False])
async def test_a_channel_post_and_its_copy_in_the_discussion_group_are_one_use(
        tg: FakeTelegram, tmp_path: Path, post_first: bool) -> None:
    """Telegram copies each post of a channel into the channel's linked discussion group (an
    automatic forward, sent "as" the channel). With both chats watched, one post must open
    one incident, whichever copy the bot sees first."""
    channel = tg.chats[CHANNEL]
    post = {"message_id": 9, "date": int(time.time()), "chat": channel,
            "sender_chat": channel, "text": "pineapple express"}
    copy = {**post, "message_id": 301, "chat": tg.chats[GROUP],
            "from": {"id": 777000, "is_bot": False, "first_name": "Telegram"},
            "is_automatic_forward": True,
            "forward_origin": {"type": "channel", "date": post["date"], "chat": channel,
                               "message_id": 9}}
    async with watching(tg, tmp_path) as watch:
        order = [("channel_post", post), ("message", copy)]
        updates = [tg.inject_update(kind, payload)
                   for kind, payload in (order if post_first else order[::-1])]
        await tg.wait_confirmed(updates[-1]["update_id"], timeout=8)
        [incident] = await eventually(watch.incidents, "the incident")
        assert incident.event_key == f"telegram:{CHANNEL}/9"
        assert len(watch.store.conn.execute(
            "SELECT key FROM seen_events WHERE key LIKE 'telegram:%'").fetchall()) == 1


# -- losing access (issue 12, part 4) ------------------------------------------------------

OLD_GROUP, NEW_GROUP = -4001234567, -1004001234567  # a basic group and its supergroup


def told(watch: Watch, kind: str, words: str) -> list[dict[str, Any]]:
    """Outbox rows of a kind ("blind", "recovered") whose text says `words`."""
    return [d for d in watch.store.deliveries() if d["kind"] == kind and words in d["text"]]


def health_of(watch: Watch, feed: str) -> dict[str, Any]:
    return next((r for r in watch.store.health() if r["feed"] == feed), {})


async def test_bot_removed_from_a_watched_group_is_blind_at_once_then_restored(
        tg: FakeTelegram, tmp_path: Path) -> None:
    """Telegram's my_chat_member update is requested and acted on: the contacts hear of a
    removal at once (no stale_after grace), on every channel, and hear it is restored
    when the bot is made admin again. The watch of Sam's other chats goes on."""
    async with watching(tg, tmp_path, chats=(GROUP,)) as watch:
        polls = tg.calls("getUpdates")
        assert "my_chat_member" in polls[-1].params["allowed_updates"]
        removal = tg.change_bot_member(GROUP, "kicked", by=STRANGER)
        blind = await eventually(lambda: told(watch, "blind", "banned from Family"),
                                 "a blind-watch alert")
        assert {d["contact"] for d in blind} == {"alex", "jo"}
        assert "add the bot back to that chat as an administrator" in blind[0]["text"]
        assert not tg.updates[removal["update_id"]].filtered
        assert health_of(watch, f"telegram:chat:{GROUP}")["permanent"] == 1
        assert health_of(watch, "sam/telegram")["detail"] is None  # the rest is watched
        await eventually(lambda: any("WATCH BLIND" in t for t in texts(tg, ALEX)),
                         "the alert delivered on Telegram")
        tg.inject_message(CHANNEL, None, CODE_TEXT, kind="channel_post")  # still watched
        await eventually(watch.incidents, "a code in another chat")

        tg.change_bot_member(GROUP, "administrator", by=SAM)
        await eventually(lambda: told(watch, "recovered", "watched again"), "restored")
        assert health_of(watch, f"telegram:chat:{GROUP}")["blind_since"] is None


async def test_demotion_without_an_update_and_a_deleted_chat_are_found_by_the_recheck(
        tg: FakeTelegram, tmp_path: Path) -> None:
    """What no update announces (a missed update, a deleted chat) is found by the periodic
    getChatMember re-check, each with its own problem."""
    async with watching(tg, tmp_path, chats=(GROUP,), access="1s") as watch:
        await eventually(lambda: health_of(watch, f"telegram:chat:{CHANNEL}").get("last_ok"),
                         "the first check")
        tg.set_bot_member(GROUP, "restricted")  # no my_chat_member: only the re-check sees it
        tg.delete_chat(CHANNEL)
        await eventually(lambda: told(watch, "blind", "not an admin in Family (-100"),
                         "the demotion reported")
        await eventually(lambda: told(watch, "blind", "the group chat was deleted"),
                         "the deleted channel reported")
        assert health_of(watch, f"telegram:chat:{CHANNEL}")["permanent"] == 1


async def test_a_group_upgraded_to_a_supergroup_tells_the_new_id(
        tg: FakeTelegram, tmp_path: Path) -> None:
    """The upgrade's service message names the new id; the contacts are told to put it in
    the config. A restart before they do reports the same (ChatMigrated), not a crash."""
    tg.add_chat(OLD_GROUP, "group", "Cousins")
    tg.set_bot_member(OLD_GROUP, "administrator")
    async with watching(tg, tmp_path, chats=(OLD_GROUP,)) as watch:
        tg.migrate_chat(OLD_GROUP, NEW_GROUP, by=SAM)
        blind = await eventually(lambda: told(watch, "blind", f"now has the id {NEW_GROUP}"),
                                 "the new id told")
        assert f"replace {OLD_GROUP} with {NEW_GROUP}" in blind[0]["text"]
        assert watch.incidents() == []  # the service messages are not Sam's posts
    async with watching(tg, tmp_path, chats=(OLD_GROUP,)) as again:
        row = await eventually(lambda: health_of(again, f"telegram:chat:{OLD_GROUP}")
                               .get("detail"), "the start check")
        assert f"now has the id {NEW_GROUP}" in row
        tg.inject_message(GROUP, SAM, CODE_TEXT)
        await eventually(again.incidents, "the watch goes on")


async def test_a_token_revoked_while_running_is_blind_at_once(
        tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path) as watch:
        tg.revoke_token()
        await eventually(lambda: told(watch, "blind", "the bot token was revoked"),
                         "a blind-watch alert")
        assert health_of(watch, "sam/telegram")["permanent"] == 1
        assert tg.token not in str(watch.store.health())


ANONYMOUS_ADMIN = {"id": 1087968824, "is_bot": True, "first_name": "Group",
                   "username": "GroupAnonymousBot"}


async def test_anonymous_admin_posts_are_never_attributed_and_an_anonymous_survivor_is_told(
        tg: FakeTelegram, tmp_path: Path) -> None:
    """In a group, every anonymous admin's message comes from @GroupAnonymousBot with the
    group as sender_chat: nothing tells whose it is. Even with the group wrongly listed as
    one of Sam's channels, such a post fires nothing (another admin's words are not Sam's);
    and Sam being an anonymous admin there is a blind spot the contacts are told of."""
    tg.set_member(GROUP, SAM, "administrator", is_anonymous=True)
    async with watching(tg, tmp_path, chats=(GROUP,), channels=(CHANNEL, GROUP)) as watch:
        blind = await eventually(lambda: told(watch, "blind", "Sam is an anonymous "
                                                              "administrator in Family"))
        assert "Remain anonymous" in blind[0]["text"]
        anonymous = tg.inject_message(GROUP, ANONYMOUS_ADMIN, CODE_TEXT,
                                      sender_chat=tg.chats[GROUP])
        tg.inject_message(CHANNEL, None, "pineapple express", kind="channel_post")
        await tg.wait_confirmed(anonymous["update_id"], timeout=8)
        [incident] = await eventually(watch.incidents, "the channel post's incident")
        assert incident.code == "pineapple"


class RecordingSink:
    """Just enough of the app for a connector on its own: it keeps what it is handed."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.cursors: dict[str, str] = {}

    async def event(self, event: Event, cursor: tuple[str, str] | None = None) -> None:
        self.events.append(event)
        if cursor is not None:
            self.cursors[cursor[0]] = cursor[1]

    def response(self, response: object) -> str | None:
        return None

    def cursor(self, feed: str) -> str | None:
        return self.cursors.get(feed)

    def save_cursor(self, feed: str, value: str) -> None:
        self.cursors[feed] = value

    def unreadable(self, *args: object, **kwargs: object) -> None:
        pass

    def feed_ok(self, feed: str) -> None:
        pass

    def place_seen(self, platform: str, place: str, person: str) -> None:
        pass

    def feed_failed(self, feed: str, problem: str, permanent: bool = False) -> None:
        pass


async def test_the_connector_takes_its_client_and_its_clock(tg: FakeTelegram,
                                                            tmp_path: Path) -> None:
    """A test hands the connector its PTB Bot and a clock: the profile change it reports is
    dated by that clock, and every call went through that Bot to the stand-in."""
    fixed = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    bot = make_bot(tg.token, tg.url)
    connector = TelegramConnector(make_config(tg, tmp_path), bot=bot, clock=lambda: fixed)
    assert connector.bot is bot and connector.channel() is connector
    tg.add_profile_photo(SAM, HOLIDAY)
    sink = RecordingSink()
    try:
        await connector.start(sink)
        await connector.poll_once()  # the first photo is the baseline
        tg.add_profile_photo(SAM, FLOWER)
        assert await connector.poll_once() == 1
    finally:
        await connector.close()
    [changed] = [e for e in sink.events if e.kind == "profile"]
    assert changed.at == fixed and changed.id.endswith(f"/{int(fixed.timestamp())}")
