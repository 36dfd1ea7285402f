"""An ack stops the escalation: only a message that can mean nothing else is one.

The attacker here is not an abuser but haste: a contact typing "Yes I cannot go" with one
thumb must never be recorded as handling the alert.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from playbooks.ack_text import ACK_WORDS, MAX_ACK_WORDS, NEGATIONS, is_ack_text

ISSUE_EXAMPLES = ("Yes I cannot go, someone else please", "Handling it? no I am at work",
                  "okay, who is this?", "k")
# Anything a thumb can produce: letters, punctuation, emoji, spacing, invisible characters.
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)
WORD = st.text(st.characters(categories=("L", "N")), min_size=1, max_size=8)
PUNCT = st.sampled_from(["", ".", "!", ",", " ", "...", "!!", " 🙂", "\u200b"])


def test_the_issues_examples_do_not_ack() -> None:
    for text in ISSUE_EXAMPLES:
        assert not is_ack_text(text), text


def test_ack_words_and_emoji_ack_alone() -> None:
    for text in ("OK", "ok.", "Okay!", "On it", "I'm on it", "I am on it!", "got it",
                 "Yes", "handling it", "ack", "👍", "👍🏿", "👌", "✅", "✔️", "👍👍", " 👍 "):
        assert is_ack_text(text), text
    for text in ("ok 👎", "👎", "❤️", "ok ok", "okk", "yess", "on", "it", "o.k", "", "  ",
                 "👍 but no", "ok, but later", "ok?!", "¿ok", "ok;", "on it?"):
        assert not is_ack_text(text), text


@settings(max_examples=400)
@given(ANY_TEXT, ANY_TEXT, st.sampled_from(["?", "¿", "؟", "？"]))
@example("", "", "?")
def test_a_question_never_acks(before: str, after: str, mark: str) -> None:
    for word in ("ok", "on it", "👍"):
        assert not is_ack_text(f"{before}{word}{mark}{after}")
        assert not is_ack_text(f"{before}{mark}{word}{after}")


@settings(max_examples=400)
@given(st.lists(WORD, min_size=MAX_ACK_WORDS + 1, max_size=12), PUNCT)
def test_more_words_than_any_ack_phrase_never_ack(words: list[str], tail: str) -> None:
    assert not is_ack_text(" ".join(words) + tail)


@settings(max_examples=400)
@given(st.sampled_from(sorted(ACK_WORDS)), st.sampled_from(sorted(NEGATIONS | {"can't",
       "don't", "won't", "CANNOT", "Not"})), st.booleans(), PUNCT)
def test_a_negation_never_acks(ack: str, negation: str, first: bool, tail: str) -> None:
    text = f"{negation} {ack}" if first else f"{ack}, {negation}"
    assert not is_ack_text(text + tail)


@settings(max_examples=400)
@given(st.sampled_from(sorted(ACK_WORDS)), st.lists(WORD, min_size=1, max_size=4), PUNCT)
def test_an_ack_word_with_more_words_never_acks(ack: str, more: list[str], tail: str) -> None:
    text = f"{ack} {' '.join(more)}{tail}"
    if " ".join(text.replace(",", " ").split()).casefold().rstrip(".!, 🙂\u200b") in ACK_WORDS:
        return  # the generator spelt another ack phrase ("on" + "it")
    assert not is_ack_text(text)


@settings(max_examples=300)
@given(st.sampled_from(sorted(ACK_WORDS)), PUNCT, PUNCT)
def test_an_ack_word_alone_acks_whatever_its_case_and_trimming(ack: str, lead: str,
                                                              tail: str) -> None:
    assert is_ack_text(f"{lead.strip(' 🙂')}{ack.upper()}{tail.replace('🙂', '')}")


@settings(max_examples=500)
@given(ANY_TEXT)
def test_any_text_that_acks_is_short_and_has_no_question(text: str) -> None:
    if is_ack_text(text):
        assert "?" not in text and len(text.split()) <= MAX_ACK_WORDS
