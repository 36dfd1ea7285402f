"""The Bot API stand-in, driven by the real python-telegram-bot client on the test's own loop."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dtm
import io
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import pytest
from PIL import Image
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReactionTypeEmoji,
    ReplyParameters,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, ContextTypes, TypeHandler
from telegram.request import HTTPXRequest

from tests.fakes.telegram_api import DEFAULT_UPDATES, FakeTelegram

SURVIVOR, CONTACT, STRANGER = 5001, 5002, 5003
GROUP = -1001234567890


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_user(SURVIVOR, "Sam", username="sam_s")
        server.add_user(CONTACT, "Casey")
        server.add_chat(GROUP, "supergroup", "Family", username="family_chat")
        yield server


App = Application[Any, Any, Any, Any, Any, Any]


def build_app(tg: FakeTelegram, token: str | None = None) -> App:
    return (Application.builder().token(token or tg.token).base_url(tg.base_url)
            .base_file_url(tg.base_file_url).build())


def make_bot(tg: FakeTelegram, read_timeout: float = 5.0) -> Bot:
    return Bot(tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url,
               request=HTTPXRequest(read_timeout=read_timeout))


@contextlib.asynccontextmanager
async def polling(tg: FakeTelegram, allowed_updates: Sequence[str] | None = None,
                  ) -> AsyncIterator[tuple[App, asyncio.Queue[Update]]]:
    """An Application polling the fake; every update lands in the yielded queue."""
    app = build_app(tg)
    received: asyncio.Queue[Update] = asyncio.Queue()

    async def collect(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        await received.put(update)

    app.add_handler(TypeHandler(Update, collect))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(allowed_updates=allowed_updates)
    await tg.wait_polling()  # the first getUpdates (carrying allowed_updates) is parked
    try:
        yield app, received
    finally:
        if app.updater.running:
            await app.updater.stop()
        await app.stop()
        await app.shutdown()


async def next_update(received: asyncio.Queue[Update]) -> Update:
    return await asyncio.wait_for(received.get(), 5)


def png(color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buffer, "PNG")
    return buffer.getvalue()


async def test_lifecycle_uses_only_implemented_methods(tg: FakeTelegram) -> None:
    async with polling(tg, ["message"]) as (app, _):
        assert app.bot.username == "duress_test_bot"
        assert app.bot.id == tg.bot_user["id"]
    methods = [c.method for c in tg.log]
    assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    assert methods[-1] == "getUpdates"  # PTB's final timeout=0 poll confirming the offset
    assert tg.log[-1].params["timeout"] == 0
    # nothing PTB called was unknown or failed; the cancelled long poll never got a status
    assert all(c.status in (200, None) for c in tg.log), [(c.method, c.error) for c in tg.log]


async def test_updates_delivered_in_order_and_offsets_confirmed(tg: FakeTelegram) -> None:
    async with polling(tg, ["message", "edited_message"]) as (_, received):
        first = tg.inject_message(SURVIVOR, SURVIVOR, text="hello")
        second = tg.inject_message(GROUP, SURVIVOR, text="pineapple")
        edit = tg.inject_message(GROUP, SURVIVOR, text="pineapple!", kind="edited_message",
                                 message_id=second["message"]["message_id"])
        got = [await next_update(received) for _ in range(3)]
        assert [u.update_id for u in got] == [first["update_id"], second["update_id"],
                                              edit["update_id"]]
        assert got[0].message is not None and got[0].message.text == "hello"
        assert got[0].message.chat.type == "private"
        assert got[1].message is not None and got[1].message.chat.title == "Family"
        assert got[1].message.from_user is not None and got[1].message.from_user.id == SURVIVOR
        assert got[2].edited_message is not None and got[2].edited_message.edit_date is not None
        assert got[2].edited_message.message_id == got[1].message.message_id
        await tg.wait_confirmed(edit["update_id"])
        assert tg.pending == []
    offsets = [c.params.get("offset") for c in tg.calls("getUpdates")]
    assert edit["update_id"] + 1 in offsets
    # a fresh client sees nothing again: the updates were confirmed
    bot = make_bot(tg)
    async with bot:
        assert await bot.get_updates(timeout=0) == ()


async def test_long_poll_is_held_until_an_update_arrives(tg: FakeTelegram) -> None:
    bot = make_bot(tg, read_timeout=10)
    async with bot:
        started = time.monotonic()
        poll = asyncio.create_task(bot.get_updates(timeout=8))
        await tg.wait_polling()
        assert not poll.done()
        update = tg.inject_message(SURVIVOR, SURVIVOR, text="now")
        updates = await asyncio.wait_for(poll, 5)
        assert time.monotonic() - started < 5
        assert [u.update_id for u in updates] == [update["update_id"]]
        call = tg.calls("getUpdates")[-1]
        queued = tg.updates[update["update_id"]]
        assert queued.delivered_at is not None
        assert call.at < queued.available_at <= queued.delivered_at
        # not confirmed yet: the same update comes back until a higher offset is sent
        assert [u.update_id for u in await bot.get_updates(timeout=0)] == [update["update_id"]]
        assert await bot.get_updates(offset=update["update_id"] + 1, timeout=0) == ()
        assert queued.confirmed_at is not None


async def test_long_poll_returns_empty_after_its_timeout(tg: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.post(f"{tg.base_url}{tg.token}/getUpdates", json={"timeout": 0.3}) as r:
            body = await r.json()
        assert body == {"ok": True, "result": []}
        assert time.monotonic() - started >= 0.3


async def test_limit_and_negative_offset(tg: FakeTelegram) -> None:
    ids = [tg.inject_message(SURVIVOR, SURVIVOR, text=str(i))["update_id"] for i in range(5)]
    bot = make_bot(tg)
    async with bot:
        assert [u.update_id for u in await bot.get_updates(limit=2)] == ids[:2]
        assert [u.update_id for u in await bot.get_updates(offset=-2)] == ids[3:]
        assert [q["update_id"] for q in tg.pending] == ids[3:]


async def test_reactions_only_when_allowed_updates_lists_them(tg: FakeTelegram) -> None:
    message = tg.inject_message(GROUP, SURVIVOR, text="marker")["message"]
    async with polling(tg, ["message"]) as (_, received):
        assert tg.allowed_updates == {"message"}
        await next_update(received)
        hidden = tg.inject_reaction(GROUP, SURVIVOR, message["message_id"], ["🍍"])
        shown = tg.inject_message(GROUP, SURVIVOR, text="after")
        assert (await next_update(received)).update_id == shown["update_id"]
        assert tg.updates[hidden["update_id"]].filtered
    async with polling(tg, ["message", "message_reaction"]) as (_, received):
        reaction = tg.inject_reaction(GROUP, SURVIVOR, message["message_id"],
                                      new_emoji=["🍍"], old_emoji=["👍"])
        update = await next_update(received)
        assert update.update_id == reaction["update_id"]
        assert update.message_reaction is not None
        assert update.message_reaction.new_reaction == (ReactionTypeEmoji("🍍"),)
        assert update.message_reaction.old_reaction == (ReactionTypeEmoji("👍"),)
        assert update.message_reaction.user is not None
        assert update.message_reaction.user.id == SURVIVOR
    # an empty list means "the defaults", which exclude reactions, as on Telegram
    bot = make_bot(tg)
    async with bot:
        await bot.get_updates(allowed_updates=[], timeout=0)
    assert tg.allowed_updates == DEFAULT_UPDATES
    assert tg.inject_reaction(GROUP, SURVIVOR, 1, ["🍍"]) and tg.pending == []


async def test_photo_download_via_get_file(tg: FakeTelegram) -> None:
    image = png()
    async with polling(tg, ["message"]) as (app, received):
        tg.inject_message(SURVIVOR, SURVIVOR, photo=image, caption="look")
        update = await next_update(received)
        assert update.message is not None and update.message.caption == "look"
        size = update.message.photo[-1]
        assert (size.width, size.height) == (64, 48)
        file = await size.get_file()
        assert file.file_path is not None and file.file_path.startswith(tg.base_file_url)
        assert bytes(await file.download_as_bytearray()) == image
        assert bytes(await (await app.bot.get_file(size.file_id)).download_as_bytearray()) == image
    downloads = tg.calls("file")
    assert downloads and all(c.status == 200 for c in downloads)
    stored = tg.files[size.file_id]
    async with aiohttp.ClientSession() as http:  # raw colon and wrong token
        async with http.get(f"{tg.base_file_url}{tg.token}/{stored.file_path}") as resp:
            assert resp.status == 200 and await resp.read() == image
        async with http.get(f"{tg.base_file_url}1:nope/{stored.file_path}") as resp:
            assert resp.status == 401
        async with http.get(f"{tg.base_file_url}{tg.token}/photos/missing.jpg") as resp:
            assert resp.status == 404


async def test_send_message_with_keyboard_reply_callback_and_edit(tg: FakeTelegram) -> None:
    tg.set_bot_member(GROUP, "administrator", can_delete_messages=True)
    original = tg.inject_message(CONTACT, CONTACT, text="I'm your contact")["message"]
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("I'm on it", callback_data="ack:1")]])
    bot = make_bot(tg)
    async with bot:
        sent = await bot.send_message(
            CONTACT, "ALERT: Sam used a duress code", reply_markup=keyboard,
            reply_parameters=ReplyParameters(original["message_id"]))
        assert sent.from_user is not None and sent.from_user.id == bot.id
        assert sent.reply_markup == keyboard
        assert sent.reply_to_message is not None
        assert sent.reply_to_message.message_id == original["message_id"]
        assert isinstance(sent.date, dtm.datetime)
        call = tg.calls("sendMessage")[-1]
        assert call.params["chat_id"] == CONTACT
        assert call.params["reply_markup"] == {
            "inline_keyboard": [[{"text": "I'm on it", "callback_data": "ack:1"}]]}
        assert tg.sent_messages(CONTACT) == [call.result]

        query = tg.inject_callback(CONTACT, call.result, "ack:1")["callback_query"]
        *_, update = await bot.get_updates()  # the contact's own message is still pending
        assert update.callback_query is not None and update.callback_query.data == "ack:1"
        assert update.callback_query.message is not None
        assert update.callback_query.message.message_id == sent.message_id
        assert await update.callback_query.answer("Thanks")
        assert tg.callback_answers[query["id"]]["text"] == "Thanks"
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await update.callback_query.answer()

        edited = await bot.edit_message_text("ALERT (acknowledged)", CONTACT, sent.message_id)
        assert isinstance(edited, type(sent)) and edited.reply_markup is None
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("ALERT (acknowledged)", CONTACT, sent.message_id)
        with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
            await bot.send_message(CONTACT, "x", reply_to_message_id=999)
        # PTB strips "Bad Request: " and .capitalize()s the rest: "Chat not found"
        with pytest.raises(BadRequest, match=r"^Chat not found$"):
            await bot.send_message(424242, "x")


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_retry_after_surfaces_and_the_next_call_succeeds(tg: FakeTelegram) -> None:
    tg.fail("sendMessage", 429, retry_after=7)
    bot = make_bot(tg)
    async with bot:
        with pytest.raises(RetryAfter, match="Retry in 7 seconds"):
            await bot.send_message(CONTACT, "first")
        await bot.send_message(CONTACT, "second")
    failed, ok = tg.calls("sendMessage")
    assert (failed.status, failed.error) == (429, "Too Many Requests: retry after 7")
    assert ok.status == 200 and [m["text"] for m in tg.sent_messages()] == ["second"]
    async with aiohttp.ClientSession() as http:  # the official error shape, byte for byte
        tg.fail(None, 429, retry_after=3)
        async with http.post(f"{tg.base_url}{tg.token}/getMe") as resp:
            assert resp.status == 429
            assert await resp.json() == {"ok": False, "error_code": 429, "description":
                                         "Too Many Requests: retry after 3",
                                         "parameters": {"retry_after": 3}}


async def test_bad_token_is_invalid_token(tg: FakeTelegram) -> None:
    app = build_app(tg, token="987654321:AAHwrongTokenWrongTokenWrongToken-00")
    with pytest.raises(InvalidToken):
        await app.initialize()
    (call,) = tg.log
    assert (call.method, call.status, call.error) == ("getMe", 401, "Unauthorized")


@pytest.mark.filterwarnings("ignore:Please use 'Bot.setMessageReaction'")
async def test_unknown_method_is_404_and_still_counts_as_a_write(tg: FakeTelegram) -> None:
    url = f"{tg.base_url}{tg.token}/fooBar"
    async with aiohttp.ClientSession() as http, http.post(url, data={"chat_id": "5"}) as resp:
        assert resp.status == 404
        assert await resp.json() == {"ok": False, "error_code": 404,
                                     "description": "Not Found: method not found"}
    bot = make_bot(tg)
    async with bot:
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("setMessageReaction", {"chat_id": SURVIVOR,
                                                            "message_id": 1})
    assert [c.method for c in tg.writes_to(SURVIVOR)] == ["setMessageReaction"]


async def test_call_log_and_writes_to(tg: FakeTelegram) -> None:
    tg.set_bot_member(GROUP, "administrator")
    tg.add_user(STRANGER, "Stranger")
    tg.add_profile_photo(SURVIVOR, png("blue"))
    bot = make_bot(tg)
    async with bot:
        chat = await bot.get_chat(GROUP)
        assert chat.title == "Family" and chat.type == "supergroup"
        me = await bot.get_chat_member(GROUP, bot.id)
        assert me.status == "administrator"
        assert (await bot.get_chat_member(GROUP, STRANGER)).status == "left"
        assert [a.user.id for a in await bot.get_chat_administrators(GROUP)] == [bot.id]
        photos = await bot.get_user_profile_photos(SURVIVOR)
        assert photos.total_count == 1
        await bot.set_my_commands([("status", "Is the watcher alive?")])
        assert [c.command for c in await bot.get_my_commands()] == ["status"]
        await bot.delete_my_commands()
        assert tg.writes_to(GROUP) == [] and tg.writes_to(SURVIVOR) == []
        await bot.send_message(CONTACT, "alert")
        await bot.send_message("@family_chat", "oops")  # by username: still a write
    assert tg.calls("getChat")[0].params == {"chat_id": GROUP}
    assert all(c.at >= tg.log[0].at for c in tg.log)
    assert [c.params["text"] for c in tg.writes_to(CONTACT)] == ["alert"]
    assert [c.params["text"] for c in tg.writes_to(GROUP)] == ["oops"]
    assert tg.writes_to(SURVIVOR) == []
    assert [m["chat"]["id"] for m in tg.sent_messages()] == [CONTACT, GROUP]


async def test_next_message_measures_latency(tg: FakeTelegram) -> None:
    async with polling(tg, ["message"]) as (app, _):
        async def alert(update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
            if update.message and update.message.text == "pineapple":
                await app.bot.send_message(CONTACT, "Sam needs help")

        app.add_handler(TypeHandler(Update, alert), group=1)
        update = tg.inject_message(SURVIVOR, SURVIVOR, text="pineapple")
        call = await tg.next_message(CONTACT)
    latency = call.at - tg.updates[update["update_id"]].available_at
    assert 0 < latency < 2
    assert call.result["text"] == "Sam needs help"
    assert tg.writes_to(SURVIVOR) == []


@pytest.mark.parametrize(("code", "description", "error"), [
    (400, "Bad Request: chat not found", BadRequest),
    (403, "Forbidden: bot was blocked by the user", Forbidden),
    (500, None, NetworkError),
])
async def test_injected_errors_map_to_ptb_exceptions(
        tg: FakeTelegram, code: int, description: str | None, error: type[Exception]) -> None:
    tg.fail("sendMessage", code, description, times=2)
    bot = make_bot(tg)
    async with bot:
        pattern = "(?i)" + (description or "Internal Server Error")[-14:]
        for _ in range(2):
            with pytest.raises(error, match=pattern):
                await bot.send_message(CONTACT, "x")
        await bot.send_message(CONTACT, "x")


async def test_blocked_user_hang_and_drop(tg: FakeTelegram) -> None:
    tg.block_bot(CONTACT)
    bot = make_bot(tg, read_timeout=0.3)
    async with bot:
        with pytest.raises(Forbidden, match="bot was blocked by the user"):
            await bot.send_message(CONTACT, "x")
        tg.block_bot(CONTACT, blocked=False)
        tg.hang("sendMessage", 2.0)
        with pytest.raises(TimedOut):
            await bot.send_message(CONTACT, "slow")
        tg.drop("getMe")
        with pytest.raises(NetworkError):
            await bot.get_me()
        assert (await bot.get_me()).id == bot.id
    assert tg.calls("getMe")[-2].status is None  # the dropped one never got an answer


async def test_restart_keeps_or_loses_pending_updates(tg: FakeTelegram) -> None:
    port = tg.port
    kept = tg.inject_message(SURVIVOR, SURVIVOR, text="kept")
    await tg.restart()
    assert tg.port == port and [u["update_id"] for u in tg.pending] == [kept["update_id"]]
    await tg.restart(keep_updates=False)
    assert tg.pending == []
    bot = make_bot(tg)
    async with bot:
        task = asyncio.create_task(bot.get_updates(timeout=5))
        await tg.wait_polling()
        await tg.restart()  # a parked long poll sees its connection cut
        with pytest.raises(NetworkError):
            await task
        assert await bot.get_updates() == ()


async def test_second_poller_gets_conflict(tg: FakeTelegram) -> None:
    # two bots: one Bot's default HTTPXRequest has a pool of 1 and would queue the second poll
    async with make_bot(tg) as old, make_bot(tg) as new:
        first = asyncio.create_task(old.get_updates(timeout=5))
        await tg.wait_polling()
        second = asyncio.create_task(new.get_updates(timeout=5))
        with pytest.raises(Conflict, match="terminated by other getUpdates request"):
            await first
        tg.inject_message(SURVIVOR, SURVIVOR, text="x")
        assert len(await second) == 1


async def test_request_encodings_all_parse_alike(tg: FakeTelegram) -> None:
    url = f"{tg.base_url}{tg.token}/sendMessage"
    markup = '{"inline_keyboard": [[{"text": "ok", "callback_data": "1"}]]}'
    async with aiohttp.ClientSession() as http:
        await (await http.get(url, params={"chat_id": CONTACT, "text": "123",
                                           "reply_markup": markup})).read()
        await (await http.post(url, json={"chat_id": CONTACT, "text": "123",
                                          "reply_markup": markup})).read()
        await (await http.post(url, data={"chat_id": str(CONTACT), "text": "123",
                                          "reply_markup": markup})).read()
        form = aiohttp.FormData({"chat_id": str(CONTACT), "text": "123",
                                 "reply_markup": markup})
        form.add_field("unused", b"bytes", filename="x.bin")  # forces multipart
        await (await http.post(url, data=form)).read()
        async with http.post(f"{tg.base_url}{tg.token}/SENDMESSAGE", json={
                "chat_id": CONTACT, "text": "123"}) as resp:  # methods are case-insensitive
            assert resp.status == 200
    calls = tg.calls("sendMessage")
    assert [c.http_method for c in calls] == ["GET", "POST", "POST", "POST", "POST"]
    assert all(c.status == 200 for c in calls)
    assert all(c.params["chat_id"] == CONTACT and c.params["text"] == "123" for c in calls)
    assert all(c.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "ok"
               for c in calls[:4])


async def test_business_connection_and_message(tg: FakeTelegram) -> None:
    async with polling(tg, ["business_connection", "business_message"]) as (app, received):
        tg.inject_business_connection(SURVIVOR, "bc-1")
        connection = (await next_update(received)).business_connection
        assert connection is not None and connection.user.id == SURVIVOR
        tg.inject_message(STRANGER, STRANGER, text="where are you", kind="business_message",
                          business_connection_id="bc-1")
        update = await next_update(received)
        assert update.business_message is not None
        assert update.business_message.business_connection_id == "bc-1"
        fetched = await app.bot.get_business_connection("bc-1")
        assert fetched.user_chat_id == SURVIVOR
    assert tg.writes_to(STRANGER) == []


async def test_quirk_invalid_token_while_polling_stops_polling_silently(
        tg: FakeTelegram) -> None:
    """PTB's retry loop gives up on InvalidToken (401/404) without telling the Application:
    ``updater.running`` stays True and error_callback is not called. A connector has to watch
    for this itself."""
    async with polling(tg, ["message"]) as (app, received):
        assert app.updater is not None
        tg.fail("getUpdates", 401, times=None)
        tg.inject_message(SURVIVOR, SURVIVOR, text="wake the poll")
        await next_update(received)
        await tg.wait_for_call("getUpdates", lambda c: c.status == 401)
        task = app.updater._Updater__polling_task  # type: ignore[attr-defined]
        with pytest.raises(InvalidToken):  # the polling loop ended by itself (error_callback
            await asyncio.wait_for(task, 5)  # is not called for InvalidToken)...
        assert app.updater.running  # ...while the updater still claims to run
        tg.clear_faults()
        polls = len(tg.calls("getUpdates"))
        with pytest.raises(InvalidToken):  # and stop() re-raises it, skipping the final
            await app.updater.stop()  # offset-confirming getUpdates
        assert not app.updater.running and len(tg.calls("getUpdates")) == polls
