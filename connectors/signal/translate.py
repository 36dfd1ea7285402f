"""Who sent a Signal envelope, and what it means: pure functions, no I/O.

An envelope from a watched person becomes an Event (its images still to be fetched); one
from a registered contact becomes a Response; anything else (strangers, typing, receipts,
stories) is dropped unread. The field names are signal-cli's (``receive.*`` in the
signal-cli-rest-api swagger).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from connectors.item_fields import SIGNAL, fields, prune, words
from connectors.video_frames import Video, VideoLimits
from watcher.core.config import Config
from watcher.core.models import BytesImage, Event, ImageSource, Response

PLATFORM = SIGNAL
_NUMBER_NOISE = re.compile(r"[\s\-().]")
MENTION = "\ufffc"  # what Signal puts in the text where the survivor saw "@Name"


def normalise_number(number: str) -> str:
    """"+44 7700-900 123" and "+447700900123" are the same phone: compare them as one."""
    return _NUMBER_NOISE.sub("", number)


def rest_group_id(group_id: str) -> str:
    """The REST API's send id ("group." + base64) of a group whose envelopes carry group_id."""
    return "group." + base64.b64encode(group_id.encode()).decode()


@dataclass(frozen=True)
class Attachment:
    id: str
    content_type: str


@dataclass(frozen=True)
class Draft:
    """An event before its attachments are fetched (only image/* and video/* are kept)."""

    event: Event
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class Reply:
    """A contact's response, and where an answer to it goes (their number or group)."""

    response: Response
    address: str


@dataclass
class Directory:
    """Watched people and contacts by their Signal identities, built from the config."""

    account: str
    person_uuids: dict[str, str] = field(default_factory=dict)
    person_numbers: dict[str, str] = field(default_factory=dict)
    contact_numbers: dict[str, str] = field(default_factory=dict)
    contact_groups: dict[str, str] = field(default_factory=dict)
    # Contacts' uuids: configured (`contacts.X.signal.uuid`), or learnt from the first
    # envelope that showed a configured number with its uuid. A uuid, once known, is the
    # contact: later envelopes may hide the number, and a number that turns up with another
    # uuid (re-registered, recycled) is no longer theirs.
    contact_uuids: dict[str, str] = field(default_factory=dict)
    configured_uuids: dict[str, str] = field(default_factory=dict)
    # The config's name of each person and contact, by uuid and number: what a mention showed.
    names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Config, account: str) -> Directory:
        found = cls(normalise_number(account))
        for key, person in config.people.items():
            if person.signal and person.signal.uuid:
                found.person_uuids[person.signal.uuid.lower()] = key
            if person.signal and person.signal.number:
                found.person_numbers[normalise_number(person.signal.number)] = key
            if person.signal:
                found._name(person.name, person.signal.uuid, person.signal.number)
        for key, contact in config.contacts.items():
            if contact.signal and contact.signal.number:
                found.contact_numbers[normalise_number(contact.signal.number)] = key
            if contact.signal and contact.signal.group:
                found.contact_groups[contact.signal.group] = key
            if contact.signal and contact.signal.uuid:
                found.contact_uuids[contact.signal.uuid.lower()] = key
                found.configured_uuids[contact.signal.uuid.lower()] = key
            if contact.signal:
                found._name(contact.name, contact.signal.uuid, contact.signal.number)
        return found

    def _name(self, name: str, uuid: str | None, number: str | None) -> None:
        if uuid:
            self.names[uuid.lower()] = name
        if number:
            self.names[normalise_number(number)] = name

    def mentioned(self, mention: Mapping[str, Any]) -> str:
        """The name shown for a mention, as far as the config knows it (else nothing)."""
        uuid = str(mention.get("uuid") or "").lower()
        number = normalise_number(str(mention.get("number") or ""))
        return self.names.get(uuid) or self.names.get(number) or ""

    @property
    def own_person(self) -> str | None:
        """The watched person whose own account this is (linked with consent), if any."""
        return self.person_numbers.get(self.account)

    def watched(self, address: str) -> str | None:
        return self.person_numbers.get(normalise_number(address))

    def person_of(self, envelope: Mapping[str, Any]) -> str | None:
        uuid = str(envelope.get("sourceUuid") or "").lower()
        number = envelope.get("sourceNumber")
        if uuid in self.person_uuids:
            return self.person_uuids[uuid]
        return self.person_numbers.get(normalise_number(number)) if number else None

    def contact_of(self, envelope: Mapping[str, Any]) -> str | None:
        """The contact who sent an envelope, by their uuid; None for anyone else.

        signal-cli always names the sender's uuid (the number only when it is shared), so
        an envelope without one is nobody's. A number-only contact's uuid is learnt from
        their first envelope and insisted on from then on.
        """
        uuid = str(envelope.get("sourceUuid") or "").lower()
        if not uuid:
            return None
        if uuid in self.contact_uuids:
            return self.contact_uuids[uuid]
        number = envelope.get("sourceNumber")
        found = self.contact_numbers.get(normalise_number(str(number))) if number else None
        if found is None or found in self.contact_uuids.values():
            return None  # a stranger, or the contact's number under someone else's uuid
        self.contact_uuids[uuid] = found
        return found

    def learnt(self) -> dict[str, list[str]]:
        """The uuids learnt for number-only contacts, {contact: [number, uuid]}, to keep."""
        numbers = {key: number for number, key in self.contact_numbers.items()}
        configured = set(self.configured_uuids.values())
        return {key: [numbers[key], uuid] for uuid, key in self.contact_uuids.items()
                if key in numbers and key not in configured}

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Take back uuids learnt before a restart, for contacts whose number is unchanged
        and who have no configured uuid (the config always wins)."""
        numbers = {key: number for number, key in self.contact_numbers.items()}
        for key, pair in saved.items():
            if not (isinstance(pair, list) and len(pair) == 2 and numbers.get(key) == pair[0]):
                continue
            uuid = str(pair[1]).lower()
            if uuid and uuid not in self.contact_uuids \
                    and key not in self.contact_uuids.values():
                self.contact_uuids[uuid] = key

    def group_contact(self, group_id: str | None) -> str | None:
        return self.contact_groups.get(rest_group_id(group_id)) if group_id else None


def _at(milliseconds: Any) -> datetime:
    return datetime.fromtimestamp(int(milliseconds) / 1000, tz=UTC)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    """A list field; anything else (a hostile or broken envelope) as none, so one odd field
    never costs the rest of the message."""
    return value if isinstance(value, list) else []


def _image(item: Any) -> Attachment | None:
    """A picture: an image, or a video (Signal sends GIFs as MP4 too), read as its frames."""
    if not isinstance(item, dict) or not item.get("id"):
        return None
    kind = str(item.get("contentType") or "")
    return Attachment(str(item["id"]), kind) if kind.startswith(("image/", "video/")) else None


def stills(attachment: Attachment, data: bytes, max_bytes: int) -> tuple[ImageSource, ...]:
    """What the image codes look at in a fetched attachment: the image itself, or a
    video's frames (connectors/video_frames.py; decoded later, in the detection thread)."""
    source = BytesImage(data, attachment.id)
    if attachment.content_type.startswith("video/"):
        return Video(source, VideoLimits(max_bytes=max_bytes)).frames()
    return (source,)


