"""Codes in many languages, and the variants people type of them, for the phrase benchmark.

The transliterations below are written from how people chat, not from the matcher's rules
(detectors/phrase_translit.py) and not with its library (anyascii): each letter has the
spellings seen in Greeklish, translit, Arabizi and Hinglish, the first one most often, and
Chinese goes through pypinyin (context-aware readings, optional tone numbers) as an input
method would. Every generator takes a phrase and a random.Random.
"""

from __future__ import annotations

import random
import unicodedata
from collections.abc import Callable

# language -> (code, hard negatives: the same sentence with one word changed)
CODES: dict[str, tuple[str, list[str]]] = {
    "es": ("se me olvidó comprar leche otra vez",
           ["se me olvidó comprar pan otra vez", "no se me olvidó comprar leche",
            "se me olvidó comprar leche ayer"]),
    "fr": ("la machine à laver est encore en panne",
           ["la machine à café est encore en panne", "la machine à laver est enfin réparée"]),
    "de": ("unser Kühlschrank ist schon wieder kaputt",
           ["unser Fernseher ist schon wieder kaputt", "unser Kühlschrank ist nicht kaputt"]),
    "pl": ("mój niebieski parasol znowu się zepsuł",
           ["mój czerwony parasol znowu się zepsuł", "mój niebieski rower znowu się zepsuł"]),
    "tr": ("mavi şemsiyem yine kırıldı",
           ["kırmızı şemsiyem yine kırıldı", "mavi bisikletim yine kırıldı"]),
    "vi": ("tủ lạnh nhà tôi lại bị hỏng rồi",
           ["ti vi nhà tôi lại bị hỏng rồi", "tủ lạnh nhà tôi đã được sửa rồi"]),
    "ru": ("у нас опять сломался холодильник",
           ["у нас опять сломался телевизор", "у вас опять сломался холодильник"]),
    "el": ("ξέχασα να ταΐσω τη γάτα πάλι",
           ["ξέχασα να ταΐσω τη κότα πάλι", "θυμήθηκα να ταΐσω τη γάτα πάλι"]),
    "ar": ("نسيت شراء الحليب مرة أخرى",
           ["نسيت شراء الخبز مرة أخرى", "تذكرت شراء الحليب مرة أخرى"]),
    "hi": ("मेरा नीला छाता फिर से टूट गया",
           ["मेरा लाल छाता फिर से टूट गया", "मेरा नीला फोन फिर से टूट गया"]),
    "zh": ("我的蓝色雨伞又坏了",
           ["我的红色雨伞又坏了", "我的蓝色手机又坏了"]),
    "ja": ("青い傘がまた壊れた",
           ["赤い傘がまた壊れた", "青い車がまた壊れた"]),
    "th": ("ร่มสีฟ้าของฉันพังอีกแล้ว",
           ["ร่มสีแดงของฉันพังอีกแล้ว", "รถสีฟ้าของฉันพังอีกแล้ว"]),
}
TRANSLITERATED = ("ru", "el", "ar", "hi", "zh")


def _pick(rng: random.Random, options: str | tuple[str, ...]) -> str:
    """The first spelling about half the time, another otherwise."""
    if isinstance(options, str):
        return options
    return options[0] if rng.random() < 0.5 else rng.choice(options)


_GREEK: dict[str, str | tuple[str, ...]] = {
    "α": "a", "β": ("v", "b"), "γ": "g", "δ": ("d", "dh"), "ε": "e", "ζ": "z",
    "η": ("i", "h", "n"), "θ": ("th", "8", "u"), "ι": "i", "κ": "k", "λ": "l", "μ": "m",
    "ν": "n", "ξ": ("ks", "x", "3"), "ο": "o", "π": "p", "ρ": "r", "σ": "s", "ς": "s",
    "τ": "t", "υ": ("y", "u", "i"), "φ": ("f", "ph"), "χ": ("x", "ch", "h"), "ψ": "ps",
    "ω": ("o", "w"),
}
_GREEK_PAIRS: dict[str, tuple[str, ...]] = {
    "ου": ("ou", "u", "oy"), "αι": ("ai", "e"), "ει": ("ei", "i"), "οι": ("oi", "i"),
    "μπ": ("mp", "b"), "ντ": ("nt", "d"), "γγ": ("gg", "ng"),
}


