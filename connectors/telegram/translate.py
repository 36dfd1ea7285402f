"""Who is who on Telegram, and how an update becomes Events or a contact's Response.

Pure functions over PTB objects: no I/O, no logging. Anything not from a configured person
or contact is dropped here without being looked at further (and never logged).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from telegram import (
    CallbackQuery,
    Chat,
    Message,
    MessageOriginChannel,
    MessageReactionUpdated,
    ReactionType,
    ReactionTypeCustomEmoji,
    ReactionTypeEmoji,
    Update,
)

from connectors.item_fields import TELEGRAM, words
from watcher.core.config import Config
from watcher.core.models import Event, ImageSource, Response

PLATFORM = TELEGRAM
# Update kinds carrying a Message, in the order PTB fills them.
MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post",
                 "business_message", "edited_business_message")
# Sent explicitly on every getUpdates: without a list Telegram keeps the previous setting,
# whose default leaves out message_reaction (a reaction code would never fire).
# my_chat_member: the moment the bot is removed, banned or demoted in a watched chat.
ALLOWED_UPDATES = (*MESSAGE_KINDS, "message_reaction", "callback_query", "business_connection",
                   "my_chat_member")
_ACK_DATA = re.compile(r"ack:(\d{1,12})")


@dataclass(frozen=True)
class Directory:
    """The ids the config names, looked up both ways."""

    people: Mapping[int, str]  # user id -> person key
    channels: Mapping[int, str]  # channel id -> person key (their posts count as theirs)
    contacts: Mapping[int, str]  # private chat id -> contact key
    user_ids: Mapping[str, int]  # person key -> user id (profile photos)
    chats: tuple[int, ...]  # chats whose admin rights are checked at start
    watched: frozenset[int]  # every id that must never be written to

    @classmethod
    def from_config(cls, config: Config) -> Directory:
        people = {p.telegram.user_id: key for key, p in config.people.items() if p.telegram}
        channels = {c: key for key, p in config.people.items() if p.telegram
                    for c in p.telegram.channels}
        contacts = {c.telegram.chat_id: key for key, c in config.contacts.items() if c.telegram}
        section = config.connectors.telegram
        configured = list(section.chats) if section else []
        chats = tuple(dict.fromkeys([*configured, *channels]))
        watched = frozenset(people) | frozenset(channels) | frozenset(configured)
        return cls(people, channels, contacts, {v: k for k, v in people.items()}, chats,
                   watched)

    def person_of(self, kind: str, message: Message) -> str | None:
        if kind.endswith("channel_post"):
            return self.channels.get(message.chat.id)
        if message.from_user is not None and message.from_user.id in self.people:
            return self.people[message.from_user.id]
        if message.sender_chat is not None and message.sender_chat.id != message.chat.id:
            # Posted in a group "as" their channel. A sender_chat that is the group itself is
            # an anonymous admin (from @GroupAnonymousBot): any of them, never attributed.
            return self.channels.get(message.sender_chat.id)
        return None

    def reactor(self, reaction: MessageReactionUpdated) -> str | None:
        if reaction.user is not None:
            return self.people.get(reaction.user.id)
        if reaction.actor_chat is not None:
            return self.channels.get(reaction.actor_chat.id)
        return None

    def contact_in_private(self, chat: Chat, user_id: int | None) -> str | None:
        """The contact writing in their own private chat with the bot, else None."""
        if chat.type != Chat.PRIVATE or user_id != chat.id:
            return None
        return self.contacts.get(chat.id)


def incoming_message(update: Update) -> tuple[str, Message] | None:
    for kind in MESSAGE_KINDS:
        message = getattr(update, kind)
        if isinstance(message, Message):
            return kind, message
    return None


def message_ref(message: Message) -> str:
    """A stable, unique id: business chats number messages per connected account. A channel
    post that Telegram copies into the channel's discussion group (an automatic forward) is
    one use of a code, not two: the copy takes the original post's id, so whichever of the
    two arrives second is a duplicate."""
    origin = message.forward_origin
    if message.is_automatic_forward and isinstance(origin, MessageOriginChannel):
        return f"{origin.chat.id}/{origin.message_id}"
    ref = f"{message.chat.id}/{message.message_id}"
    if message.business_connection_id:
        ref = f"business/{message.business_connection_id}/{ref}"
    return ref


def link_forms(chat: Chat, message_id: int) -> list[str]:
    """The t.me links a person would copy for a message (public first), if it has any."""
    if chat.type not in (Chat.SUPERGROUP, Chat.CHANNEL):
        return []  # private chats and basic groups have no message links
    links = [f"https://t.me/{chat.username}/{message_id}"] if chat.username else []
    internal = str(chat.id)
    if internal.startswith("-100"):
        links.append(f"https://t.me/c/{internal[4:]}/{message_id}")
    return links


def aliases(chat: Chat, message_id: int) -> tuple[str, ...]:
    """Every spelling of the links a code's `on` may hold (scheme optional)."""
    found: list[str] = []
    for link in link_forms(chat, message_id):
        bare = link.removeprefix("https://")
        found.extend((link, bare, f"http://{bare}"))
    return tuple(found)


