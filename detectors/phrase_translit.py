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
   table (`_key_letter`) because no library models chat spellings: vowels, "y" and "w" are
   dropped (Arabic script does not write short vowels; Greeklish writes η as "i" or "h",
   ω as "o" or "w"); "h" after a consonant is dropped ("kh", "ch", "sh", "th", "lh") and
   alone stands for х/χ, so it joins c, q, x as "k"; v -> b (β, в); "j" is й/я/ю except in
   Arabizi (ج -> z); Greeklish "ks" is ξ like "x"; Arabizi "ch" is ش; doubled letters count
   once. For Chinese and Japanese codes the letters are kept as they are: pinyin and romaji
   spell each syllable one way. An Arabic article typed as a word of its own ("al-", "el")
   is left out, as Arabic script joins it to its noun.
3. Digits inside a word are letters in Arabizi (2, 3, 7 -> dropped like the hamza, ع and ح
   they stand for; 5 -> k for خ; 6 -> t for ط; 9 -> k for ق) and in Greeklish (3 -> k for ξ,
   8 -> t for θ, 0 -> dropped for ο) and in Russian volapuk (4 -> ч, 6 and "w" -> ш); tone
   numbers in pinyin ("wo3") are dropped. Which table applies is chosen by the code's
   script, so "3" means ع only to an Arabic code.

The key is lossy on purpose; detectors/phrase.py uses it only where the text and the code are
written in different scripts (Latin text against a Greek code, say), never to compare two
texts in the same script, where the exact comparison is the right one.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Literal

from anyascii import anyascii

from detectors.phrase_normalise import script_of

Convention = Literal["arabic", "greek", "cyrillic", "syllabic", "plain"]

_VOWELS = frozenset("aeiouyw")
_MERGE = {"c": "k", "q": "k", "x": "k", "v": "b"}
_DIGITS: dict[str, dict[str, str]] = {
    "arabic": {"2": "", "3": "", "7": "", "5": "k", "6": "t", "9": "k"},
    "greek": {"3": "k", "8": "t", "0": ""},
    "cyrillic": {"4": "k", "6": "s"},
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
    if "CYRILLIC" in scripts:
        return "cyrillic"
    if scripts & _SYLLABIC:
        return "syllabic"
    return "plain"


@lru_cache(maxsize=4096)
def _latin(ch: str) -> str:
    """One letter in Latin, lower case, letters only."""
    return "".join(c for c in anyascii(ch).lower() if "a" <= c <= "z")


def _key_letter(raw: str, prev: str, convention: Convention) -> str:
    """What one typed Latin letter contributes to the key, given the letter before it."""
    if convention == "syllabic":
        return raw  # pinyin and romaji spell each syllable one way
    if raw in _VOWELS:
        return ""
    if raw == "h":
        # "kh", "ch", "sh", "th", Greeklish "lh" for λη: a mark on the letter before. Alone,
        # "h" is х or χ (also typed "kh", "x"), except in Arabizi where ح and ه are "h" or
        # a digit or nothing.
        if convention == "arabic" or (prev.isalpha() and prev not in _VOWELS):
            return ""
        return "k"
    if raw == "j":
        return "z" if convention == "arabic" else ""  # ج; elsewhere я, ю, й as "ja", "ju", "j"
    if raw == "c" and convention == "arabic":
        return "s"  # "ch" for ش
    if raw == "w" and convention == "cyrillic":
        return "s"  # ш
    if raw == "s" and prev == "k" and convention == "greek":
        return ""  # ξ as "ks" or "x"
    return _MERGE.get(raw, raw)


def chat_key_mapped(norm: str, convention: Convention) -> tuple[str, tuple[int, ...]]:
    """The chat key of a normalised text, and for each key character the index in `norm` of
    the character it came from. Tokens stay tokens (joined by one space); a token with nothing
    left disappears; characters of unspaced scripts become tokens of their own."""
    digits = _DIGITS[convention]
    tokens: list[list[tuple[str, int]]] = []
    at = 0
    for token in norm.split(" "):
        wordy = any(c.isalpha() for c in token)
        current: list[tuple[str, int]] = []
        prev = ""
        for offset, ch in enumerate(token):
            index = at + offset
            unspaced = False
            if ch.isascii():
                raw = digits.get(ch, ch) if wordy and ch.isdigit() else ch
            elif ch.isalpha() or unicodedata.category(ch)[0] == "M":  # Indic vowel signs
                unspaced = script_of(ch) in _UNSPACED
                raw = _latin(ch)
            else:
                raw = ch  # an emoji is a word of its own
                unspaced = True
            if unspaced:
                tokens.append(current)
                current, prev = [], ""
            for r in raw:
                key = _key_letter(r, prev, convention) if "a" <= r <= "z" else r
                prev = r
                # A doubled letter counts once ("marra", "thalassa", "chh").
                if key and not (current and current[-1][0] == key):
                    current.append((key, index))
            if unspaced:
                tokens.append(current)
                current = []
        tokens.append(current)
        at += len(token) + 1
    out: list[str] = []
    where: list[int] = []
    for current in tokens:
        if not current or (convention == "arabic" and [k for k, _ in current] == ["l"]):
            continue  # nothing left, or the Arabic article typed apart ("al-", "el ")
        if out:
            out.append(" ")
            where.append(current[0][1])
        out += [k for k, _ in current]
        where += [i for _, i in current]
    return "".join(out), tuple(where)


def chat_key(norm: str, convention: Convention) -> str:
    return chat_key_mapped(norm, convention)[0]
