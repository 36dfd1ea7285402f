"""Where a watched person's own words can be, per platform and kind of item: the one table.

`FIELDS` is the contract a contact reads before agreeing a code (docs/event-format.md shows
it, and a test keeps the two equal), the list of paths the connectors read, and the list the
coverage test builds one item per "read" row from. A new kind of item that carries words is
one more row here: the connectors walk every "read" path of their platform generically.

A path is written in the platform's own field names (Bot API JSON, signal-cli's JSON, atproto
lexicon), dotted; `[]` walks every element of a list. `main` rows make the event's text
(joined by a new line); every other read string is kept apart in the event's `alt`, so a
phrase is matched inside one piece at a time and never across two (a poll's question and one
of its options cannot join into a code by accident).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

TELEGRAM, SIGNAL, BLUESKY = "telegram", "signal", "bluesky"
EACH = "[]"


@dataclass(frozen=True)
class Field:
    platform: str
    kind: str  # the item kind, as a contact would name it
    path: str  # where the words are, in the platform's own names; "" for a whole item
    read: bool
    why: str
    main: bool = False  # part of the event's text (else one more piece of its `alt`)


def _read(platform: str, kind: str, path: str, why: str, main: bool = False) -> Field:
    return Field(platform, kind, path, True, why, main)


def _skip(platform: str, kind: str, path: str, why: str) -> Field:
    return Field(platform, kind, path, False, why)


_T, _S, _B = TELEGRAM, SIGNAL, BLUESKY
OTHERS = "someone else's words (read where that person is watched), not the survivor's"
PAGE = "written by the linked web page, not the survivor: a shared article would fire"

FIELDS: tuple[Field, ...] = (
    # Telegram: a Message (message, edited_message, channel_post, business_message and their
    # edits all carry one). Unknown (newer) fields are kept by PTB in api_kwargs and read too.
    _read(_T, "text message", "text", "the message itself", main=True),
    _read(_T, "photo, video, file, audio, voice, album", "caption", "typed with the media",
          main=True),
    _read(_T, "forwarded message", "text", "the survivor chose to send it: read like text"),
    _read(_T, "poll", "poll.question", "the survivor's own question"),
    _read(_T, "poll", "poll.options[].text", "options are typed by the poll's author"),
    _read(_T, "poll", "poll.description", "typed by the poll's author (Bot API 10.0)"),
    _read(_T, "quiz", "poll.explanation", "typed by the quiz's author"),
    _read(_T, "poll option added", "poll_option_added.option_text",
          "an option the survivor added to a poll"),
    _read(_T, "checklist", "checklist.title", "the survivor's own title (Bot API 9.1)"),
    _read(_T, "checklist", "checklist.tasks[].text", "each task is typed by the author"),
    _read(_T, "checklist tasks added", "checklist_tasks_added.tasks[].text",
          "tasks the survivor added to a checklist"),
    _read(_T, "venue", "venue.title", "a place the survivor picked or named"),
    _read(_T, "venue", "venue.address", "a place the survivor picked or named"),
    _read(_T, "contact card", "contact.first_name", "a name the survivor saved and shared"),
    _read(_T, "contact card", "contact.last_name", "a name the survivor saved and shared"),
    _skip(_T, "contact card", "contact.phone_number", "a phone number: never kept or logged"),
    _skip(_T, "contact card", "contact.vcard", "repeats the names above, with numbers"),
    _read(_T, "sticker", "sticker.emoji",
          "the emoji the sticker stands for (its image goes to the image codes)", main=True),
    _read(_T, "dice", "dice.emoji", "the survivor chose which die to throw; the value is "
          "random and not read", main=True),
    _read(_T, "gift", "gift.text", "the note the survivor wrote with a gift"),
    _read(_T, "group renamed", "new_chat_title", "a title the survivor typed"),
    _read(_T, "topic created", "forum_topic_created.name", "a topic name the survivor typed"),
    _read(_T, "topic renamed", "forum_topic_edited.name", "a topic name the survivor typed"),
    _read(_T, "giveaway", "giveaway.prize_description", "typed by the survivor's channel"),
    _skip(_T, "location, live location", "location", "coordinates, not words"),
    _skip(_T, "story (forwarded)", "story", "the Bot API gives only the story's chat and id, "
          "never its content"),
    _skip(_T, "reply quote", "quote.text", OTHERS),
    _skip(_T, "reply", "reply_to_message", "an earlier message: read when it was sent"),
    _skip(_T, "pinned message", "pinned_message", "an earlier message: read when it was sent"),
    _skip(_T, "poll option deleted", "poll_option_deleted", "an option taken away: no new "
          "words"),
    _skip(_T, "checklist tasks done", "checklist_tasks_done", "task numbers, no words"),
    _skip(_T, "reply to another chat", "external_reply", OTHERS),
    _skip(_T, "game", "game", "sent by a game bot: its title and text are the bot's"),
    _skip(_T, "invoice", "invoice", "sent by a payment bot: its title and text are the bot's"),
    _skip(_T, "link preview", "link_preview_options", "no words: the link is in the text"),
    _skip(_T, "poll vote", "poll_answer", "Telegram reports votes only on the bot's own polls"),
    _skip(_T, "emoji reaction", "message_reaction", "read as a reaction (emoji and target), "
          "not as words"),
    # Signal: what signal-cli puts in an envelope's dataMessage. The same fields are read in
    # an edit (editMessage.dataMessage) and, when the linked account is the survivor's own,
    # in what their phone sent (syncMessage.sentMessage and its editMessage.dataMessage).
    _read(_S, "text message", "dataMessage.message", "the message itself; each mention "
          "(U+FFFC) is put back as @ and the name the config gives that person", main=True),
    _read(_S, "attachment", "dataMessage.attachments[].caption", "typed with the media"),
    _read(_S, "poll", "dataMessage.pollCreate.question", "the survivor's own question"),
    _read(_S, "poll", "dataMessage.pollCreate.options[]", "options are typed by the author"),
    _read(_S, "shared contact", "dataMessage.contacts[].name.nickname",
          "a name the survivor saved and shared"),
    _read(_S, "shared contact", "dataMessage.contacts[].name.given",
          "a name the survivor saved and shared"),
    _read(_S, "shared contact", "dataMessage.contacts[].name.family",
          "a name the survivor saved and shared"),
    _read(_S, "shared contact", "dataMessage.contacts[].organization",
          "a name the survivor saved and shared"),
    _skip(_S, "shared contact", "dataMessage.contacts[].phone", "phone numbers: never kept"),
    _read(_S, "payment", "dataMessage.payment.note", "the note the survivor wrote"),
    _skip(_S, "sticker", "dataMessage.sticker", "signal-cli gives only the pack and number, "
          "not the sticker's emoji"),
    _skip(_S, "reply quote", "dataMessage.quote.text", OTHERS),
    _skip(_S, "link preview", "dataMessage.previews[].title", PAGE),
    _skip(_S, "link preview", "dataMessage.previews[].description", PAGE),
    _skip(_S, "text styles", "dataMessage.textStyles", "bold or spoiler ranges: no words"),
    _skip(_S, "poll vote", "dataMessage.pollVote", "option numbers of a poll, no words"),
    _skip(_S, "poll ended", "dataMessage.pollTerminate", "no words"),
    _skip(_S, "pin, unpin", "dataMessage.pinMessage", "points at an earlier message: read "
          "when it was sent"),
    _skip(_S, "deletion", "dataMessage.remoteDelete", "no words; a code once sent stays "
          "fired"),
    _skip(_S, "story reply", "dataMessage.storyContext", "which story was answered; the "
          "answer itself is read like a message"),
    _skip(_S, "group name", "dataMessage.groupInfo.groupName", "the group's current name, "
          "sent with every message whoever set it: a name holding a code would fire on each"),
    _skip(_S, "emoji reaction", "dataMessage.reaction", "read as a reaction (emoji and "
          "target), not as words"),
    _read(_S, "story", "storyMessage.textAttachment.text", "a text story the survivor posted "
          "(their own story, seen by the watcher's account: syncMessage.sentStoryMessage "
          "when the account is theirs)", main=True),
    _read(_S, "story", "storyMessage.fileAttachment.caption", "typed with a photo story"),
    _skip(_S, "story", "storyMessage.textAttachment.preview", PAGE),
    # Bluesky: the records of the collections the connector follows (atproto lexicons).
    _read(_B, "post", "text", "the post itself; mentions and links are inline", main=True),
    _read(_B, "post", "embed.images[].alt", "the survivor's description of a picture"),
    _read(_B, "post with a quote", "embed.media.images[].alt",
          "the survivor's description of a picture"),
    _read(_B, "post", "embed.alt", "the survivor's description of a video"),
    _read(_B, "post with a quote", "embed.media.alt", "the survivor's description of a video"),
    _read(_B, "post", "tags[]", "hashtags the survivor added outside the text"),
    _skip(_B, "post", "facets", "byte ranges over the text, which is read whole"),
    _skip(_B, "post", "embed.external.title", PAGE),
    _skip(_B, "post", "embed.external.description", PAGE),
    _skip(_B, "post with a quote", "embed.record", "the quoted post: " + OTHERS),
    _skip(_B, "post", "embed.captions", "subtitle files of a video: not fetched"),
    _skip(_B, "post", "langs", "language codes set by the app"),
    _skip(_B, "post", "reply", "a reference to the post answered, no words"),
    _skip(_B, "threadgate, postgate", "", "who may reply or quote: rules, no words"),
    _read(_B, "profile", "displayName", "the survivor's name on the profile", main=True),
    _read(_B, "profile", "description", "the survivor's bio (a piece of its own: a name "
          "and a bio never join into a code)"),
    _read(_B, "profile", "pronouns", "typed by the survivor"),
    _read(_B, "profile", "website", "typed by the survivor"),
    _skip(_B, "like, repost, follow", "subject", "read as a reaction, repost or follow of "
          "its target, not as words"),
    _skip(_B, "list, starter pack, feed", "name", "their collections are not followed yet: "
          "rare places for a code (issue #19 follow-up)"),
)


def fields(platform: str, read: bool = True) -> tuple[Field, ...]:
    return tuple(f for f in FIELDS if f.platform == platform and f.read == read)


def walk(item: Any, path: str) -> Iterator[Any]:
    """Every value found at `path` in a JSON-like item (nothing for a missing or odd part)."""
    if not path:
        yield item
        return
    head, _, rest = path.partition(".")
    if head.endswith(EACH):
        values = item.get(head[:-len(EACH)]) if isinstance(item, Mapping) else None
        for element in values if isinstance(values, list) else []:
            yield from walk(element, rest)
    elif isinstance(item, Mapping) and head in item:
        yield from walk(item[head], rest)


def _strings(item: Any, path: str) -> list[str]:
    return [v for v in walk(item, path) if isinstance(v, str) and v.strip()]


def words(platform: str, item: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
    """(text, other pieces) of an item: every "read" field of the platform, in table order.

    A path listed twice (a forwarded message's text is a message's text) is read once."""
    main: list[str] = []
    rest: list[str] = []
    seen: set[str] = set()
    for row in fields(platform):
        if row.path in seen:
            continue
        seen.add(row.path)
        (main if row.main else rest).extend(_strings(item, row.path))
    return "\n".join(main), tuple(rest)


def prune(item: Mapping[str, Any], paths: tuple[str, ...]) -> dict[str, Any]:
    """Only the parts of `item` on `paths` (lists keep their elements' wanted parts): what a
    copy kept until the item is handled needs, and nothing else."""
    out: dict[str, Any] = {}
    for path in paths:
        _merge(out, _pick(item, path))
    return out


def _pick(item: Any, path: str) -> Any:
    if not path:
        return item
    head, _, rest = path.partition(".")
    if head.endswith(EACH):
        key = head[:-len(EACH)]
        values = item.get(key) if isinstance(item, Mapping) else None
        if not isinstance(values, list):
            return {}
        return {key: [_pick(v, rest) if isinstance(v, Mapping) or not rest else {}
                      for v in values]}
    if isinstance(item, Mapping) and head in item:
        return {head: _pick(item[head], rest)}
    return {}


def _merge(into: Any, more: Any) -> Any:
    if isinstance(into, dict) and isinstance(more, dict):
        for key, value in more.items():
            into[key] = _merge(into[key], value) if key in into else value
        return into
    if isinstance(into, list) and isinstance(more, list) and len(into) == len(more):
        return [_merge(a, b) for a, b in zip(into, more, strict=True)]
    return more
