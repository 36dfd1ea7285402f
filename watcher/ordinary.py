"""Codes that would fire on ordinary text: warned about at `check` and when `run` starts.

`watcher audit` measures this on a person's real history; this catches the obvious cases
before there is any history: a phrase too short to be rare ("ok"), one made only of everyday
words ("good morning"), or a single everyday emoji ("👍"). Only what is near certain to
appear in ordinary messages is named, so that a warning is taken seriously when it comes.
The warnings name the code's key, never the phrase (a code is a secret between two people).
"""

from __future__ import annotations

import unicodedata

from detectors.phrase_normalise import normalise
from watcher.core.config_schema import Config

# Fewer letters than this (after normalisation, spaces removed) and a phrase is found inside
# ordinary words and chatter ("ok", "sos" in "sosig", "hey").
MIN_LETTERS = 4
# A phrase of at most this many words, all of them everyday words, is ordinary text.
MAX_COMMON_WORDS = 2

# Everyday English words and chat replies (the most frequent words of written and chat
# English, trimmed to those that are whole messages or halves of one).
_WORDS = """
a about after again all also am an and any are as at away back bad be because been before
being best better big both but by bye call can come could day did do does done down each
even every fine for from get go going good got great had has have he hello her here hey hi
him his home how i if in into is it its just know last later let like little long look lol
love made make man many maybe me more morning most much my need never new next nice night
no not now of off oh ok okay old on one only or other our out over people please really
right said same say see she should so some soon sorry still such sure take tell than thank
thanks that the their them then there these they thing think this time to today tomorrow
too two up us very want was way we well went were what when where which who why will with
work would yeah yes yet you your
"""
COMMON_WORDS = frozenset(_WORDS.split())

# Emoji people send every day on their own, as a whole message or a reaction.
COMMON_EMOJI = frozenset(
    "👍👎❤😂🤣😊😍🙏😭😘🥰😁😉🙂😅👌🔥🎉💯😢😮😡👏💪🤔😀😃😄😆🥺✨💕💖💙💜💚🖤💛🤍🤗😎😜🙄😴🤷"
)


def _only_symbols(text: str) -> str:
    """The text without variation selectors, skin tones and joiners, if it has no letter."""
    kept = "".join(ch for ch in text if not ch.isspace()
                   and unicodedata.category(ch) not in ("Mn", "Cf", "Sk")
                   and not 0x1F3FB <= ord(ch) <= 0x1F3FF)
    return "" if any(ch.isalnum() for ch in kept) else kept


def phrase_warning(phrase: str) -> str | None:
    """Why this phrase would fire on ordinary text, or None when it would not obviously."""
    symbols = _only_symbols(phrase)
    if symbols:
        if len(symbols) == 1 and symbols in COMMON_EMOJI:
            return "a single everyday emoji"
        return None  # emoji sequences and rarer symbols: the audit is the judge
    words = normalise(phrase).split()
    letters = sum(len(w) for w in words)
    if 0 < letters < MIN_LETTERS:
        return f"very short ({letters} letters)"
    if words and len(words) <= MAX_COMMON_WORDS and all(w in COMMON_WORDS for w in words):
        return "only everyday words"
    return None


def ordinary_text_warnings(config: Config) -> list[str]:
    """One warning per phrase that would fire on ordinary text. Stand-down phrases count
    too (one would end a real alert); check-in phrases do not (they are meant to be said)."""
    found = []
    for key, code in config.codes.items():
        for i, phrase in enumerate(code.phrase or []):
            why = phrase_warning(phrase) if phrase.strip() else None
            if why is not None:
                found.append(f"codes.{key}.phrase[{i}]: {why}, so it would fire on ordinary "
                             "messages and cause false alarms; choose a longer, rarer phrase "
                             "and try it with `watcher audit`")
    return found
