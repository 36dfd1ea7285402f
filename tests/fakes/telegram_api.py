"""A loopback stand-in for the Telegram Bot API, for driving python-telegram-bot (PTB 22) in tests.

    async with FakeTelegram() as tg:
        app = (Application.builder().token(tg.token).base_url(tg.base_url)
               .base_file_url(tg.base_file_url).build())
        update = tg.inject_message(ALICE, ALICE, text="pineapple")
        call = await tg.next_message(CONTACT)
        latency = call.at - tg.updates[update["update_id"]].available_at
        assert tg.writes_to(ALICE) == []

Shapes follow https://core.telegram.org/bots/api and what PTB parses; dates are unix seconds.
Everything runs on the test's event loop; ``Call.at`` and ``Queued.*_at`` are ``time.monotonic()``.
parse_mode is stored, never rendered. Unknown methods answer 404 but are still logged and still
count in ``writes_to``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import itertools
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Self, TypeVar
from urllib.parse import unquote

import pytest_asyncio
from aiohttp import web

JSON = dict[str, Any]
T = TypeVar("T")
DEFAULT_TOKEN = "123456789:AAHfakeTokenForDuressWatcherTests-0123"
UPDATE_TYPES = frozenset({
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection",
    "business_message", "edited_business_message", "deleted_business_messages", "message_reaction",
    "message_reaction_count", "inline_query", "chosen_inline_result", "callback_query",
    "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
    "my_chat_member", "chat_member", "chat_join_request", "chat_boost", "removed_chat_boost"})
# What the real server sends when allowed_updates is [] or was never given.
DEFAULT_UPDATES = UPDATE_TYPES - {"chat_member", "message_reaction", "message_reaction_count"}
_JSON_PARAMS = {"reply_markup", "reply_parameters", "allowed_updates", "commands", "scope",
                "entities", "caption_entities", "reaction", "link_preview_options", "media",
                "message_ids", "permissions"}
_TEXT_PARAMS = {"text", "caption", "data", "callback_query_id", "file_id", "title", "description",
                "url", "query", "business_connection_id", "inline_message_id", "language_code",
                "parse_mode", "secret_token", "custom_title", "name", "photo", "document"}
_REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            409: "Conflict", 429: "Too Many Requests", 500: "Internal Server Error",
            502: "Bad Gateway"}
_ADMIN = dict.fromkeys(("can_be_edited", "is_anonymous", "can_delete_messages",
                        "can_manage_video_chats", "can_restrict_members", "can_promote_members",
                        "can_change_info", "can_invite_users", "can_post_stories",
                        "can_edit_stories", "can_delete_stories"), False)
_ADMIN["can_manage_chat"] = True
_RESTRICTED = dict.fromkeys((
    "can_change_info", "can_invite_users", "can_pin_messages", "can_send_messages",
    "can_send_polls", "can_send_other_messages", "can_add_web_page_previews", "can_manage_topics",
    "can_send_audios", "can_send_documents", "can_send_photos", "can_send_videos",
    "can_send_video_notes", "can_send_voice_notes", "can_edit_tag", "can_react_to_messages"),
    False) | {
    "is_member": True, "until_date": 0}
_GIFTS = dict.fromkeys(("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription",
                        "gifts_from_channels"), False)
_INT = re.compile(r"-?\d+")
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply "
                "markup of the message are exactly the same as a current content and reply "
                "markup of the message")


class ApiError(Exception):
    """An error reply in the official shape; raise it from a handler or hand it to ``fail``."""

    def __init__(self, code: int, description: str, **parameters: Any) -> None:
        super().__init__(f"{code} {description}")
        self.code, self.description, self.parameters = code, description, parameters

    def body(self) -> JSON:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        return body | {"parameters": self.parameters} if self.parameters else body


@dataclass
class Call:
    """One HTTP request the bot made. ``method`` is canonical ("sendMessage"), "file" for
    downloads; ``status`` stays None while in flight or when the client went away."""

    method: str
    params: JSON
    at: float
    http_method: str = "POST"
    status: int | None = None
    result: Any = None
    error: str | None = None


@dataclass
class Queued:
    """An injected update and when it was made available / first returned / confirmed.
    ``filtered``: dropped at creation because allowed_updates excluded its type (as on Telegram).
    """

    update: JSON
    kind: str
    available_at: float
    delivered_at: float | None = None
    confirmed_at: float | None = None
    filtered: bool = False


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes

    def as_file(self) -> JSON:
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                "file_size": len(self.data), "file_path": self.file_path}


@dataclass
class Fault:
    method: str | None  # lower-case method name; None matches every call
    times: int | None  # None: until clear_faults()
    error: ApiError | None = None
    hang: float = 0.0
    drop: bool = False


class _Signal:
    """Wakes every waiter on each ``fire()``; waiters re-check their own condition."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


