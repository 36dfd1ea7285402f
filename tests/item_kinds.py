"""Items of every kind in connectors/item_fields.FIELDS, built from the table itself.

An item for a "read" row is the smallest valid item of its kind (a skeleton, only where the
platform's own model has required fields) with the code's words put at the row's path. So a
new row over an existing kind, or a kind no client library models yet, needs no test code.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from connectors.item_fields import EACH, FIELDS, Field

PHRASE = "pineapple express"
EMOJI = "🆘"
CODES = {PHRASE: "pineapple", EMOJI: "sos"}

_NOW = int(time.time())
_STICKER = {"file_id": "st1", "file_unique_id": "ust1", "width": 512, "height": 512,
            "is_animated": False, "is_video": False, "type": "regular"}
_POLL = {"id": "p1", "question": "Dinner?", "total_voter_count": 0, "is_closed": False,
         "is_anonymous": True, "type": "regular", "allows_multiple_answers": False,
         "allows_revoting": False, "members_only": False,
         "options": [{"text": "yes", "voter_count": 0, "persistent_id": "o1"},
                     {"text": "no", "voter_count": 0, "persistent_id": "o2"}]}

# The required fields of the kinds the Bot API (and so PTB's models) insists on.
TELEGRAM: dict[str, dict[str, Any]] = {
    "photo, video, file, audio, voice, album": {
        "voice": {"file_id": "v1", "file_unique_id": "uv1", "duration": 3}},
    "forwarded message": {"forward_origin": {
        "type": "user", "date": _NOW,
        "sender_user": {"id": 777, "is_bot": False, "first_name": "Someone"}}},
    "poll": {"poll": _POLL},
    "quiz": {"poll": _POLL | {"type": "quiz", "correct_option_ids": [0]}},
    "poll option added": {"poll_option_added": {"option_persistent_id": "o3",
                                                "option_text": "maybe"}},
    "checklist": {"checklist": {"title": "Shopping", "tasks": [{"id": 1, "text": "milk"}]}},
    "checklist tasks added": {"checklist_tasks_added": {"tasks": [{"id": 2, "text": "eggs"}]}},
    "venue": {"venue": {"location": {"latitude": 51.5, "longitude": -0.12},
                        "title": "Cafe", "address": "1 High Street"}},
    "contact card": {"contact": {"phone_number": "+15550000042", "first_name": "Jo"}},
    "sticker": {"sticker": _STICKER},
    "dice": {"dice": {"emoji": "🎲", "value": 4}},
    "gift": {"gift": {"gift": {"id": "g1", "sticker": _STICKER, "star_count": 15}}},
    "topic created": {"forum_topic_created": {"name": "plans", "icon_color": 7322096}},
    "giveaway": {"giveaway": {"chats": [{"id": -1005555555555, "type": "channel"}],
                              "winners_selection_date": _NOW + 3600, "winner_count": 1}},
}

SIGNAL: dict[str, dict[str, Any]] = {
    "poll": {"dataMessage": {"pollCreate": {"question": "Dinner?", "allowMultiple": False,
                                            "options": ["yes", "no"]}}},
    "shared contact": {"dataMessage": {"contacts": [{"name": {"given": "Jo"}}]}},
    "payment": {"dataMessage": {"payment": {"note": "", "receipt": "AAAA"}}},
    "attachment": {"dataMessage": {"attachments": [{
        "contentType": "application/pdf", "filename": "notes.pdf", "id": "notes.pdf",
        "size": 4}]}},
    "story": {"storyMessage": {"allowsReplies": True}},
}


# Fields whose lexicon or API allows only one form: the code is written in that form.
FORMS = {"emoji": EMOJI, "website": "https://example.org/pineapple-express"}


def words_for(row: Field) -> str:
    """What the survivor writes there: the phrase, or its form where only one is allowed."""
    return FORMS.get(row.path.rsplit(".", 1)[-1], PHRASE)


def code_for(row: Field) -> str:
    return CODES[EMOJI] if words_for(row) == EMOJI else CODES[PHRASE]


def place(path: str, value: Any) -> Any:
    """The smallest item holding `value` at `path` (a list gets one element)."""
    if not path:
        return value
    head, _, rest = path.partition(".")
    if head.endswith(EACH):
        return {head[:-len(EACH)]: [place(rest, value)]}
    return {head: place(rest, value)}


def merged(base: Any, more: Any) -> Any:
    """`more` laid over a copy of `base`; a list's first elements are merged in turn."""
    if isinstance(base, dict) and isinstance(more, dict):
        out = copy.deepcopy(base)
        for key, value in more.items():
            out[key] = merged(out[key], value) if key in out else value
        return out
    if isinstance(base, list) and isinstance(more, list):
        return [merged(b, m) for b, m in zip(base, more, strict=False)] + base[len(more):]
    return more


def item(row: Field, skeletons: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The row's words at its path, over the skeleton of its path (an embed that needs its
    own $type and blob), else of its kind, else over nothing."""
    base = skeletons.get(row.path) or skeletons.get(row.kind, {})
    found = merged(base, place(row.path, words_for(row)))
    assert isinstance(found, dict)
    return found


def read_rows(platform: str) -> list[Field]:
    """Each read path once (a path shared by two kinds is one field of the item)."""
    seen: dict[str, Field] = {}
    for row in FIELDS:
        if row.platform == platform and row.read:
            seen.setdefault(f"{row.kind}|{row.path}", row)
    return list(seen.values())


def markdown_row(row: Field) -> str:
    path = f"`{row.path}`" if row.path else "(the whole item)"
    return f"| {row.platform} | {row.kind} | {path} | {'read' if row.read else 'skipped'} " \
           f"| {row.why} |"