def _images(data: Mapping[str, Any]) -> tuple[Attachment, ...]:
    found = (_image(a) for a in _list(data.get("attachments")))
    return tuple(a for a in found if a is not None)


def _sync(envelope: Mapping[str, Any]) -> dict[str, Any]:
    return _dict(envelope.get("syncMessage"))


def _stories(envelope: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [_dict(envelope.get("storyMessage")), _dict(_sync(envelope).get("sentStoryMessage"))]


def attachment_ids(envelope: Mapping[str, Any]) -> list[str]:
    """Every attachment an envelope made the service store (to delete once handled)."""
    sent = _dict(_sync(envelope).get("sentMessage"))
    datas = [_dict(envelope.get("dataMessage")),
             _dict(_dict(envelope.get("editMessage")).get("dataMessage")), sent,
             _dict(_dict(sent.get("editMessage")).get("dataMessage"))]
    items = [a for d in datas for a in _list(d.get("attachments"))]
    items += [s.get("fileAttachment") for s in _stories(envelope)]
    return [str(a["id"]) for a in items if isinstance(a, dict) and a.get("id")]


_KEEP_ENVELOPE = ("sourceUuid", "sourceNumber", "timestamp")
_KEEP_DATA = ("timestamp", "message", "reaction")
_KEEP_STORY = ("timestamp",)


def _read_paths(root: str) -> tuple[str, ...]:
    """The table's read fields under `root`, relative to it: what a copy must keep."""
    prefix = root + "."
    return tuple(f.path.removeprefix(prefix) for f in fields(SIGNAL)
                 if f.path.startswith(prefix))


def _slim_data(data: Mapping[str, Any]) -> dict[str, Any]:
    slim = prune(data, _read_paths("dataMessage"))
    slim |= {k: data[k] for k in _KEEP_DATA if k in data}
    slim["attachments"] = [{k: a.get(k) for k in ("id", "contentType", "caption")}
                           for a in _list(data.get("attachments")) if isinstance(a, dict)]
    slim["mentions"] = [{k: m.get(k) for k in ("uuid", "number", "start") if k in m}
                        for m in _list(data.get("mentions")) if isinstance(m, dict)]
    if group := _dict(data.get("groupInfo")).get("groupId"):
        slim["groupInfo"] = {"groupId": group}
    if (quoted := _dict(data.get("quote")).get("id")) is not None:
        slim["quote"] = {"id": quoted}  # never the quoted text
    if edit := _dict(data.get("editMessage")):  # an own edit, in a sync message
        slim["editMessage"] = {"targetSentTimestamp": edit.get("targetSentTimestamp"),
                               "dataMessage": _slim_data(_dict(edit.get("dataMessage")))}
    return slim


def _slim_story(story: Mapping[str, Any]) -> dict[str, Any]:
    slim = prune(story, _read_paths("storyMessage"))
    slim |= {k: story[k] for k in _KEEP_STORY if k in story}
    file = _dict(story.get("fileAttachment"))
    if file:
        slim["fileAttachment"] = {k: file.get(k) for k in ("id", "contentType", "caption")}
    return slim


def slim(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """Only what handling an envelope needs: the copy kept in the store until it is handled
    carries no names, profile data or quoted text."""
    out = {k: envelope[k] for k in _KEEP_ENVELOPE if k in envelope}
    if data := _dict(envelope.get("dataMessage")):
        out["dataMessage"] = _slim_data(data)
    if edit := _dict(envelope.get("editMessage")):
        out["editMessage"] = {"targetSentTimestamp": edit.get("targetSentTimestamp"),
                              "dataMessage": _slim_data(_dict(edit.get("dataMessage")))}
    if story := _dict(envelope.get("storyMessage")):
        out["storyMessage"] = _slim_story(story)
    sync: dict[str, Any] = {}
    if sent := _dict(_sync(envelope).get("sentMessage")):
        sync["sentMessage"] = _slim_data(sent)
    if sent_story := _dict(_sync(envelope).get("sentStoryMessage")):
        sync["sentStoryMessage"] = _slim_story(sent_story)
    if sync:
        out["syncMessage"] = sync
    return out


def _reaction(person: str, author: str, data: Mapping[str, Any], ts: int) -> Draft:
    react = _dict(data.get("reaction"))
    target_ts = react.get("targetSentTimestamp")
    target = f"signal:{react.get('targetAuthorUuid')}/{target_ts}"
    aliases = {f"signal:{react[k]}/{target_ts}" for k in ("targetAuthorNumber", "targetAuthor")
               if react.get(k)} - {target}
    return Draft(Event(PLATFORM, person, "reaction", f"{author}/{ts}", _at(ts), target=target,
                       target_aliases=tuple(sorted(aliases)), emoji=react.get("emoji") or None,
                       removed=bool(react.get("isRemove"))))


def with_mentions(directory: Directory, data: Mapping[str, Any]) -> str:
    """The text as the survivor saw it: Signal sends each mention as U+FFFC plus a list of
    who was mentioned (in text order); each is put back as "@" and the config's name for
    that person or contact (just "@" for anyone the config does not name)."""
    text = data.get("message")
    if not isinstance(text, str):
        return ""  # none, or a hostile value: never its repr as words
    if MENTION not in text:
        return text
    mentions = sorted((m for m in _list(data.get("mentions")) if isinstance(m, dict)),
                      key=_start)
    names = iter(["@" + directory.mentioned(m) for m in mentions])
    return "".join(next(names, "@") if ch == MENTION else ch for ch in text)


def _start(mention: Mapping[str, Any]) -> int:
    """Where a mention is; an odd value sorts first rather than losing the message."""
    start = mention.get("start")
    return start if isinstance(start, int) else 0


def _draft(person: str, event_id: str, ts: int, view: Mapping[str, Any],
           images: tuple[Attachment, ...], edited: bool = False) -> Draft | None:
    text, pieces = words(SIGNAL, view)
    if not text and not pieces and not images:
        return None  # group updates, stickers, deletions, votes: nothing a code can be in
    return Draft(Event(PLATFORM, person, "message", event_id, _at(ts), text=text,
                       alt=pieces, edited=edited), images)


def _message(directory: Directory, person: str, event_id: str, data: Mapping[str, Any],
             ts: int, edited: bool = False) -> Draft | None:
    view = {"dataMessage": {**data, "message": with_mentions(directory, data)}}
    return _draft(person, event_id, ts, view, _images(data), edited)


def _story(person: str, author: str, story: Mapping[str, Any], ts: int) -> Draft | None:
    """A story the survivor posted: their own words and picture, counted like a message."""
    image = _image(story.get("fileAttachment"))
    return _draft(person, f"{author}/story/{ts}", ts, {"storyMessage": story},
                  (image,) if image else ())


def _edit(directory: Directory, person: str, author: str, edit: Mapping[str, Any],
          ts: int) -> Draft | None:
    data = _dict(edit.get("dataMessage"))
    new_ts = int(data.get("timestamp") or ts)
    event_id = f"{author}/{edit.get('targetSentTimestamp')}/edit/{new_ts}"
    return _message(directory, person, event_id, data, new_ts, edited=True)


def _data_draft(directory: Directory, person: str, author: str, data: Mapping[str, Any],
                fallback_ts: int) -> Draft | None:
    ts = int(data.get("timestamp") or fallback_ts)
    if data.get("reaction"):
        return _reaction(person, author, data, ts)
    if edit := _dict(data.get("editMessage")):  # an edit sent from the survivor's phone
        return _edit(directory, person, author, edit, ts)
    return _message(directory, person, f"{author}/{ts}", data, ts)


def person_draft(directory: Directory, person: str,
                 envelope: Mapping[str, Any]) -> Draft | None:
    """What a watched person did, or None (typing, receipts and such)."""
    draft = _person_draft(directory, person, envelope)
    return None if draft is None else replace(
        draft, event=replace(draft.event, places=places_of(envelope)))


def places_of(envelope: Mapping[str, Any]) -> tuple[str, ...]:
    """Where a watched person was seen: the group (its REST send id), and their own number
    and uuid, which may not be in the config (a person given by uuid only)."""
    found = [str(envelope[k]) for k in ("sourceNumber", "sourceUuid") if envelope.get(k)]
    for data in (_dict(envelope.get("dataMessage")),
                 _dict(_dict(envelope.get("editMessage")).get("dataMessage")),
                 _dict(_dict(envelope.get("syncMessage")).get("sentMessage"))):
        if group := _dict(data.get("groupInfo")).get("groupId"):
            found.append(rest_group_id(str(group)))
    return tuple(dict.fromkeys(found))


def _person_draft(directory: Directory, person: str,
                  envelope: Mapping[str, Any]) -> Draft | None:
    author = str(envelope.get("sourceUuid") or envelope.get("sourceNumber") or "")
    ts = int(envelope.get("timestamp") or 0)
    if data := _dict(envelope.get("dataMessage")):
        return _data_draft(directory, person, author, data, ts)
    if edit := _dict(envelope.get("editMessage")):
        return _edit(directory, person, author, edit, ts)
    if story := _dict(envelope.get("storyMessage")):
        return _story(person, author, story, ts)
    # A sync message is what the linked account itself sent from its phone: that is the
    # person's own activity only when the linked account is theirs.
    if directory.own_person != person:
        return None
    if sent := _dict(_sync(envelope).get("sentMessage")):
        return _data_draft(directory, person, author, sent, ts)
    if story := _dict(_sync(envelope).get("sentStoryMessage")):
        return _story(person, author, story, ts)
    return None


def contact_reply(directory: Directory, config: Config,
                  envelope: Mapping[str, Any]) -> Reply | None:
    """A registered contact's response, or None for anyone and anything else."""
    data = _dict(envelope.get("dataMessage"))
    if not data:
        return None  # edits, syncs, typing, receipts: never a response
    # Whoever speaks must be a configured contact, by their uuid, in a group as much as in
    # a direct message: any other member of a contact group gets silence.
    contact = directory.contact_of(envelope)
    if contact is None:
        return None
    group = _dict(data.get("groupInfo")).get("groupId")
    if group:
        # Only a contact group (the trusted circle's own) is a place to act in: an "ok" in
        # some family group the watched person shares must never acknowledge an alert.
        if directory.group_contact(str(group)) is None:
            return None
        chat = rest_group_id(str(group))
    else:
        signal = config.contacts[contact].signal
        # Answers go to the contact's configured address (their number, or their group
        # when that is how they are reached), never to a number learnt from an envelope.
        chat = (signal.number or signal.group or "") if signal else ""
    response = _response(contact, data, chat, bool(group))
    if response is None or not chat:
        return None
    return Reply(response, chat)


def _response(contact: str, data: Mapping[str, Any], chat: str, group: bool
              ) -> Response | None:
    """`reply_to` is the quoted or reacted-to message's timestamp, which with the chat
    names the alert (a timestamp alone could be one sent elsewhere)."""
    react = _dict(data.get("reaction"))
    if react:
        if react.get("isRemove") or not react.get("emoji"):
            return None
        return Response(PLATFORM, contact, emoji=str(react["emoji"]),
                        reply_to=str(react.get("targetSentTimestamp")), chat=chat,
                        group=group)
    text = str(data.get("message") or "")
    quote = _dict(data.get("quote"))
    if quote.get("id") is not None:
        return Response(PLATFORM, contact, text=text, reply_to=str(quote["id"]), chat=chat,
                        group=group)
    return Response(PLATFORM, contact, text=text, chat=chat, group=group) if text else None
