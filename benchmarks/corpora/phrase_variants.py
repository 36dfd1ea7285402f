"""Variants of a code phrase as a hurried, scared or evasive person might type it.

Every generator takes a phrase and a random.Random and returns one variant of the phrase
alone; the benchmark embeds it in ordinary text. Typos use codespell's real misspellings where
one exists for a word of the phrase, and keyboard slips (neighbouring key, dropped, doubled or
swapped letter) otherwise. Look-alikes come from the Unicode confusables data shipped by
confusable-homoglyphs, so the variants are not drawn from the matcher's own table.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path

import confusable_homoglyphs
from rapidfuzz.distance import OSA

_ROWS = {
    "latin": ["qwertyuiop", "asdfghjkl", "zxcvbnm"],
    "cyrillic": ["йцукенгшщзхъ", "фывапролджэ", "ячсмитьбю"],
    "arabic": ["ضصثقفغعهخحجد", "شسيبلاتنمكط", "ئءؤرلاىةوزظ"],
}


def script_of(phrase: str) -> str:
    for ch in phrase:
        name = unicodedata.name(ch, "")
        if name.startswith("CYRILLIC"):
            return "cyrillic"
        if name.startswith("ARABIC"):
            return "arabic"
        if ch.isalpha():
            return "latin"
    return "symbols"


@cache
def _neighbours() -> dict[str, str]:
    out: dict[str, str] = {}
    for rows in _ROWS.values():
        for r, row in enumerate(rows):
            for c, ch in enumerate(row):
                near = row[max(c - 1, 0) : c] + row[c + 1 : c + 2]
                for other in (r - 1, r + 1):
                    if 0 <= other < len(rows):
                        near += rows[other][max(c - 1, 0) : c + 1]
                out[ch] = near.replace(ch, "")
    return out


@cache
def _confusables() -> dict[str, list[str]]:
    path = Path(confusable_homoglyphs.__file__).parent / "confusables.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[str]] = {}
    for key, entries in data.items():
        if len(key) == 1 and key.isascii() and key.isalpha():
            twins = [e["c"] for e in entries if len(e["c"]) == 1 and not e["c"].isascii()]
            out[key] = [t for t in twins if unicodedata.category(t).startswith("L")]
    return out


_CYRILLIC_TO_LATIN = dict(zip("аеорсухіјѕАВЕКМНОРСТХ", "aeopcyxijsABEKMHOPCTX", strict=True))
_ACCENTS = ["\u0301", "\u0300", "\u0308", "\u0302", "\u0303", "\u0327", "\u030c", "\u0304"]
_HARAKAT = ["\u064e", "\u064f", "\u0650", "\u0651", "\u0652", "\u064b", "\u064d"]
_ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u200e", "\u200f"]
_SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", " \n ", "\u2003"]
_PUNCT = [",", ".", "...", "!", "?", " -", ";", ":", "!!", " —", "*", "~"]
_EMOJI = ["😢", "🙂", "😂", "🙏", "❤️", "👍🏽", "😭", "🔥", "✨", "😅"]


def case(phrase: str, rng: random.Random) -> str:
    style = rng.randrange(4)
    if style == 0:
        return phrase.upper()
    if style == 1:
        return phrase.title()
    if style == 2:
        return phrase.swapcase()
    return "".join(ch.upper() if rng.random() < 0.5 else ch.lower() for ch in phrase)


def punctuation(phrase: str, rng: random.Random) -> str:
    words = phrase.split(" ")
    out = [words[0]]
    for word in words[1:]:
        out.append((rng.choice(_PUNCT) if rng.random() < 0.5 else "") + " " + word)
    body = "".join(out)
    wrap = rng.choice(['"{}"', "'{}'", "«{}»", "({})", "{}!!!", "...{}...", "“{}”", "*{}*", "{}"])
    return wrap.format(body)


def spacing(phrase: str, rng: random.Random) -> str:
    return "".join(rng.choice(_SPACES) if ch == " " else ch for ch in phrase)


def accents(phrase: str, rng: random.Random) -> str:
    script = script_of(phrase)
    out = []
    for ch in phrase:
        out.append(ch)
        if script == "arabic" and ch.isalpha() and rng.random() < 0.5:
            out.append(rng.choice(_HARAKAT))
        elif script == "cyrillic" and ch in "аеиоуыэюя" and rng.random() < 0.4:
            out.append("\u0301")  # stress marks, as in dictionaries and learners' texts
        elif script == "latin" and ch.isalpha() and rng.random() < 0.4:
            out.append(rng.choice(_ACCENTS))
    text = unicodedata.normalize("NFC", "".join(out))
    if script == "cyrillic" and rng.random() < 0.5:
        text = text.replace("е", "ё", 1)
    if script == "arabic" and rng.random() < 0.5:
        text = text.replace("ا", "أ", 1).replace("ي", "ى", 1)
    return text


def emoji(phrase: str, rng: random.Random) -> str:
    if script_of(phrase) == "symbols":
        # An emoji code: presentation selectors, skin tones, spacing between the symbols.
        glue = rng.choice(["", " ", "\ufe0f", "\ufe0f ", "  "])
        return glue.join(phrase) + rng.choice(["", "\ufe0f"])
    words = phrase.split(" ")
    if rng.random() < 0.5:
        return rng.choice(_EMOJI) + phrase + rng.choice(_EMOJI)
    at = rng.randrange(1, len(words)) if len(words) > 1 else 1
    return " ".join(words[:at]) + " " + rng.choice(_EMOJI) + " " + " ".join(words[at:])


_SMALL_CAPS = dict(zip("abcdefghijklmnopqrstuvwyz", "ᴀʙᴄᴅᴇꜰɢʜɪᴊᴋʟᴍɴᴏᴘǫʀꜱᴛᴜᴠᴡʏᴢ", strict=True))
_KEYBOARD_SCRIPTS = ("CYRILLIC", "GREEK", "ARMENIAN")


def _fancy(phrase: str, rng: random.Random) -> str:
    """The alphabets "fancy text" generators paste: fullwidth, mathematical, small caps,
    circled letters."""
    style = rng.randrange(4)
    if style == 0:
        return "".join(chr(ord(ch) + 0xFEE0) if "!" <= ch <= "~" else ch for ch in phrase)
    if style == 1:
        base = rng.choice([0x1D400, 0x1D41A - 26, 0x1D5A0, 0x1D5D4, 0x1D670, 0x1D4D0, 0x1D56C])
        return "".join(
            chr(base + ord(ch) - 65) if "A" <= ch <= "Z" else
            chr(base + 26 + ord(ch) - 97) if "a" <= ch <= "z" else ch
            for ch in phrase
        )
    if style == 2:
        return "".join(_SMALL_CAPS.get(ch, ch) for ch in phrase)
    return "".join(chr(0x24D0 + ord(ch) - 97) if "a" <= ch <= "z" else ch for ch in phrase)


def _swap_confusables(phrase: str, rng: random.Random, scripts: tuple[str, ...] | None) -> str:
    table = _confusables()
    rate = rng.choice([0.2, 0.5, 1.0])
    out = []
    for ch in phrase:
        twins = [t for t in table.get(ch, [])
                 if scripts is None or unicodedata.name(t, "").startswith(scripts)]
        out.append(rng.choice(twins) if twins and rng.random() < rate else ch)
    return "".join(out)


def lookalike(phrase: str, rng: random.Random) -> str:
    """Look-alikes people really meet: a fancy-text alphabet, or letters from a Cyrillic,
    Greek or Armenian keyboard that imitate Latin ones (Unicode confusables data)."""
    script = script_of(phrase)
    if script == "cyrillic":
        return "".join(
            _CYRILLIC_TO_LATIN.get(ch, ch) if rng.random() < 0.7 else ch for ch in phrase
        )
    if script == "arabic":
        return phrase.replace("ي", "ی").replace("ك", "ک").replace("ا", rng.choice("اأإآ"), 1)
    if script == "symbols":
        return phrase
    if rng.random() < 0.5:
        return _fancy(phrase, rng)
    return _swap_confusables(phrase, rng, _KEYBOARD_SCRIPTS)


def lookalike_any(phrase: str, rng: random.Random) -> str:
    """Stress test: any single-letter confusable of any script in the Unicode data, including
    capital-I shapes standing in for "l" (no target; reported to show the limit)."""
    if script_of(phrase) != "latin":
        return lookalike(phrase, rng)
    return _swap_confusables(phrase, rng, None)


def zero_width(phrase: str, rng: random.Random) -> str:
    out = []
    for ch in phrase:
        out.append(ch)
        if rng.random() < 0.25:
            out.append(rng.choice(_ZERO_WIDTH))
    return "".join(out)


def _slip(word: str, rng: random.Random) -> str:
    """One keyboard slip in a word of two letters or more."""
    i = rng.randrange(len(word))
    kind = rng.randrange(4)
    if kind == 0:
        near = _neighbours().get(word[i].lower(), "")
        if near:
            return word[:i] + rng.choice(near) + word[i + 1 :]
    if kind == 1 and len(word) > 2:
        return word[:i] + word[i + 1 :]  # dropped
    if kind == 2 and i < len(word) - 1 and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # swapped
    return word[:i] + word[i] + word[i:]  # doubled


def typo(phrase: str, rng: random.Random, count: int,
         misspellings: dict[str, list[str]] | None = None) -> str:
    """`count` single-edit typos (OSA distance 1 each) on distinct words where possible."""
    words = phrase.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 2]
    rng.shuffle(candidates)
    chosen = (candidates * count)[:count]
    for index in chosen:
        word = words[index]
        real = [m for m in (misspellings or {}).get(word.lower(), [])
                if OSA.distance(m, word.lower()) == 1]
        if real and rng.random() < 0.5:
            words[index] = rng.choice(real)
        else:
            words[index] = _slip(word, rng)
    return " ".join(words)


def has_real_misspelling(phrase: str, misspellings: dict[str, list[str]]) -> bool:
    return any(w.lower() in misspellings for w in phrase.split(" "))


def real_misspelling(phrase: str, rng: random.Random,
                     misspellings: dict[str, list[str]]) -> str:
    """One word replaced by a real misspelling from codespell, however many edits it is."""
    words = phrase.split(" ")
    known = [i for i, w in enumerate(words) if w.lower() in misspellings]
    at = rng.choice(known)
    words[at] = rng.choice(misspellings[words[at].lower()])
    return " ".join(words)


def join_split(phrase: str, rng: random.Random) -> str:
    """Words run together or split apart: one or two missed or extra space-bar presses."""
    text = phrase
    for _ in range(rng.choice([1, 2])):
        spaces = [i for i, ch in enumerate(text) if ch == " "]
        if spaces and rng.random() < 0.5:
            at = rng.choice(spaces)
            text = text[:at] + text[at + 1 :]
        else:
            inner = [i for i in range(1, len(text)) if text[i - 1] != " " and text[i] != " "]
            if inner:
                at = rng.choice(inner)
                text = text[:at] + " " + text[at:]
    return text


_CONTRACTIONS = [
    ("i am", ["I'm", "Im", "i'm", "I’m"]),
    ("did not", ["didn't", "didnt", "didn’t"]),
    ("it is", ["it's", "its", "it’s"]),
    ("we are", ["we're", "we’re"]),
    ("going to", ["gonna"]),
    ("do not", ["don't", "dont"]),
    ("can not", ["can't", "cant", "cannot"]),
]


def contraction(phrase: str, rng: random.Random) -> str:
    """Swap between contracted, bare and spelt-out forms (phrases in CONTRACTION_CODES)."""
    text = phrase.lower()
    for full, short in _CONTRACTIONS:
        forms = [full, *short]
        for form in forms:
            if f" {form} " in f" {text} ":
                text = f" {text} ".replace(f" {form} ", f" {rng.choice(forms)} ").strip()
                break
    return text


KINDS: dict[str, Callable[[str, random.Random], str]] = {
    "exact": lambda p, r: p,
    "case": case,
    "punctuation": punctuation,
    "spacing": spacing,
    "accents": accents,
    "emoji": emoji,
    "lookalike": lookalike,
    "lookalike-any": lookalike_any,
    "zero-width": zero_width,
    "join/split": join_split,
}