def message_event(kind: str, message: Message, person: str,
                  images: tuple[ImageSource, ...]) -> Event:
    edited = kind.startswith("edited_")
    ref = message_ref(message)
    at = message.date
    if edited:
        at = message.edit_date or message.date
        ref = f"{ref}/edit/{int(at.timestamp())}"
    links = link_forms(message.chat, message.message_id)
    text, pieces = message_words(message)
    return Event(platform=PLATFORM, person=person, kind="message", id=ref, at=at,
                 text=text, alt=pieces, images=images,
                 link=links[0] if links else None, edited=edited,
                 # A business chat's id is the other party's user id: not a place of theirs.
                 places=() if message.business_connection_id else (str(message.chat.id),))


def message_words(message: Message) -> tuple[str, tuple[str, ...]]:
    """Every field of the table (connectors/item_fields.py) that carries the person's words.

    Read from the Bot API's JSON form of the message rather than PTB's attributes, so that a
    field of a newer Bot API than PTB knows (kept in api_kwargs) is read all the same."""
    return words(TELEGRAM, message.to_dict())


def emoji_of(reaction: ReactionType) -> str:
    if isinstance(reaction, ReactionTypeEmoji):
        return reaction.emoji
    if isinstance(reaction, ReactionTypeCustomEmoji):
        return f"custom:{reaction.custom_emoji_id}"
    return reaction.type  # "paid"


def _emojis(reactions: Iterable[ReactionType]) -> list[str]:
    return [emoji_of(r) for r in reactions]


def reaction_events(reaction: MessageReactionUpdated, person: str) -> list[Event]:
    """One event per emoji added; one `removed` event when the reaction was taken back."""
    old, new = _emojis(reaction.old_reaction), _emojis(reaction.new_reaction)
    actor = reaction.user.id if reaction.user else (
        reaction.actor_chat.id if reaction.actor_chat else 0)
    chat, message_id = reaction.chat, reaction.message_id
    base = f"{chat.id}/{message_id}/reaction/{actor}/{int(reaction.date.timestamp())}"
    links = link_forms(chat, message_id)
    template = Event(platform=PLATFORM, person=person, kind="reaction", id=base,
                     at=reaction.date, target=f"telegram:{chat.id}/{message_id}",
                     target_aliases=aliases(chat, message_id), link=links[0] if links else None,
                     places=(str(chat.id),))
    added = [e for e in new if e not in old]
    if not new and old:
        return [replace(template, id=f"{base}/removed", emoji=old[0], removed=True)]
    return [replace(template, id=f"{base}/{emoji}", emoji=emoji) for emoji in added]


def message_response(message: Message, directory: Directory) -> Response | None:
    user = message.from_user.id if message.from_user else None
    contact = directory.contact_in_private(message.chat, user)
    if contact is None:
        return None
    replied = message.reply_to_message
    # Message ids are per chat: the chat travels with the reply so that it names the
    # alert sent into this chat, never one with the same number in another contact's.
    return Response(channel=PLATFORM, contact=contact,
                    text=message.text or message.caption or "",
                    reply_to=str(replied.message_id) if replied else None,
                    chat=str(message.chat.id))


def reaction_response(reaction: MessageReactionUpdated, directory: Directory
                      ) -> Response | None:
    user = reaction.user.id if reaction.user else None
    contact = directory.contact_in_private(reaction.chat, user)
    added = [e for e in _emojis(reaction.new_reaction) if e not in _emojis(reaction.old_reaction)]
    if contact is None or not added:
        return None
    return Response(channel=PLATFORM, contact=contact, emoji=added[0],
                    reply_to=str(reaction.message_id), chat=str(reaction.chat.id))


def callback_contact(query: CallbackQuery, directory: Directory) -> str | None:
    """The contact pressing a button on our message in their own chat; None for anyone else
    (a stranger with a forged button gets nothing at all, not even a button answer)."""
    contact = directory.contacts.get(query.from_user.id)
    message = query.message
    if contact is None or (message is not None and message.chat.id != query.from_user.id):
        return None
    return contact


def callback_response(query: CallbackQuery, contact: str) -> Response:
    found = _ACK_DATA.fullmatch(query.data or "")
    message = query.message
    # The button is pressed in the contact's private chat (callback_contact checked it),
    # whose id is the contact's user id.
    return Response(channel=PLATFORM, contact=contact,
                    incident=int(found.group(1)) if found else None,
                    reply_to=str(message.message_id) if message is not None else None,
                    chat=str(query.from_user.id))