def _pairs_then_letters(text: str, rng: random.Random, pairs: dict[str, tuple[str, ...]],
                        letters: dict[str, str | tuple[str, ...]]) -> str:
    out = []
    i = 0
    while i < len(text):
        two = text[i : i + 2]
        if two in pairs:
            out.append(_pick(rng, pairs[two]))
            i += 2
            continue
        out.append(_pick(rng, letters[text[i]]) if text[i] in letters else text[i])
        i += 1
    return "".join(out)


def _strip_marks(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def greeklish(phrase: str, rng: random.Random) -> str:
    text = _strip_marks(phrase.lower())
    # γ before a front vowel sounds like "y" and is often typed so ("yia" for "για").
    text = "".join("\0" if ch == "γ" and text[i + 1 : i + 2] in ("ε", "ι", "η", "υ") and
                   rng.random() < 0.3 else ch for i, ch in enumerate(text))
    return _pairs_then_letters(text, rng, _GREEK_PAIRS, {**_GREEK, "\0": "y"})


_RUSSIAN: dict[str, str | tuple[str, ...]] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": ("e", "ye"), "ё": ("e", "yo"),
    "ж": ("zh", "j", "z"), "з": "z", "и": "i", "й": ("y", "i", "j"), "к": "k", "л": "l",
    "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t", "у": "u",
    "ф": "f", "х": ("h", "kh", "x"), "ц": ("ts", "c", "tz"), "ч": ("ch", "4"),
    "ш": ("sh", "w"), "щ": ("sch", "shch", "sh"), "ъ": ("", "'"), "ы": ("y", "i"),
    "ь": ("", "'"), "э": "e", "ю": ("yu", "iu", "ju"), "я": ("ya", "ia", "ja"),
}


def translit(phrase: str, rng: random.Random) -> str:
    return _pairs_then_letters(phrase.lower(), rng, {}, _RUSSIAN)


_ARABIC: dict[str, str | tuple[str, ...]] = {
    "ا": ("a", "a", "e"), "أ": ("a", "2", "e", "o"), "إ": ("e", "i", "2"), "آ": "a",
    "ب": "b", "ت": "t", "ث": ("th", "s", "t"), "ج": ("j", "g"), "ح": ("7", "h"),
    "خ": ("kh", "5", "7'"), "د": "d", "ذ": ("th", "z", "d"), "ر": "r", "ز": "z", "س": "s",
    "ش": ("sh", "ch"), "ص": ("s", "9"), "ض": ("d", "9'"), "ط": ("t", "6"), "ظ": ("z", "6'"),
    "ع": ("3", "a", ""), "غ": ("gh", "3'"), "ف": "f", "ق": ("q", "2", "k", "g"), "ك": "k",
    "ل": "l", "م": "m", "ن": "n", "ه": ("h", "", "a"), "ة": ("a", "e", "ah"),
    "و": ("w", "o", "ou", "u"), "ي": ("y", "i", "ee", "e"), "ى": ("a", "y"), "ء": ("2", ""),
}
_SHORT_VOWELS = ("a", "e", "i", "o", "")


def arabizi(phrase: str, rng: random.Random) -> str:
    """Letters per the chat alphabet, with the short vowels Arabic script leaves out put back
    in (as speakers do, variably), the article as "al", "el" or "il", doubled letters
    sometimes written twice."""
    words = []
    for word in phrase.split():
        prefix = ""
        if word.startswith("ال") and len(word) > 3:
            prefix, word = rng.choice(["al", "el", "il", "al-", "el "]), word[2:]
        out = []
        for i, ch in enumerate(word):
            out.append(_pick(rng, _ARABIC[ch]) if ch in _ARABIC else ch)
            if i < len(word) - 1 and ch not in "اويى" and word[i + 1] not in "اويىة":
                out.append(rng.choice(_SHORT_VOWELS))
        words.append(prefix + "".join(out))
    return " ".join(words)


