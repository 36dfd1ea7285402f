"""Telegram: a bot that silently reads a survivor's chats and alerts contacts in private.

We drive getUpdates ourselves (never PTB's Updater or run_polling): the Updater confirms an
offset to Telegram before our handler has stored the events, so a crash could lose a duress
code. Here each update's events are stored together with the offset past it, and only the
next getUpdates (carrying that offset) confirms them to Telegram: at-least-once.

SILENT: the only chats this module ever writes to are configured contacts' private chats,
checked again before every send; nothing goes through a business connection, and nobody
else (strangers, watched chats, the survivor) ever gets an answer or a button answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from aiohttp import web
from telegram import Bot, ChatMemberUpdated, Message, Update, User
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)

from connectors.base import ConnectorError, Sink
from connectors.common import MALFORMED, wait_or_stop
from connectors.telegram.access import (
    anonymous_problem,
    chat_name,
    membership_change,
    migrated_problem,
    status_problem,
    unreachable_problem,
)
from connectors.telegram.client import make_bot
from connectors.telegram.media import NO_PHOTO, MediaFetcher
from connectors.telegram.raw import read_one_by_one
from connectors.telegram.safety import TOKEN_REFUSED, describe, guard_logs, retry_seconds
from connectors.telegram.send import AlertSender
from connectors.telegram.translate import (
    ALLOWED_UPDATES,
    PLATFORM,
    Directory,
    callback_contact,
    callback_response,
    incoming_message,
    message_event,
    message_response,
    reaction_events,
    reaction_response,
)
from watcher.core.backoff import Backoff
from watcher.core.channel import Channel
from watcher.core.clock import Clock, utcnow
from watcher.core.config import Config, parse_duration
from watcher.core.config import TelegramConnector as TelegramSection
from watcher.core.models import DeliveryError, Event, Response

log = logging.getLogger("connectors.telegram")

UPDATES_FEED = "telegram:updates"  # cursor: the next getUpdates offset
CALLBACK_TEXT_MAX = 200  # Telegram's limit for a button answer


def profile_feed(person: str) -> str:
    return f"telegram:profile:{person}"


def chat_feed(chat_id: int) -> str:
    """A watched chat's own health row: a missing right there stays reported (a person's
    feed is marked fine after every successful poll, which would hide it)."""
    return f"telegram:chat:{chat_id}"


class TelegramConnector:
    name = PLATFORM

    def __init__(self, config: Config, bot: Bot | None = None, clock: Clock = utcnow) -> None:
        if config.connectors.telegram is None:
            raise ValueError("no [connectors.telegram] section in the config")
        self.config = config
        self.section: TelegramSection = config.connectors.telegram
        token = config.secrets["connectors.telegram.token"]
        self._token = token
        guard_logs(token)
        self.directory = Directory.from_config(config)
        self.bot = bot or make_bot(token, self.section.api_url)
        self.clock = clock
        self.media = MediaFetcher(self.bot, config.watcher.max_image_bytes,
                                  self.section.local_mode)
        self.sender = AlertSender(self.bot, config, self.directory)
        self._sink: Sink | None = None
        self._me: User | None = None
        self._offset: int | None = None
        self._healthy_chats: list[int] = []
        self._access_news = 0  # counts membership updates and migrations (see _check_chats)
        self._down_since: float | None = None
        self._backoff = Backoff(first=1.0, cap=30.0)
        self._tasks: set[asyncio.Task[None]] = set()

    # -- Connector --------------------------------------------------------------------

    def feeds(self) -> list[str]:
        people = [f"{person}/{PLATFORM}" for person in self.directory.user_ids]
        return people + [chat_feed(c) for c in self.directory.chats]

    def _person_feeds(self) -> list[str]:
        return [f"{person}/{PLATFORM}" for person in self.directory.user_ids]

    @property
    def sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("TelegramConnector.start(sink) was not called")
        return self._sink

    async def start(self, sink: Sink) -> None:
        self._sink = sink
        try:
            me = await self._check_token()
            await self._drop_webhook()
            await self._check_chats(me)
        except (InvalidToken, EndPointNotFound):
            raise ConnectorError(TOKEN_REFUSED, permanent=True) from None
        except TelegramError as exc:
            raise ConnectorError(f"cannot reach Telegram ({describe(exc)}); retrying") from None
        stored = sink.cursor(UPDATES_FEED)
        self._offset = int(stored) if stored else None

    async def _check_token(self) -> User:
        if self._me is None:
            await self.bot.initialize()  # opens both clients and calls getMe
            self._me = self.bot.bot
        else:
            self._me = await self.bot.get_me()  # a token revoked since: caught at restart
        return self._me

    async def _drop_webhook(self) -> None:
        """getUpdates is refused while a webhook is set. Removing one changes the bot's
        settings, never a chat; only done when one is actually set."""
        info = await self.bot.get_webhook_info()
        if info.url:
            log.warning("the bot had a webhook set; removing it so that polling works")
            await self.bot.delete_webhook(drop_pending_updates=False)

    async def _check_chats(self, me: User) -> None:
        """Admin rights are needed to see reactions (and, with privacy mode on, messages):
        a chat without them is a blind spot, reported, not a crash. Run at start and every
        access_check_interval (what no my_chat_member update announces: a deleted chat)."""
        for chat_id in self.directory.chats:
            news = self._access_news
            problem = await self._chat_problem(chat_id, me)
            # An update that arrived while we asked is newer than our answer: it stands.
            if news == self._access_news:
                self._set_access(chat_id, problem)

    async def _chat_problem(self, chat_id: int, me: User) -> str | None:
        try:
            chat = await self.bot.get_chat(chat_id)
            member = await self.bot.get_chat_member(chat_id, me.id)
        except ChatMigrated as exc:
            return migrated_problem(chat_id, int(exc.new_chat_id), str(chat_id))
        except (BadRequest, Forbidden) as exc:
            return unreachable_problem(str(chat_id), describe(exc))
        name = chat_name(chat, chat_id)
        problem = status_problem(member.status, name)
        if problem is None and chat.type != "channel":
            problem = await self._anonymous_person(chat_id, name)
        return problem

    async def _anonymous_person(self, chat_id: int, name: str) -> str | None:
        """A watched person who posts anonymously as an admin cannot be recognised there."""
        for person, user_id in self.directory.user_ids.items():
            try:
                member = await self.bot.get_chat_member(chat_id, user_id)
            except (BadRequest, Forbidden):
                continue  # not in that chat (or unknown to Telegram): nothing to tell apart
            if getattr(member, "is_anonymous", False):
                return anonymous_problem(self.config.people[person].name, name)
        return None

    def _set_access(self, chat_id: int, problem: str | None) -> None:
        """One place decides a watched chat's health: start, the re-check and updates."""
        if problem is None:
            if chat_id not in self._healthy_chats:
                self._healthy_chats.append(chat_id)
            self.sink.feed_ok(chat_feed(chat_id))
            return
        if chat_id in self._healthy_chats:
            self._healthy_chats.remove(chat_id)
        log.warning("the bot cannot fully see a watched chat (details go to the contacts)")
        self.sink.feed_failed(chat_feed(chat_id), problem, permanent=True)

    def _membership(self, change: ChatMemberUpdated) -> None:
        """Telegram tells the bot at once when it is removed, banned, demoted, restricted
        or made admin again; only watched chats matter (a contact blocking the bot in
        private is the sender's business)."""
        chat_id, problem = membership_change(change)
        if chat_id in self.directory.chats:
            self._access_news += 1
            self._set_access(chat_id, problem)

    def _migrated(self, message: Message) -> bool:
        """A service message of a group upgrade (either side): never an event. On the old,
        watched id, the contacts are told the new id."""
        new, old = message.migrate_to_chat_id, message.chat.id
        if new is None:
            return message.migrate_from_chat_id is not None
        if old in self.directory.chats:
            self._access_news += 1
            self._set_access(old, migrated_problem(old, new, chat_name(message.chat, old)))
        return True

    async def run(self, stop: asyncio.Event) -> None:
        side = [asyncio.create_task(self._watch_profiles(stop), name="telegram-profiles"),
                asyncio.create_task(self._watch_access(stop), name="telegram-access")]
        try:
            while not stop.is_set():
                wait = await self._poll_round(stop)
                if wait is not None:
                    await wait_or_stop(stop, wait)
        finally:
            for task in side:
                task.cancel()
            await asyncio.gather(*side, return_exceptions=True)

    async def _poll_round(self, stop: asyncio.Event) -> float | None:
        """One long poll and its updates. None when it worked, else the seconds to wait
        (backoff from 1 s doubling to 30 s). A refused token ends the run: a person must act."""
        try:
            updates = await self._get_updates(self.section.poll_timeout, stop)
            if updates is not None:  # None: stopped
                # A failed download mid-batch lands below; the offset stays before it.
                await self._handle_all(updates)
                # Only now: a read that did not get past its batch is no recovery.
                self._recovered()
        except (InvalidToken, EndPointNotFound):
            raise ConnectorError(TOKEN_REFUSED, permanent=True) from None
        except RetryAfter as exc:
            log.warning("Telegram asked us to slow down; waiting %.0f s", retry_seconds(exc))
            return retry_seconds(exc)
        except MALFORMED as exc:  # PTB could not read the batch: read it one by one
            log.warning("a Telegram update could not be read (%s); reading one by one",
                        type(exc).__name__)
            try:
                await self._handle_raw(await read_one_by_one(
                    self.bot, self.section.api_url, self._token, self._offset,
                    ALLOWED_UPDATES))
            except TelegramError as error:
                self._outage(error)
                return self._backoff.first
        except TelegramError as exc:
            self._outage(exc)
            return self._backoff.failed()
        return None

    async def _get_updates(self, timeout: int, stop: asyncio.Event | None = None
                           ) -> Sequence[Update] | None:
        """getUpdates from the stored offset (this confirms what was stored), raced against
        `stop` so that shutting down never waits out a long poll."""
        poll = asyncio.ensure_future(self.bot.get_updates(
            offset=self._offset, timeout=timeout, limit=100, allowed_updates=ALLOWED_UPDATES))
        if stop is None:
            return await poll
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({poll, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (poll, stopper):
                task.cancel()
            await asyncio.gather(poll, stopper, return_exceptions=True)  # retrieved, always
        if poll.cancelled():
            return None  # nothing is lost: the offset was not moved
        return poll.result()

    def _outage(self, exc: TelegramError) -> None:
        """Logged once per outage, Home Assistant style; reported to the store on every
        failure, so an outage that follows a brief recovery is recorded as a new one."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("Telegram is unavailable (%s); retrying with backoff", describe(exc))
        problem = self._problem(exc)
        for feed in self._person_feeds():
            self.sink.feed_failed(feed, problem)

    @staticmethod
    def _problem(exc: TelegramError) -> str:
        if isinstance(exc, Conflict):
            return ("another program is reading this bot's updates (a second watcher, or a "
                    "webhook): stop it; if you do not know what it is, create a new token "
                    "with @BotFather")
        return f"cannot reach Telegram ({describe(exc)}); retrying"

    def _recovered(self) -> None:
        self._backoff.reset()
        if self._down_since is not None:
            log.info("Telegram is reachable again after %.0f s", time.monotonic()
                     - self._down_since)
            self._down_since = None
        for feed in self._person_feeds():
            self.sink.feed_ok(feed)
        for chat_id in self._healthy_chats:
            self.sink.feed_ok(chat_feed(chat_id))

    async def poll_once(self) -> int:
        """What is waiting now (no long poll), and the profile photos once."""
        count = 0
        try:
            updates = await self._get_updates(0)
            assert updates is not None
            count = await self._handle_all(updates)
            self._recovered()
            count += await self._check_profiles()
        except TelegramError as exc:  # reported; the next run starts from the stored offset
            self._outage(exc)
        return count

    def channel(self) -> Channel | None:
        return self  # it delivers alerts too (send, below)

    def web_routes(self) -> list[web.RouteDef]:
        return []

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bot.shutdown()

    # -- updates ----------------------------------------------------------------------

    async def _handle_all(self, updates: Sequence[Update]) -> int:
        count = 0
        for update in updates:
            count += await self._handle(update)
            self._offset = update.update_id + 1
        return count

    async def _handle_raw(self, items: Sequence[tuple[int | None, Update | None]]) -> int:
        count = 0
        for update_id, update in items:
            if update is not None:
                count += await self._handle(update)
                self._offset = update.update_id + 1
            elif update_id is not None:  # unreadable: told, then skipped; keep reading
                self.sink.unreadable(PLATFORM, f"update {update_id}",
                                     "the Bot API sent an update this version cannot read")
                self.sink.save_cursor(UPDATES_FEED, str(update_id + 1))
                self._offset = update_id + 1
        return count

    async def _handle(self, update: Update) -> int:
        """Store an update's events with the offset past it, in one transaction (the last
        event carries the cursor); an update with no event moves the cursor alone."""
        cursor = (UPDATES_FEED, str(update.update_id + 1))
        try:
            events = await self._events(update)
            if not events:
                self._respond(update)
        except MALFORMED as exc:  # an update we cannot make sense of must not stop the watch
            log.warning("skipped Telegram update %s: it could not be read (%s)",
                        update.update_id, type(exc).__name__)
            events = []
        for event in events[:-1]:
            await self.sink.event(event)
        if events:
            await self.sink.event(events[-1], cursor=cursor)
            log.info("telegram update %s: %d event(s)", update.update_id, len(events))
            return len(events)
        self.sink.save_cursor(*cursor)
        return 0

    async def _events(self, update: Update) -> list[Event]:
        if update.my_chat_member is not None:
            self._membership(update.my_chat_member)
            return []
        if update.message is not None and self._migrated(update.message):
            return []
        if update.message_reaction is not None:
            person = self.directory.reactor(update.message_reaction)
            return reaction_events(update.message_reaction, person) if person else []
        if update.business_connection is not None and not update.business_connection.is_enabled:
            log.warning("a Telegram Business connection to the bot was turned off: the chats "
                        "it covered are no longer watched")
        found = incoming_message(update)
        if found is None:
            return []
        kind, message = found
        person = self.directory.person_of(kind, message)
        if person is None:
            return []  # not a watched person: dropped unread
        images = await self.media.images(message, f"telegram:{message.chat.id}/"
                                                   f"{message.message_id}")
        return [message_event(kind, message, person, images)]

    def _respond(self, update: Update) -> None:
        """A registered contact's message, reaction or button; everyone else: silence."""
        if update.callback_query is not None:
            self._button(update)
            return
        response: Response | None = None
        if update.message is not None:
            response = message_response(update.message, self.directory)
        elif update.message_reaction is not None:
            response = reaction_response(update.message_reaction, self.directory)
        if response is None:
            return
        reply = self.sink.response(response)
        if reply:
            self._spawn(self._reply(response.contact, reply))

    def _button(self, update: Update) -> None:
        query = update.callback_query
        assert query is not None
        contact = callback_contact(query, self.directory)
        if contact is None:
            return  # a stranger (or a forged button): not even an answer
        reply = self.sink.response(callback_response(query, contact))
        self._spawn(self._answer_button(query.id, reply))
        if reply:
            self._spawn(self._reply(contact, reply))

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        """Answers go out in the background: the poll loop never waits on a slow send."""
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("answering a contact failed: %s", describe(exc))

    async def _answer_button(self, query_id: str, reply: str | None) -> None:
        try:
            await self.bot.answer_callback_query(query_id, text=(reply or "")[:CALLBACK_TEXT_MAX]
                                                 or None)
        except TelegramError as exc:
            log.warning("answering a button press failed: %s", describe(exc))

    # -- access -------------------------------------------------------------------------

    async def _watch_access(self, stop: asyncio.Event) -> None:
        """Re-check the bot's rights in every watched chat (start did the first check)."""
        interval = parse_duration(self.section.access_check_interval).total_seconds()
        failing = False
        while not stop.is_set():
            await wait_or_stop(stop, max(interval, 1.0))
            if stop.is_set() or self._me is None:
                return
            try:
                await self._check_chats(self._me)
                failing = False
            except (InvalidToken, EndPointNotFound):
                return  # the update loop reports a refused token
            except TelegramError as exc:
                if not failing:  # once per outage; the update loop reports the feeds
                    log.warning("rights re-check failed: %s", describe(exc))
                failing = True
            except Exception:  # a bug here must not end the message watch
                log.exception("rights re-check crashed")

    # -- profile photos ---------------------------------------------------------------

    async def _watch_profiles(self, stop: asyncio.Event) -> None:
        interval = parse_duration(self.section.profile_photo_interval).total_seconds()
        failing = False
        while not stop.is_set():
            try:
                await self._check_profiles()
                failing = False
            except TelegramError as exc:
                if not failing:  # once per outage; the update loop reports the feed
                    log.warning("profile photo check failed: %s", describe(exc))
                failing = True
            except Exception:  # a bug here must not end the message watch
                log.exception("profile photo check crashed")
            await wait_or_stop(stop, max(interval, 1.0))

    async def _check_profiles(self) -> int:
        """The first look records the current photo without alerting (it predates the
        watch); afterwards every change of photo is an event with the new image."""
        count = 0
        for person, user_id in self.directory.user_ids.items():
            count += await self._check_profile(person, user_id)
        return count

    async def _check_profile(self, person: str, user_id: int) -> int:
        feed = profile_feed(person)
        photo = await self.media.current_profile_photo(user_id)
        current = photo.file_unique_id if photo else NO_PHOTO
        previous = self.sink.cursor(feed)
        if current == previous:
            return 0
        if previous is None or photo is None:
            self.sink.save_cursor(feed, current)
            return 0
        now = self.clock()
        name = f"telegram:profile/{user_id}"
        image = await self.media.fetch(photo.file_id, photo.file_size, name)
        # The time is part of the id: switching back to an earlier photo is a new signal.
        event = Event(platform=PLATFORM, person=person, kind="profile",
                      id=f"profile/{user_id}/{current}/{int(now.timestamp())}", at=now,
                      images=(image,))
        await self.sink.event(event, cursor=(feed, current))
        log.info("profile photo of %s changed", person)
        return 1

    # -- Sender -----------------------------------------------------------------------

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        return await self.sender.send(contact, address, text, incident)

    async def _reply(self, contact: str, text: str) -> None:
        chat = self.config.contacts[contact].telegram
        if chat is None:
            return
        try:
            await self.sender.deliver(chat.chat_id, text, None)
        except DeliveryError as exc:
            log.warning("reply to %s failed: %s", contact, exc.message)