def _coerce(name: str, value: str) -> Any:
    """Form values arrive as strings; PTB JSON-encodes everything that is not a string."""
    if name in _JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None
    if name in _TEXT_PARAMS:
        return value
    if _INT.fullmatch(value):
        return int(value)
    if value in ("true", "false"):
        return value == "true"
    try:
        return float(value)
    except ValueError:
        return value


async def _params(request: web.Request) -> JSON:
    raw: dict[str, Any] = dict(request.query)
    if request.body_exists and request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: can't parse JSON")
        raw |= {k: _coerce(k, v) if k in _JSON_PARAMS and isinstance(v, str) else v
                for k, v in body.items()}
        return {k: _coerce(k, v) if k in request.query else v for k, v in raw.items()}
    if request.body_exists:
        for key, value in (await request.post()).items():
            raw[key] = value.file.read() if isinstance(value, web.FileField) else value
    return {k: _coerce(k, v) if isinstance(v, str) else v for k, v in raw.items()}


def _image_size(data: bytes) -> tuple[int, int]:
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return 1280, 960


def _emoji(emoji: str) -> JSON:
    return {"type": "emoji", "emoji": emoji}


class FakeTelegram:
    """The stand-in server plus its script API (plain methods, call them from the test loop)."""

    def __init__(self, token: str = DEFAULT_TOKEN, *, username: str = "duress_test_bot",
                 first_name: str = "Duress Test Bot", host: str = "127.0.0.1", port: int = 0,
                 can_read_all_group_messages: bool = False) -> None:
        self.token, self.host, self.port = token, host, port
        self.bot_user: JSON = {"id": int(token.split(":")[0]), "is_bot": True,
                               "first_name": first_name, "username": username}
        self.me: JSON = self.bot_user | {
            "can_join_groups": True, "can_read_all_group_messages": can_read_all_group_messages,
            "supports_inline_queries": False, "can_connect_to_business": True,
            "has_main_web_app": False}
        self.users: dict[int, JSON] = {}
        self.chats: dict[int, JSON] = {}
        self.members: dict[tuple[int, int], JSON] = {}
        self.blocked_by: set[int] = set()
        self.migrated: dict[int, int] = {}  # old group id -> its supergroup's id
        self.deleted: set[int] = set()
        self.files: dict[str, StoredFile] = {}
        self.profile_photos: dict[int, list[list[JSON]]] = {}
        self.messages: dict[tuple[int, int], JSON] = {}
        self.callbacks: dict[str, JSON] = {}
        self.callback_answers: dict[str, JSON] = {}
        self.business: dict[str, JSON] = {}
        self.commands: dict[str, list[JSON]] = {}
        self.webhook_url = ""
        self.allowed_updates: frozenset[str] = DEFAULT_UPDATES
        self.updates: dict[int, Queued] = {}
        self.log: list[Call] = []
        self._pending: list[Queued] = []
        self._faults: list[Fault] = []
        self._update_ids = itertools.count(734_000_001)
        self._serial = itertools.count(1)
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._poll_generation = self._parked = 0
        self._inflight: dict[int, web.Request] = {}
        self._tick = _Signal()
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._api: dict[str, tuple[str, Callable[[JSON], Any]]] = {
            name[4:].lower(): (name[4:], getattr(self, name))
            for name in dir(self) if name.startswith("api_")}

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0,
                                     access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop serving; open connections (a parked long poll included) are cut, not answered."""
        if self._runner is None:
            return
        self._closing = True
        for request in list(self._inflight.values()):
            if request.transport is not None:
                request.transport.abort()
        self._tick.fire()
        await self._runner.cleanup()
        self._runner, self._closing = None, False

    async def restart(self, *, keep_updates: bool = True) -> None:
        """Simulate a server crash/restart on the same port; optionally lose pending updates."""
        await self.stop()
        if not keep_updates:
            self._pending.clear()
        await self.start()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ HTTP
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = unquote(request.raw_path.split("?", 1)[0])
        if match := re.fullmatch(r"/file/bot([^/]+)/(.+)", path):
            token, method = match[1], "file"
        elif match := re.fullmatch(r"/bot([^/]*)/(\w+)", path):
            known = self._api.get(match[2].lower())
            token, method = match[1], known[0] if known else match[2]
        else:
            return web.json_response(ApiError(404, "Not Found").body(), status=404)
        call = Call(method, {}, time.monotonic(), request.method)
        self.log.append(call)
        self._inflight[id(request)] = request
        try:
            call.params = {"file_path": match[2]} if method == "file" else await _params(request)
            if token != self.token:
                raise ApiError(401, "Unauthorized")
            await self._apply_fault(method, request)
            if method == "file":
                stored = next((f for f in self.files.values() if f.file_path == match[2]), None)
                if stored is None:
                    raise ApiError(404, "Not Found")
                call.status = 200
                return web.Response(body=stored.data, content_type="application/octet-stream")
            entry = self._api.get(method.lower())
            if entry is None:
                raise ApiError(404, "Not Found: method not found")
            result = entry[1](call.params)
            if asyncio.iscoroutine(result):
                result = await result
            call.status, call.result = 200, result
            return web.json_response({"ok": True, "result": result})
        except (ApiError, ValueError, KeyError, TypeError, AttributeError) as exc:
            error = exc if isinstance(exc, ApiError) else ApiError(400, f"Bad Request: {exc!r}")
            call.status, call.error = error.code, error.description
            return web.json_response(error.body(), status=error.code)
        finally:
            self._inflight.pop(id(request), None)
            self._tick.fire()

    async def _apply_fault(self, method: str, request: web.Request) -> None:
        fault = next((f for f in self._faults if f.method in (None, method.lower())), None)
        if fault is None:
            return
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
        if fault.hang:
            await asyncio.sleep(fault.hang)
        if fault.drop and request.transport is not None:
            request.transport.abort()
            await asyncio.sleep(3600)  # cancelled at once: aiohttp cancels handlers on disconnect
        if fault.error is not None:
            raise fault.error

    # ------------------------------------------------------------------ script API: world
    def add_user(self, user_id: int, first_name: str = "", *, last_name: str | None = None,
                 username: str | None = None, is_bot: bool = False,
                 language_code: str | None = None) -> JSON:
        """Register a user (and, for humans, their private chat with the bot)."""
        user: JSON = {"id": user_id, "is_bot": is_bot, "first_name": first_name or f"User{user_id}",
                "last_name": last_name, "username": username, "language_code": language_code}
        user = {k: v for k, v in user.items() if v is not None}
        self.users[user_id] = user
        if not is_bot:
            names: JSON = {k: user[k] for k in ("first_name", "last_name", "username") if k in user}
            self.chats[user_id] = {"id": user_id, "type": "private", **names}
        return user

    def add_chat(self, chat_id: int, type: str | None = None, title: str | None = None, *,
                 username: str | None = None, is_forum: bool | None = None) -> JSON:
        """type: private/group/supergroup/channel (default from the id's sign and -100 prefix)."""
        kind = type or ("private" if chat_id > 0 else
                        "supergroup" if str(chat_id).startswith("-100") else "group")
        if kind not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat type {kind!r}")
        if kind == "private":
            if chat_id not in self.users:
                self.add_user(chat_id, username=username)
            return self.chats[chat_id]
        chat = {"id": chat_id, "type": kind, "title": title or f"Chat {chat_id}",
                "username": username, "is_forum": is_forum}
        self.chats[chat_id] = {k: v for k, v in chat.items() if v is not None}
        return self.chats[chat_id]

    def set_member(self, chat_id: int, user_id: int, status: str = "member", **fields: Any) -> None:
        """status: creator/administrator/member/restricted/left/kicked; fields: rights etc."""
        self.members[(chat_id, user_id)] = {"status": status, **fields}

    def set_bot_member(self, chat_id: int, status: str = "administrator", **rights: Any) -> None:
        self.set_member(chat_id, self.bot_user["id"], status, **rights)

    def change_bot_member(self, chat_id: int, status: str, by: int | JSON,
                          **rights: Any) -> JSON:
        """Someone (`by`) removes, bans, demotes, restricts or promotes the bot in a chat, as
        on Telegram: its membership changes and a my_chat_member update (ChatMemberUpdated)
        is queued (dropped if the bot's allowed_updates leave it out)."""
        chat = self.chats[chat_id]
        old = self._member(chat, self.bot_user["id"])
        self.set_bot_member(chat_id, status, **rights)
        new = self._member(chat, self.bot_user["id"])
        return self.inject_update("my_chat_member", {
            "chat": chat, "from": self._user(by), "date": int(time.time()),
            "old_chat_member": old, "new_chat_member": new})

    def revoke_token(self, new_token: str | None = None) -> str:
        """The owner revokes the token in @BotFather: the old one gets 401 Unauthorized."""
        bot_id = self.bot_user["id"]
        self.token = new_token or f"{bot_id}:{secrets.token_urlsafe(26)[:35]}"
        return self.token

    def migrate_chat(self, old_id: int, new_id: int, by: int | JSON) -> tuple[JSON, JSON]:
        """A group is upgraded to a supergroup: a new id for good, members carried over, one
        service message in each chat (migrate_to_chat_id / migrate_from_chat_id); the old id
        then answers 400 with parameters.migrate_to_chat_id, as on Telegram."""
        old = self.chats[old_id]
        new = self.add_chat(new_id, "supergroup", old.get("title"))
        for (cid, user), record in list(self.members.items()):
            if cid == old_id:
                self.members[(new_id, user)] = dict(record)
        self.migrated[old_id] = new_id
        sender = self._user(by)
        told = self.inject_update("message", self._new_message(
            old, sender, migrate_to_chat_id=new_id))
        follows = self.inject_update("message", self._new_message(
            new, sender, migrate_from_chat_id=old_id))
        return told, follows

    def delete_chat(self, chat_id: int) -> None:
        """The chat is deleted: every later request about it is refused (403)."""
        self.deleted.add(chat_id)

    def block_bot(self, user_id: int, blocked: bool = True) -> None:
        """The user blocks the bot: sends to them fail with 403 'bot was blocked by the user'."""
        (self.blocked_by.add if blocked else self.blocked_by.discard)(user_id)

    def add_file(self, data: bytes, folder: str = "documents", name: str | None = None
                 ) -> StoredFile:
        digest = hashlib.sha256(data).hexdigest()
        serial = next(self._serial)
        ext = "jpg" if folder == "photos" else "bin"
        stored = StoredFile(f"AgACAgQAAxk{serial:05d}{digest[:24]}", f"AQAD{digest[:12]}",
                            f"{folder}/{name or f'file_{serial}.{ext}'}", data)
        self.files[stored.file_id] = stored
        return stored

    def photo_sizes(self, data: bytes) -> list[JSON]:
        """Store an image and return its PhotoSize list (one size)."""
        stored = self.add_file(data, "photos")
        width, height = _image_size(data)
        return [{"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                 "width": width, "height": height, "file_size": len(data)}]

    def media(self, data: bytes, folder: str, *, thumbnail: bytes | None = None,
              **fields: Any) -> JSON:
        """Store a sticker, animation, video or video note and return its Bot API object
        (file_id, file_unique_id, file_size, `fields`, and a thumbnail PhotoSize when
        `thumbnail` is given), for inject_message(sticker=..., animation=..., ...)."""
        stored = self.add_file(data, folder)
        found: JSON = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                       "file_size": len(data), **fields}
        if thumbnail is not None:
            [found["thumbnail"]] = self.photo_sizes(thumbnail)
        return found

    def add_profile_photo(self, user_id: int, data: bytes) -> list[JSON]:
        sizes = self.photo_sizes(data)
        self.profile_photos.setdefault(user_id, []).insert(0, sizes)
        return sizes

    def _user(self, user: int | JSON) -> JSON:
        if isinstance(user, dict):
            return user
        return self.users.get(user) or self.add_user(user)

    def _new_message(self, chat: JSON, sender: JSON | None, message_id: int | None = None,
                     **fields: Any) -> JSON:
        counter = self._message_ids.setdefault(chat["id"], itertools.count(1))
        msg: JSON = {"message_id": message_id or next(counter), "date": int(time.time()),
                     "chat": chat}
        if chat["type"] == "channel":
            msg["sender_chat"] = chat
        elif sender is not None:
            msg["from"] = sender
        msg |= {k: v for k, v in fields.items() if v is not None}
        self.messages[(chat["id"], msg["message_id"])] = msg
        return msg

    def _quoted(self, chat_id: int, message_id: int) -> JSON | None:
        target = self.messages.get((chat_id, message_id))
        return None if target is None else {
            k: v for k, v in target.items() if k != "reply_to_message"}

    # ------------------------------------------------------------------ script API: updates
    def inject_update(self, kind: str, payload: JSON) -> JSON:
        """Queue a raw update; returns the Update (with update_id). Types that the last
        allowed_updates excludes are dropped at creation, as Telegram does (see ``updates``)."""
        if kind not in UPDATE_TYPES:
            raise ValueError(f"unknown update type {kind!r}")
        update_id = next(self._update_ids)
        update: JSON = {"update_id": update_id, kind: payload}
        queued = Queued(update, kind, time.monotonic(), filtered=kind not in self.allowed_updates)
        self.updates[update_id] = queued
        if not queued.filtered:
            self._pending.append(queued)
        self._tick.fire()
        return update

    def inject_message(self, chat_id: int, from_user: int | JSON | None = None,
                       text: str | None = None, *, photo: bytes | None = None,
                       document: bytes | JSON | None = None, file_name: str = "document.bin",
                       mime_type: str = "application/octet-stream", caption: str | None = None,
                       reply_to_message_id: int | None = None, kind: str = "message",
                       message_id: int | None = None, business_connection_id: str | None = None,
                       **extra: Any) -> JSON:
        """kind: message, edited_message, channel_post, edited_channel_post, business_message,
        edited_business_message. Edits need the earlier ``message_id``. Returns the Update."""
        channel = kind.endswith("channel_post")
        chat = self.chats.get(chat_id) or self.add_chat(chat_id, "channel" if channel else None)
        if from_user is None and not channel and chat["type"] != "private":
            raise ValueError("from_user is needed outside private chats and channels")
        sender = None if channel else self._user(chat_id if from_user is None else from_user)
        content: JSON = {"text": text, "caption": caption,
                         "business_connection_id": business_connection_id, **extra}
        if photo is not None:
            content["photo"] = self.photo_sizes(photo)
        if isinstance(document, dict):  # a Document object already made (an animation's)
            content["document"] = document
        elif document is not None:
            stored = self.add_file(document, "documents", file_name)
            content["document"] = {"file_id": stored.file_id, "file_unique_id":
                                   stored.file_unique_id, "file_name": file_name,
                                   "mime_type": mime_type, "file_size": len(document)}
        if reply_to_message_id is not None:
            content["reply_to_message"] = self._quoted(chat_id, reply_to_message_id) or {
                "message_id": reply_to_message_id, "date": int(time.time()), "chat": chat}
        if kind.startswith("edited_"):
            if message_id is None:
                raise ValueError("edited updates need message_id")
            old = self.messages.get((chat_id, message_id), {
                "message_id": message_id, "date": int(time.time()) - 1, "chat": chat})
            msg = old | {k: v for k, v in content.items() if v is not None}
            msg["edit_date"] = int(time.time())
            if sender is not None:
                msg["from"] = sender
            self.messages[(chat_id, message_id)] = msg
        else:
            msg = self._new_message(chat, sender, message_id, **content)
        if sender is not None and chat["type"] in ("group", "supergroup"):
            self.members.setdefault((chat_id, sender["id"]), {"status": "member"})
        return self.inject_update(kind, msg)

    def inject_reaction(self, chat_id: int, user: int | JSON | None, message_id: int,
                        new_emoji: Iterable[str] = (), old_emoji: Iterable[str] = (), *,
                        actor_chat: JSON | None = None) -> JSON:
        chat = self.chats.get(chat_id) or self.add_chat(chat_id)
        payload: JSON = {"chat": chat, "message_id": message_id, "date": int(time.time()),
                         "old_reaction": [_emoji(e) for e in old_emoji],
                         "new_reaction": [_emoji(e) for e in new_emoji]}
        if user is not None:
            payload["user"] = self._user(user)
        if actor_chat is not None:
            payload["actor_chat"] = actor_chat
        return self.inject_update("message_reaction", payload)

    def inject_callback(self, from_user: int | JSON, message: JSON, data: str) -> JSON:
        """A button press on ``message`` (a Message dict, e.g. from ``sent_messages()``)."""
        query_id = str(4_170_000_000_000_000 + next(self._serial))
        query = {"id": query_id, "from": self._user(from_user), "message": message,
                 "chat_instance": str(abs(message["chat"]["id"]) * 31 + 7), "data": data}
        self.callbacks[query_id] = query
        return self.inject_update("callback_query", query)

    def inject_business_connection(self, user: int | JSON, connection_id: str | None = None, *,
                                   is_enabled: bool = True, can_reply: bool = True) -> JSON:
        owner = self._user(user)
        payload = {"id": connection_id or f"bc-{next(self._serial)}", "user": owner,
                   "user_chat_id": owner["id"], "date": int(time.time()), "is_enabled": is_enabled,
                   "rights": {"can_reply": can_reply, "can_read_messages": True}}
        self.business[payload["id"]] = payload
        return self.inject_update("business_connection", payload)

    # ------------------------------------------------------------------ script API: faults
    def fail(self, method: str | None = None, error_code: int = 500,
             description: str | None = None, *, times: int | None = 1,
             retry_after: int | None = None, **parameters: Any) -> None:
        """Next ``times`` calls of ``method`` (None: any; times=None: forever) get this error,
        e.g. fail("sendMessage", 429, retry_after=3); fail("getChat", 400,
        "Bad Request: chat not found"); fail("sendMessage", 403,
        "Forbidden: bot was blocked by the user")."""
        if retry_after is not None:
            parameters["retry_after"] = retry_after
        description = description or _REASONS.get(error_code, "Error") + (
            f": retry after {retry_after}" if retry_after is not None else "")
        error = ApiError(error_code, description, **parameters)
        self._faults.append(Fault(method and method.lower(), times, error=error))

    def hang(self, method: str | None = None, seconds: float = 30.0, *, times: int | None = 1
             ) -> None:
        """Hold matching calls for ``seconds`` before serving them normally."""
        self._faults.append(Fault(method and method.lower(), times, hang=seconds))

    def drop(self, method: str | None = None, *, times: int | None = 1) -> None:
        """Cut the connection of matching calls without any HTTP response."""
        self._faults.append(Fault(method and method.lower(), times, drop=True))

    def clear_faults(self) -> None:
        self._faults.clear()

    # ------------------------------------------------------------------ script API: assertions
    def calls(self, method: str | None = None) -> list[Call]:
        return [c for c in self.log if method is None or c.method.lower() == method.lower()]

    def sent_messages(self, chat_id: int | None = None) -> list[JSON]:
        """Messages the bot successfully sent (send* results), optionally to one chat."""
        return [c.result for c in self.log if c.method.startswith("send") and c.status == 200
                and isinstance(c.result, dict)
                and (chat_id is None or c.result["chat"]["id"] == chat_id)]

    def writes_to(self, chat_id: int) -> list[Call]:
        """Every attempted call (any status, any token) that could change what ``chat_id``
        shows: any non-get* method whose chat_id, from_chat_id or scope.chat_id names it."""
        names = {str(chat_id)}
        if username := self.chats.get(chat_id, {}).get("username"):
            names.add(f"@{username}")

        def mentions(p: JSON) -> bool:
            scope = p["scope"] if isinstance(p.get("scope"), dict) else {}
            refs = (p.get("chat_id"), p.get("from_chat_id"), scope.get("chat_id"))
            return any(ref is not None and str(ref) in names for ref in refs)

        return [c for c in self.log if not c.method.lower().startswith("get")
                and c.method != "file" and mentions(c.params)]

    async def wait_for(self, predicate: Callable[[], T | None], timeout: float = 5.0,
                       what: str = "condition") -> T:
        """Await until ``predicate()`` returns something other than None/False."""
        deadline = time.monotonic() + timeout
        while not (result := predicate()):
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            await self._tick.wait(left)
        return result

    async def wait_for_call(self, method: str | None = None,
                            predicate: Callable[[Call], bool] | None = None, *, start: int = 0,
                            timeout: float = 5.0) -> Call:
        """First finished call at log index >= ``start`` matching method and predicate."""
        def find() -> Call | None:
            return next((c for c in self.log[start:] if c.status is not None
                         and (method is None or c.method.lower() == method.lower())
                         and (predicate is None or predicate(c))), None)
        return await self.wait_for(find, timeout, f"a {method or 'any'} call")

    async def next_message(self, chat_id: int | None = None, *, method: str = "sendMessage",
                           timeout: float = 5.0) -> Call:
        """The next successful ``method`` call (to ``chat_id``) made after this call."""
        def to_chat(c: Call) -> bool:
            return c.status == 200 and (chat_id is None or c.result["chat"]["id"] == chat_id)
        return await self.wait_for_call(method, to_chat, start=len(self.log), timeout=timeout)

    async def wait_polling(self, timeout: float = 5.0) -> None:
        """Until a getUpdates long poll is parked on the server (so allowed_updates applied)."""
        await self.wait_for(lambda: self._parked > 0, timeout, "a parked getUpdates")

    async def wait_confirmed(self, update_id: int, timeout: float = 5.0) -> Queued:
        """Until the bot confirmed ``update_id`` by polling with a higher offset."""
        queued = self.updates[update_id]
        return await self.wait_for(lambda: queued if queued.confirmed_at else None, timeout,
                                   f"confirmation of update {update_id}")

    @property
    def pending(self) -> list[JSON]:
        return [q.update for q in self._pending]

    # ------------------------------------------------------------------ Bot API methods
    def _need(self, p: JSON, key: str) -> Any:
        if p.get(key) in (None, ""):
            raise ApiError(400, f"Bad Request: {key} is empty")
        return p[key]

    def _chat(self, p: JSON, key: str = "chat_id") -> JSON:
        ref = str(self._need(p, key))
        if ref.startswith("@"):
            chat = next((c for c in self.chats.values() if c.get("username") == ref[1:]), None)
        else:
            chat = self.chats.get(int(ref)) if _INT.fullmatch(ref) else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat["id"] in self.migrated:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           migrate_to_chat_id=self.migrated[chat["id"]])
        if chat["id"] in self.deleted:
            raise ApiError(403, "Forbidden: the group chat was deleted")
        return chat

    def _visible(self, chat: JSON) -> JSON:
        """Telegram refuses to describe a group or channel to a bot removed from it."""
        if chat["type"] != "private":
            status = self._member(chat, self.bot_user["id"])["status"]
            if status == "kicked":
                raise ApiError(403, f"Forbidden: bot was kicked from the {chat['type']} chat")
            if status == "left":
                raise ApiError(403, f"Forbidden: bot is not a member of the {chat['type']} chat")
        return chat

    def _member(self, chat: JSON, user_id: int) -> JSON:
        user = self.bot_user if user_id == self.bot_user["id"] else self.users.get(user_id)
        if user is None:
            raise ApiError(400, "Bad Request: user not found")
        default = "member" if user is self.bot_user or chat["id"] == user_id else "left"
        record = self.members.get((chat["id"], user_id), {"status": default})
        extras: dict[str, JSON] = {"administrator": _ADMIN, "restricted": _RESTRICTED,
                                   "kicked": {"until_date": 0}, "creator": {"is_anonymous": False}}
        extra = extras.get(record["status"], {})
        member: JSON = {**extra, "user": user, **record}
        return member

    def _check_can_write(self, chat: JSON) -> None:
        if chat["type"] == "private":
            if chat["id"] in self.blocked_by:
                raise ApiError(403, "Forbidden: bot was blocked by the user")
            return
        me = self._member(chat, self.bot_user["id"])
        if me["status"] == "kicked":
            raise ApiError(403, f"Forbidden: bot was kicked from the {chat['type']} chat")
        if me["status"] == "left":
            raise ApiError(403, f"Forbidden: bot is not a member of the {chat['type']} chat")
        if chat["type"] == "channel" and not (me["status"] == "creator"
                                              or me.get("can_post_messages")):
            raise ApiError(400, "Bad Request: need administrator rights in the channel chat")

    @staticmethod
    def _keyboard(markup: Any) -> JSON | None:
        if not isinstance(markup, dict) or "inline_keyboard" not in markup:
            return None  # reply keyboards are accepted but never echoed, as on Telegram
        for button in itertools.chain.from_iterable(markup["inline_keyboard"]):
            if not button.get("text") or len(button) < 2:
                raise ApiError(400, "Bad Request: text buttons are unallowed in the inline "
                                    "keyboard")
            if len(str(button.get("callback_data", "")).encode()) > 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _outgoing(self, p: JSON, **content: Any) -> JSON:
        chat = self._chat(p)
        self._check_can_write(chat)
        sender = self.bot_user
        if (connection := p.get("business_connection_id")) is not None:
            if connection not in self.business:
                raise ApiError(400, "Bad Request: BUSINESS_CONNECTION_INVALID")
            sender = self.business[connection]["user"]
            content |= {"business_connection_id": connection, "sender_business_bot": self.bot_user}
        reply: JSON | None = p.get("reply_parameters") or (
            {"message_id": p["reply_to_message_id"]} if "reply_to_message_id" in p else None)
        if reply:
            quoted = self._quoted(int(reply.get("chat_id") or chat["id"]), int(reply["message_id"]))
            if quoted is None and not (reply.get("allow_sending_without_reply")
                                       or p.get("allow_sending_without_reply")):
                raise ApiError(400, "Bad Request: message to be replied not found")
            content["reply_to_message"] = quoted
        content["reply_markup"] = self._keyboard(p.get("reply_markup"))
        content["has_protected_content"] = True if p.get("protect_content") else None
        return self._new_message(chat, sender, **content)

    def _file_arg(self, value: Any, folder: str) -> StoredFile:
        if isinstance(value, bytes):
            return self.add_file(value, folder)
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    def _caption(self, p: JSON) -> JSON:
        if len(str(p.get("caption") or "")) > 1024:
            raise ApiError(400, "Bad Request: message caption is too long")
        return {"caption": p.get("caption"), "caption_entities": p.get("caption_entities")}

    def api_getMe(self, p: JSON) -> JSON:
        return dict(self.me)

    def api_logOut(self, p: JSON) -> bool:
        return True

    def api_close(self, p: JSON) -> bool:
        return True

    def _set_allowed(self, allowed: Any) -> None:
        if not isinstance(allowed, list):
            raise ApiError(400, "Bad Request: can't parse allowed_updates JSON object")
        self.allowed_updates = frozenset(allowed) if allowed else DEFAULT_UPDATES

    async def api_getUpdates(self, p: JSON) -> list[JSON]:
        if self.webhook_url:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active;"
                                " use deleteWebhook to delete the webhook first")
        if "allowed_updates" in p:
            self._set_allowed(p["allowed_updates"])
        offset, now = int(p.get("offset", 0)), time.monotonic()
        gone = ([q for q in self._pending if q.update["update_id"] < offset] if offset > 0
                else self._pending[:offset] if offset < 0 else [])
        for queued in gone:
            queued.confirmed_at = now
        self._pending = [q for q in self._pending if q not in gone]
        limit = min(max(int(p.get("limit", 100)), 1), 100)
        deadline = now + max(float(p.get("timeout", 0)), 0.0)
        self._poll_generation += 1
        generation = self._poll_generation
        self._tick.fire()  # a newer getUpdates terminates an older one, as on Telegram
        while True:
            if generation != self._poll_generation:
                raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure"
                                    " that only one bot instance is running")
            left = deadline - time.monotonic()
            if self._pending or self._closing or left <= 0:
                break
            self._parked += 1
            self._tick.fire()
            try:
                await self._tick.wait(left)
            finally:
                self._parked -= 1
        batch = self._pending[:limit]
        for queued in batch:
            queued.delivered_at = queued.delivered_at or time.monotonic()
        return [q.update for q in batch]

    def api_setWebhook(self, p: JSON) -> bool:
        self.webhook_url = str(self._need(p, "url"))
        if "allowed_updates" in p:
            self._set_allowed(p["allowed_updates"])
        return self.api_deleteWebhook({"drop_pending_updates": p.get("drop_pending_updates")},
                                      keep_url=True)

    def api_deleteWebhook(self, p: JSON, keep_url: bool = False) -> bool:
        self.webhook_url = self.webhook_url if keep_url else ""
        if p.get("drop_pending_updates"):
            self._pending.clear()
        return True

    def api_getWebhookInfo(self, p: JSON) -> JSON:
        return {"url": self.webhook_url, "has_custom_certificate": False,
                "pending_update_count": len(self._pending)}

    @staticmethod
    def _commands_key(p: JSON) -> str:
        scope = p.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True) + "|" + str(p.get("language_code") or "")

    def api_setMyCommands(self, p: JSON) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command"))):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands[self._commands_key(p)] = commands
        return True

    def api_deleteMyCommands(self, p: JSON) -> bool:
        self.commands.pop(self._commands_key(p), None)
        return True

    def api_getMyCommands(self, p: JSON) -> list[JSON]:
        return self.commands.get(self._commands_key(p), [])

    def api_getChat(self, p: JSON) -> JSON:
        return self._visible(self._chat(p)) | {"accent_color_id": 0, "max_reaction_count": 11,
                                "accepted_gift_types": _GIFTS}

    def api_getChatMember(self, p: JSON) -> JSON:
        return self._member(self._visible(self._chat(p)), int(self._need(p, "user_id")))

    def api_getChatAdministrators(self, p: JSON) -> list[JSON]:
        chat = self._chat(p)
        if chat["type"] == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        return [self._member(chat, user) for (cid, user), rec in self.members.items()
                if cid == chat["id"] and rec["status"] in ("creator", "administrator")]

    def api_getChatMemberCount(self, p: JSON) -> int:
        chat = self._chat(p)
        if chat["type"] == "private":
            return 2
        return sum(1 for (cid, _), rec in self.members.items() if cid == chat["id"]
                   and rec["status"] not in ("left", "kicked"))

    def api_getUserProfilePhotos(self, p: JSON) -> JSON:
        user_id = int(self._need(p, "user_id"))
        if user_id not in self.users:
            raise ApiError(400, "Bad Request: user not found")
        photos = self.profile_photos.get(user_id, [])
        offset, limit = int(p.get("offset", 0)), min(max(int(p.get("limit", 100)), 1), 100)
        return {"total_count": len(photos), "photos": photos[offset:offset + limit]}

    def api_getFile(self, p: JSON) -> JSON:
        stored = self.files.get(str(self._need(p, "file_id")))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > 20 * 1024 * 1024:
            raise ApiError(400, "Bad Request: file is too big")
        return stored.as_file()

    def api_getBusinessConnection(self, p: JSON) -> JSON:
        connection = self.business.get(str(self._need(p, "business_connection_id")))
        if connection is None:
            raise ApiError(400, "Bad Request: BUSINESS_CONNECTION_INVALID")
        return connection

    def api_sendMessage(self, p: JSON) -> JSON:
        text = str(p.get("text") or "")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            raise ApiError(400, "Bad Request: message is too long")
        return self._outgoing(p, text=text, entities=p.get("entities"))

    def api_sendPhoto(self, p: JSON) -> JSON:
        stored = self._file_arg(self._need(p, "photo"), "photos")
        width, height = _image_size(stored.data)
        size = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "width": width, "height": height, "file_size": len(stored.data)}
        return self._outgoing(p, photo=[size], **self._caption(p))

    def api_sendDocument(self, p: JSON) -> JSON:
        stored = self._file_arg(self._need(p, "document"), "documents")
        document = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                    "file_name": stored.file_path.rsplit("/", 1)[-1], "file_size": len(stored.data)}
        return self._outgoing(p, document=document, **self._caption(p))

    def api_editMessageText(self, p: JSON) -> JSON | bool:
        text = str(p.get("text") or "")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if p.get("inline_message_id"):
            return True
        chat = self._chat(p)
        key = (chat["id"], int(self._need(p, "message_id")))
        old = self.messages.get(key)
        if old is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if chat["type"] != "channel" and old.get("from", {}).get("id") != self.bot_user["id"]:
            raise ApiError(400, "Bad Request: message can't be edited")
        markup = self._keyboard(p.get("reply_markup"))  # omitted: the keyboard is removed
        if old.get("text") == text and old.get("reply_markup") == markup:
            raise ApiError(400, NOT_MODIFIED)
        new = {k: v for k, v in old.items() if k not in ("reply_markup", "entities")}
        new |= {"text": text, "edit_date": int(time.time())}
        new |= {k: v for k, v in (("reply_markup", markup), ("entities", p.get("entities"))) if v}
        self.messages[key] = new
        return new

    def api_deleteMessage(self, p: JSON) -> bool:
        key = (self._chat(p)["id"], int(self._need(p, "message_id")))
        if self.messages.pop(key, None) is None:
            raise ApiError(400, "Bad Request: message to delete not found")
        return True

    def api_answerCallbackQuery(self, p: JSON) -> bool:
        query_id = str(self._need(p, "callback_query_id"))
        if query_id not in self.callbacks or query_id in self.callback_answers:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired or "
                                "query ID is invalid")
        self.callback_answers[query_id] = p
        return True


@pytest_asyncio.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    """A running FakeTelegram on an ephemeral port (import it into a conftest to use)."""
    async with FakeTelegram() as server:
        yield server
