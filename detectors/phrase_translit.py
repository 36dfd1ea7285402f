"""Transliterated matching: a code and a text compared as the Latin letters people chat in.

Pure: no I/O. Used only by codes with `transliterated = true` (detectors/phrase.py).

People type their language in Latin letters on phones: Greeklish ("kalhmera", "euxaristw"),
translit ("u nas slomalsya holodilnik"), Arabizi with digits for letters ("ana ta3bana",
"el7aleeb"), Hinglish ("mera neela chhata"), pinyin without tones ("wo de lan se yu san").
Each convention spells the same letter several ways, so an exact transliteration never
matches. Both sides are therefore reduced to a *chat key*:

1. Every letter of another script becomes Latin through `anyascii` (ISC licence; one code
   point at a time, Greek, Cyrillic, Arabic, Devanagari, Han as toneless pinyin, kana,
   Thai, ...). Latin text is left as it is typed.
2. The key keeps what the conventions agree on and drops what they disagree on, a documented
   table because no library models chat spellings: vowels and "y", "w", "h" are dropped
   (Arabic script does not write short vowels, Greeklish writes η as "h", "i" or "h",
   ω as "o" or "w", and "kh", "ch", "sh", "th" lose their "h"); c, q, x -> k (χ is "ch" or
   "x", ق is "q"); v -> b (β, в); j -> z (ж is "zh" or "j"); doubled letters count once.
   For Chinese and Japanese codes vowels are kept: pinyin and romaji spell them one way.
3. Digits inside a word are letters in Arabizi (2, 3, 7 -> dropped like the hamza, ع and ح
   they stand for; 5 -> k for خ; 6 -> t for ط; 9 -> k for ق) and in Greeklish (3 -> k for ξ,
   8 -> t for θ, 0 -> dropped for ο); tone numbers in pinyin ("wo3") are dropped. Which
   table applies is chosen by the code's script, so "3" means ع only to an Arabic code.

The key is lossy on purpose; detectors/phrase.py uses it only where the text and the code are
written in different scripts (Latin text against a Greek code, say), never to compare two
texts in the same script, where the exact comparison is the right one.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from anyascii import anyascii

from detectors.phrase_normalise import script_of

Convention = Literal["arabic", "greek", "syllabic", "plain"]

_DROP = "aeiouyhw"
_MERGE = str.maketrans({"c": "k", "q": "k", "x": "k", "v": "b", "j": "z"})
_DIGITS: dict[str, dict[str, str]] = {
    "arabic": {"2": "", "3": "", "7": "", "5": "k", "6": "t", "9": "k"},
    "greek": {"3": "k", "8": "t", "0": ""},
    "syllabic": dict.fromkeys("0123456789", ""),
    "plain": {},
}
# Scripts written without spaces: every character is a word edge, so each becomes a token.
_UNSPACED = frozenset(("CJK", "HIRAGANA", "KATAKANA", "THAI", "LAO", "KHMER", "MYANMAR"))
_SYLLABIC = frozenset(("CJK", "HIRAGANA", "KATAKANA"))


def convention_for(norm: str) -> Convention:
    """Which chat convention a code written in `norm` is typed in."""
    scripts = {script_of(ch) for ch in norm}
    if "ARABIC" in scripts:
        return "arabic"
    if "GREEK" in scripts:
        return "greek"
    if scripts & _SYLLABIC:
        return "syllabic"
    return "plain"


@lru_cache(maxsize=4096)
def _latin(ch: str) -> str:
    """One letter in Latin, lower case, letters only."""
    return "".join(c for c in anyascii(ch).lower() if "a" <= c <= "z")


def _key_letters(latin: str, convention: Convention) -> str:
    if convention != "syllabic":
        latin = "".join(c for c in latin if c not in _DROP)
    return latin.translate(_MERGE)


def chat_key_mapped(norm: str, convention: Convention) -> tuple[str, tuple[int, ...]]:
    """The chat key of a normalised text, and for each key character the index in `norm` of
    the character it came from. Tokens stay tokens (joined by one space); a token with nothing
    left disappears; characters of unspaced scripts become tokens of their own."""
    digits = _DIGITS[convention]
    out: list[str] = []
    where: list[int] = []
    at = 0
    for token in norm.split(" "):
        wordy = any(c.isalpha() for c in token)
        last = ""
        started = False

        def emit(piece: str, index: int) -> None:
            nonlocal last, started
            for c in piece:
                if c == last:
                    continue  # doubled letters count once, also across source characters
                if not started and out:
                    out.append(" ")
                    where.append(index)
                started = True
                out.append(c)
                where.append(index)
                last = c

        for offset, ch in enumerate(token):
            index = at + offset
            if ch.isascii():
                if ch.isdigit():
                    emit(digits.get(ch, ch) if wordy else ch, index)
                else:
                    emit(_key_letters(ch, convention), index)
            elif ch.isalpha():
                unspaced = script_of(ch) in _UNSPACED
                if unspaced:
                    started, last = False, ""
                emit(_key_letters(_latin(ch), convention), index)
                if unspaced:
                    started, last = False, ""
            else:
                started, last = False, ""  # an emoji is a word of its own
                emit(ch, index)
                started, last = False, ""
        at += len(token) + 1
    return "".join(out), tuple(where)


def chat_key(norm: str, convention: Convention) -> str:
    return chat_key_mapped(norm, convention)[0]