_DEVANAGARI_CONSONANTS: dict[str, str | tuple[str, ...]] = {
    "क": "k", "ख": "kh", "ग": "g", "घ": "gh", "च": "ch", "छ": ("chh", "ch"), "ज": "j",
    "झ": ("jh", "jh"), "ट": "t", "ठ": "th", "ड": "d", "ढ": "dh", "ण": "n", "त": "t",
    "थ": "th", "द": "d", "ध": "dh", "न": "n", "प": "p", "फ": ("ph", "f"), "ब": "b",
    "भ": "bh", "म": "m", "य": "y", "र": "r", "ल": "l", "व": ("v", "w"), "श": ("sh", "s"),
    "ष": "sh", "स": "s", "ह": "h",
}
_DEVANAGARI_VOWELS: dict[str, str | tuple[str, ...]] = {
    "ा": ("a", "aa"), "ि": "i", "ी": ("i", "ee"), "ु": "u", "ू": ("u", "oo"), "े": "e",
    "ै": ("ai", "e"), "ो": "o", "ौ": ("au", "ou"), "ं": ("n", "m"), "्": "", "ँ": "n",
    "अ": "a", "आ": ("a", "aa"), "इ": "i", "ई": ("i", "ee"), "उ": "u", "ऊ": ("u", "oo"),
    "ए": "e", "ऐ": "ai", "ओ": "o", "औ": "au",
}


def hinglish(phrase: str, rng: random.Random) -> str:
    """Consonants carry their inherent "a" unless a vowel sign follows; at the end of a word
    it is usually not spoken and so not typed."""
    words = []
    for word in phrase.split():
        out = []
        for i, ch in enumerate(word):
            if ch in _DEVANAGARI_CONSONANTS:
                out.append(_pick(rng, _DEVANAGARI_CONSONANTS[ch]))
                nxt = word[i + 1] if i + 1 < len(word) else ""
                if nxt not in _DEVANAGARI_VOWELS and (nxt or rng.random() < 0.2):
                    out.append("a")
            elif ch in _DEVANAGARI_VOWELS:
                out.append(_pick(rng, _DEVANAGARI_VOWELS[ch]))
            else:
                out.append(ch)
        words.append("".join(out))
    return " ".join(words)


def pinyin(phrase: str, rng: random.Random) -> str:
    """Toneless pinyin as typed: syllables spaced, or joined by word, sometimes with tone
    numbers (pypinyin chooses readings in context, as an input method does)."""
    from pypinyin import Style, lazy_pinyin

    style = Style.TONE3 if rng.random() < 0.2 else Style.NORMAL
    syllables = lazy_pinyin(phrase, style=style)
    out = syllables[0]
    for syllable in syllables[1:]:
        out += ("" if rng.random() < 0.4 else " ") + syllable
    return out


TRANSLITERATORS: dict[str, Callable[[str, random.Random], str]] = {
    "ru": translit, "el": greeklish, "ar": arabizi, "hi": hinglish, "zh": pinyin,
}


def drop_accents(phrase: str, rng: random.Random) -> str:
    """Accents dropped, as on a phone without the language's keyboard (Arabic: vowel marks
    added instead, as in a carefully written text; Chinese: the traditional characters)."""
    if any("\u0600" <= ch <= "\u06ff" for ch in phrase):
        return "".join(ch + ("\u064e" if ch.isalpha() and rng.random() < 0.5 else "")
                       for ch in phrase)
    if any("\u4e00" <= ch <= "\u9fff" for ch in phrase):
        from opencc_purepy import OpenCC  # type: ignore[import-untyped]

        return str(OpenCC("s2t").convert(phrase))
    stripped = _strip_marks(phrase)
    return stripped.replace("ł", "l").replace("Ł", "L").replace("ı", "i").replace("đ", "d")


def nfd(phrase: str, rng: random.Random) -> str:
    return unicodedata.normalize("NFD", phrase)


def case(phrase: str, rng: random.Random) -> str:
    return phrase.upper() if rng.random() < 0.5 else phrase.title()


def typo(phrase: str, rng: random.Random) -> str:
    """One slip in a word of three letters or more: a letter dropped, doubled, swapped with
    its neighbour, or replaced by another letter of the same word."""
    words = phrase.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) >= 3]
    if not long_words:
        return phrase
    at = rng.choice(long_words)
    word = words[at]
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        word = word[:i] + word[i + 1 :]
    elif kind == 1:
        word = word[:i] + word[i] + word[i:]
    elif kind == 2:
        word = word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    else:
        word = word[:i] + rng.choice(word.replace(word[i], "") or word) + word[i + 1 :]
    words[at] = word
    return " ".join(words)
