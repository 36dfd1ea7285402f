"""Text normalisation for phrase codes: fold away every difference a person would not notice.

Pure: no I/O. The per-character fold is memoised in a bounded table, which is invisible to
callers (same input, same output).

Design: every rule is a function of ONE code point (see `_fold_char`), followed by two
token-level passes (contractions, white space). Keeping the character rules local is what lets
`normalise_mapped` report, for every normalised character, where it came from in the original
text - so a hit can quote the original span verbatim - while the fast path (`normalise`) stays a
single `str.translate` plus a split/join. tests/test_phrase.py checks with hypothesis that the
two paths always agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

# Look-alike letters and the Latin letter they imitate (a UTS #39 style skeleton).
# Derived from the Unicode confusables data shipped by the confusable-homoglyphs package:
# every single letter whose case-folded, accent-stripped form imitates one ASCII letter, from
# any script except the right-to-left and CJK ones (an Arabic alef is not an "l" to an Arabic
# reader, and Arabic gets its own folds below), plus the small-capital alphabet of "fancy
# text" generators. Where the data lists a letter under two Latin letters, the lowercase
# likeness wins (Greek sigma reads as "o"). Keys are post-casefold forms, so "Н" and "н" both
# land on "h". Fullwidth and mathematical letters need no entry: NFKC already maps them.
#
# Which of them are folded depends on the script (UTS #39 mixed-script and whole-script
# confusables). Latin look-alikes of Latin letters (small capitals, "ł", "ø") are folded
# always, like accents. A letter of another script is folded only inside a word that mixes
# scripts ("umbrеlla" with a Cyrillic е), here, and, in detectors/phrase.py, where the code
# and the text are written in different scripts. A word wholly in Greek or Cyrillic stays in
# its own script, so σ, ς and ο remain three letters in genuine Greek text.
_LOOKALIKES = {
    "a": "ɑαаᎪᗅᴀꓮ𐊠𖽀",
    "b": "ƅʙβвьᏏᏴᑲᖯᗷꓐꞵ𐊂𐊡𐌁",
    "c": "сϲᏟᴄⲥꓚ𐊢𐌂𐐽𐔜",
    "d": "ԁᎠᏧᑯᗞᗪᴅꓒꓓđ",
    "e": "εеҽᎬᴇⴹꓰꬲ𐊆𑣆𑣎",
    "f": "ϝքᖴẝꓝꜰꞙꬵ𐊇𐊥𐔥𑣂",
    "g": "ƍɡɢԍցᏀᏳᶃꓖ",
    "h": "ʜηнһհᎻᏂᕼⲏꓧ𐋏ħ",
    "i": "ıɩɪιіӏᎥꙇ𑣃",
    "j": "ʝϳјᎫᒍᴊꓙ",
    "k": "κкᏦᛕᴋⲕꓗ𐔘",
    "l": "ǀʟᏞᒪᛁⲓⳑⵏꓡꓲ𐊊𐌉𐑃𐔦𑣒𖼖𖼨ł",
    "m": "μϻмᎷᗰᛖᴍⲙꓟ𐊰𐌑",
    "n": "ɴոռⲛꓠ𐔓",
    "o": "οσоօଠഠဝჿዐᴏᴑⲟⵔꓳꬽ𐊒𐊫𐐬𐓪𐔖𑣈𑣕𑣗ø",
    "p": "ρрᏢᑭᴘⲣꓑ𐊕",
    "q": "ԛգզⵕ",
    "r": "ʀгᎡᎱᏒᖇᴦⲅꓣꭇꭈ𐓜𖼵",
    "s": "ƽѕտᏕᏚꓢꜱ𐊖𐑈𑣁𖼺",
    "t": "τтᎢᴛⲧꓔ𐊗𐊱𐌕𖼊ŧ",
    "u": "ʋυսሀᑌᴜꓴꞟꭎꭒ𐓶𑣘𖽂",
    "v": "νѵᏙᐯᴠⴸꓦꛟ𐔝𑜆𑣀𖼈",
    "w": "ɯѡԝաᎳᏔᴡꓪ𑜊𑜎𑜏",
    "x": "χхᕁᕽᚷⲭⵝꓫꭓ𐊐𐊴𐌗𐔧",
    "y": "ɣʏγуүყᎩᎽᶌỿⲩꓬꭚ𐊲𑣜𖽃",
    "z": "ζᏃᴢꓜ𑣄𑣉",
}

_SPECIAL: dict[str, str] = {
    # Typewriter, curly and modifier apostrophes all mean the same thing in "didn't".
    **dict.fromkeys("'’‘‛ʼʻ`´′＇", "'"),
    # A one-letter ampersand is a word people type in a hurry.
    "&": " and ",
    # Arabic: kashida is decoration; alef maksura/yeh and teh marbuta/heh are swapped in
    # everyday writing; Persian keyboards produce their own yeh and kaf for the Arabic letters.
    "\u0640": "",
    "ى": "ي",
    "ی": "ي",
    "ة": "ه",
    "ک": "ك",
    # Greek lunate sigma looks like a "c", but NFKC makes it σ, which reads as an "o": kept as
    # itself, so that it folds to "c" where it is a look-alike (in a word that mixes scripts,
    # or where the text is in another script than the code). Genuine Greek text with it is
    # rare (decorative and liturgical type); there it stays a letter of its own.
    "ϲ": "ϲ",
    "Ϲ": "ϲ",
    # Letters that carry no combining mark in Unicode but read as their plain twin.
    "æ": "ae",
    "œ": "oe",
}


@lru_cache(maxsize=65536)
def script_of(ch: str) -> str:
    """The script of a letter, from its Unicode name ("LATIN", "GREEK", "CYRILLIC", "CJK",
    ...); "" for anything that is not a letter. Close enough to the Unicode Script property
    for telling scripts apart, and needs no data beyond the standard library."""
    if not ch.isalpha():
        return ""
    name = unicodedata.name(ch, "")
    return name.split(" ", 1)[0] if name else "?"


# Non-Latin look-alikes: folded only where scripts mix (see above).
_CONFUSABLE: dict[str, str] = {}
for _latin, _twins in _LOOKALIKES.items():
    for _twin in _twins:
        if script_of(_twin) == "LATIN":
            _SPECIAL[_twin] = _latin
        else:
            _CONFUSABLE[_twin] = _latin
# Arabic-Indic and Persian digits are digits: NFKC leaves them, a reader does not.
for _d in range(10):
    _SPECIAL[chr(0x0660 + _d)] = str(_d)
    _SPECIAL[chr(0x06F0 + _d)] = str(_d)




def _traditional_to_simplified() -> dict[str, str]:
    """OpenCC's character table (shipped by opencc-purepy): traditional Han -> simplified.

    Read once at import, never while matching. Only one-character to one-character entries
    (the first, most common reading), so the fold stays a function of one code point.
    """
    table = resources.files("opencc_purepy") / "dicts" / "TSCharacters.txt"
    out: dict[str, str] = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 1 and len(parts[1]) == 1:
            out[parts[0]] = parts[1]
    return out


# Chinese: one code, whichever of the two writing systems a phone is set to. Traditional
# characters are compared as their simplified forms (both sides fold the same way, so a
# traditional code still matches traditional text). Cost: traditional characters that
# simplification merges ("後"/"后", "發"/"髮") compare equal, as they already do for every
# reader of simplified Chinese.
for _trad, _simp in _traditional_to_simplified().items():
    _SPECIAL.setdefault(_trad, _simp)


def _is_dropped(ch: str) -> bool:
    """Marks and invisible characters that change how text is encoded but not what it says."""
    if unicodedata.combining(ch):
        return True  # accents, Arabic harakat, Hebrew points
    code = ord(ch)
    if 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF:
        return True  # variation selectors: text vs emoji presentation of the same symbol
    if 0x1F3FB <= code <= 0x1F3FF:
        return True  # skin-tone modifiers: the same emoji, like letter case for words
    category = unicodedata.category(ch)
    # Cf: zero-width space/joiners, bidi marks, soft hyphen, BOM, tags. Cc: control bytes.
    return category == "Cf" or (category == "Cc" and not ch.isspace())


def _fold_char(ch: str) -> str:
    """Fold one code point: NFKC, casefold, strip marks, look-alikes, punctuation to space."""
    if ch in _SPECIAL:
        return _SPECIAL[ch]
    out = []
    for piece in unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", ch).casefold()):
        if _is_dropped(piece):
            continue
        if piece in _SPECIAL:
            out.append(_SPECIAL[piece])
            continue
        category = unicodedata.category(piece)
        if category == "So":
            # Emoji and other pictographs are words on their own, so "🌻🌻" is two tokens and
            # "love🌻" still has a word boundary before the flower.
            out.append(f" {piece} ")
        elif piece.isspace() or category[0] in "PSZ" or category in ("Cc", "Me"):
            out.append(" ")
        else:
            out.append(piece)
    return "".join(out)


class _FoldTable(dict[int, str]):
    """A str.translate table that computes entries on first sight of a code point."""

    # Bounded so that hostile input cannot grow the table without limit; past the bound the
    # fold is recomputed, which is correct, only slower.
    _LIMIT = 200_000

    def __missing__(self, code: int) -> str:
        folded = _fold_char(chr(code))
        if len(self) < self._LIMIT:
            self[code] = folded
        return folded


_FOLD = _FoldTable()
for _code in range(128):
    _FOLD[_code] = _fold_char(chr(_code))
# Most posts are plain ASCII; a plain dict translates them about twice as fast as the
# self-filling table (whose __missing__ hook makes every lookup slower).
_ASCII_FOLD = dict(_FOLD)

# The confusable fold as a translate table, keyed also by what the per-character fold makes
# of each look-alike (Cherokee capitals stay capitals under casefold, "ό" loses its accent).
_CONFUSABLE_TABLE: dict[int, str] = {}
for _twin, _latin in _CONFUSABLE.items():
    _CONFUSABLE_TABLE.setdefault(ord(_twin), _latin)
    _native = _fold_char(_twin)
    if len(_native) == 1 and script_of(_native) not in ("", "LATIN"):
        _CONFUSABLE_TABLE.setdefault(ord(_native), _latin)
_CONFUSABLE_KEYS = frozenset(chr(code) for code in _CONFUSABLE_TABLE)


_LATIN_LETTER = re.compile("[a-z]")


def _fold_mixed(word: str) -> str:
    """UTS #39 mixed-script rule: a word that mixes Latin letters with look-alikes from another
    script has those folded to Latin ("umbrеlla" with a Cyrillic е is "umbrella"); a word
    wholly in one script is left in that script. One character in, one out: offsets do not
    move. (Words that mix two non-Latin scripts are left to the cross-script comparison in
    detectors/phrase.py, which catches them too; this keeps the check to two C-speed scans.)"""
    if word.isascii() or _CONFUSABLE_KEYS.isdisjoint(word) or not _LATIN_LETTER.search(word):
        return word
    return word.translate(_CONFUSABLE_TABLE)


def confusable_skeleton(norm: str) -> str:
    """Every look-alike folded to Latin, whatever the script around it: a normalised text as a
    reader who does not know the script would see it. Same length as `norm`, letter for letter.
    Used only where the code and the text are in different scripts (detectors/phrase.py)."""
    return norm if norm.isascii() else norm.translate(_CONFUSABLE_TABLE)


# Forms that mean the same words. Applied to whole tokens after folding, on both the phrase
# and the text, so "I'm", "Im", "i am" all compare equal. Bare forms without an apostrophe are
# listed only where they are not ordinary words ("well", "ill", "were", "lets" are left alone).
_WHOLE: dict[str, str] = {
    "can't": "can not", "cant": "can not", "cannot": "can not",
    "won't": "will not", "shan't": "shall not", "ain't": "is not",
    "i'm": "i am", "im": "i am", "ive": "i have", "youre": "you are", "youve": "you have",
    "youll": "you will", "theyre": "they are", "theyve": "they have", "weve": "we have",
    "its": "it is", "thats": "that is", "whats": "what is", "hes": "he is", "shes": "she is",
    "theres": "there is", "heres": "here is", "let's": "let us", "y'all": "you all",
    "gonna": "going to", "wanna": "want to", "gotta": "got to", "hafta": "have to",
    "kinda": "kind of", "sorta": "sort of", "lemme": "let me", "gimme": "give me",
    "dunno": "do not know", "u": "you", "pls": "please", "plz": "please",
}
for _stem in ("do", "does", "did", "is", "are", "was", "were", "has", "have", "had", "could",
              "would", "should", "must", "need", "might"):
    _WHOLE[_stem + "nt"] = _stem + " not"
_WHOLE["wont"] = "will not"

_PRONOUN_IS = frozenset(("it", "that", "what", "there", "here", "he", "she", "who", "where",
                         "how", "when", "why"))
_SUFFIXES = (("n't", " not"), ("'re", " are"), ("'ve", " have"), ("'ll", " will"),
             ("'d", " would"), ("'m", " am"))
_TOKEN = re.compile(r"\S+")


def _expand_token(token: str) -> str:
    if token in _WHOLE:
        return _WHOLE[token]
    if "'" not in token:
        return token
    stripped = token.strip("'")
    if stripped in _WHOLE:
        return _WHOLE[stripped]
    for suffix, words in _SUFFIXES:
        if stripped.endswith(suffix) and len(stripped) > len(suffix):
            return stripped[: -len(suffix)].replace("'", "") + words
    if stripped.endswith("'s") and stripped[:-2] in _PRONOUN_IS:
        return stripped[:-2] + " is"
    # Possessives and stray quotes: the apostrophe joins ("john's" -> "johns", "o'clock").
    return stripped.replace("'", "")


_EXPANDED = frozenset(_WHOLE)


def _needs_expansion(folded: str, words: list[str]) -> bool:
    return "'" in folded or not _EXPANDED.isdisjoint(words)


def _fold(text: str) -> str:
    return text.translate(_ASCII_FOLD if text.isascii() else _FOLD)


def normalise(text: str) -> str:
    """Fold case, compatibility forms, accents, look-alikes in words that mix scripts,
    traditional Chinese characters, invisible characters, punctuation, contractions and white
    space, so that variants a reader would not notice compare equal."""
    folded = _fold(text)
    words = folded.split()
    if not folded.isascii() and _LATIN_LETTER.search(folded):
        words = [_fold_mixed(word) for word in words]
    if _needs_expansion(folded, words):
        words = [expanded for word in words if (expanded := _expand_token(word))]
    return " ".join(words)


def normalise_mapped(text: str) -> tuple[str, list[int], list[int]]:
    """`normalise(text)` plus, for each output character, the original span it came from.

    Slower than `normalise`; meant for the rare texts that already produced a hit.
    """
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for index, ch in enumerate(text):
        for out in _FOLD[ord(ch)]:
            chars.append(out)
            starts.append(index)
            ends.append(index + 1)
    folded = "".join(chars)
    if not folded.isascii() and _LATIN_LETTER.search(folded):
        folded = _TOKEN.sub(lambda match: _fold_mixed(match.group()), folded)
    if _needs_expansion(folded, folded.split()):
        new_chars: list[str] = []
        new_starts: list[int] = []
        new_ends: list[int] = []
        done = 0
        for match in _TOKEN.finditer(folded):
            expanded = _expand_token(match.group())
            if expanded == match.group():
                continue
            a, b = match.span()
            new_chars.append(folded[done:a])
            new_starts += starts[done:a]
            new_ends += ends[done:a]
            # Every character of an expansion stands for the whole original token.
            new_chars.append(expanded)
            new_starts += [starts[a]] * len(expanded)
            new_ends += [ends[b - 1]] * len(expanded)
            done = b
        new_chars.append(folded[done:])
        folded = "".join(new_chars)
        starts = new_starts + starts[done:]
        ends = new_ends + ends[done:]
    out_chars: list[str] = []
    out_starts: list[int] = []
    out_ends: list[int] = []
    pending_space = False
    for ch, start, end in zip(folded, starts, ends, strict=True):
        if ch.isspace():
            pending_space = bool(out_chars)
            continue
        if pending_space:
            out_chars.append(" ")
            out_starts.append(start)
            out_ends.append(start)
            pending_space = False
        out_chars.append(ch)
        out_starts.append(start)
        out_ends.append(end)
    return "".join(out_chars), out_starts, out_ends
