"""Reaction codes: every spelling of a link people copy names the same message, and an
`on` the watcher cannot recognise is refused at load instead of silently never firing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from telegram import Chat

from connectors.telegram.translate import aliases
from detectors.codes import ReactionDetector
from tests.conftest import write_config
from watcher.core.config import ConfigError, load
from watcher.core.models import Event
from watcher.core.reaction_target import canonical

GROUP = Chat(-1001234567890, Chat.SUPERGROUP, title="Family")
NEWS = Chat(-1009876543210, Chat.CHANNEL, title="News", username="Family_News")

SAME_MESSAGE = [
    "https://t.me/c/1234567890/42",
    "t.me/c/1234567890/42",
    "http://t.me/c/1234567890/42/",
    "https://www.t.me/c/1234567890/42?single",
    "https://t.me/c/1234567890/7/42",  # copied inside forum topic 7
    "https://telegram.me/c/1234567890/42#comment",
    "  https://T.ME/c/1234567890/42  ",
    "telegram:-1001234567890/42",
]


def reaction_code(tmp_path: Path, on: str) -> ReactionDetector:
    config = load(write_config(tmp_path, extra=f"""
[codes.like]
person = "sam"
reaction = {{ on = "{on}" }}
playbook = "check-on-me"
"""), environ={})
    return ReactionDetector(config.codes["like"])


def reaction_on(chat: Chat, message_id: int) -> Event:
    """A reaction event as the Telegram connector builds it."""
    return Event(platform="telegram", person="sam", kind="reaction",
                 id=f"{chat.id}/{message_id}/r", at=datetime(2026, 11, 22, tzinfo=UTC),
                 target=f"telegram:{chat.id}/{message_id}",
                 target_aliases=aliases(chat, message_id), emoji="👍")


@pytest.mark.parametrize("on", SAME_MESSAGE)
def test_every_spelling_of_a_message_link_fires(tmp_path: Path, on: str) -> None:
    detector = reaction_code(tmp_path, on)
    assert detector.match(reaction_on(GROUP, 42)) is not None
    assert detector.match(reaction_on(GROUP, 43)) is None  # another message
    assert detector.match(reaction_on(NEWS, 42)) is None  # another chat


@pytest.mark.parametrize("on", ["https://t.me/family_news/42", "t.me/Family_News/3/42",
                                "https://telegram.me/FAMILY_NEWS/42?single"])
def test_public_links_are_case_blind_on_the_name(tmp_path: Path, on: str) -> None:
    detector = reaction_code(tmp_path, on)
    assert detector.match(reaction_on(NEWS, 42)) is not None
    assert detector.match(reaction_on(NEWS, 41)) is None


def test_bluesky_links_keep_the_record_key_exact() -> None:
    assert canonical("bsky.app/profile/Alex.bsky.social/post/3kAbc/") == \
        canonical("https://bsky.app/profile/alex.bsky.social/post/3kAbc")
    assert canonical("https://bsky.app/profile/alex.bsky.social/post/3kabc") != \
        canonical("https://bsky.app/profile/alex.bsky.social/post/3kAbc")


@pytest.mark.parametrize("on", ["https://t.me/c/1234567890", "t.me/c/abc/42",
                                "https://example.com/42", "the photo of the cat",
                                "signal:1700000000123", "https://bsky.app/profile/a/feed/x"])
def test_an_unrecognised_on_is_refused_at_load(tmp_path: Path, on: str) -> None:
    with pytest.raises(ConfigError) as raised:
        reaction_code(tmp_path, on)
    [problem] = raised.value.problems
    assert problem.startswith(f'codes.like.reaction.on: "{on}" is not a message')
    assert "https://t.me/c/1234567890/42" in problem  # it shows a form that works
