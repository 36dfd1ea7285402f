"""Common words, for the word rule of tolerance="typos": a typo is not a real word.

A one-word change that fits in the typo allowance ("у вас" for "у нас", "Dime me olvidó" for
"Se me olvidó") turns a code into another sentence; a typo ("netwrok", "thursdya") makes a
string that is no word at all. So, as a spell-checker does, a word of the text that differs
from the code's word is forgiven only if it is not itself a common word of the code's
language, unless it is so much rarer than the code's word that a slip is the likelier story
("teh" for "the").

The words are wordfreq's lists (its data ships inside the package: nothing is downloaded at
run time). The code's language is the one of its script whose list knows most of the code's
words. Words are kept from `ZIPF_FROM` up (zipf = log10 of occurrences per billion words: 3
is once per million) and put through the matcher's own normalisation, so that "olvidó" and
"olvido" look the same here as there. A script's lists are loaded the first time a typo in
that script is judged (1.5-5 s for the 27 Latin-script languages, docs/benchmarks-phrase.md),
then kept; nothing is loaded for text that never comes within a code's typo allowance.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache

from detectors.phrase_normalise import normalise, script_of

__all__ = ["I_IS_L", "RARER_BY", "RARER_BY_CHANGED", "SLIP_KEEPS", "ZIPF_FROM", "is_other_word",
           "preload", "scripts_in"]

# In many fonts "I" and "l" are the same stroke, and homoglyph tools put a Greek or Cyrillic
# capital I where an "l" belongs; case folding then makes it an "i". Matching therefore treats
# i and l as one letter (detectors/phrase.py), and so do the word lists here.
I_IS_L = str.maketrans("l", "i")

# Chosen by measurement (benchmarks/phrase_accuracy.py --word-sweep, docs/benchmarks-phrase.md:
# English typo recall, the hard negatives of 10 languages and a held-out draw of them).
# ZIPF_FROM 3 with no margin fires on no hard negative but keeps only 80 % of one-typo
# variants; the margins below bring that to 93 %, and forgiving slips (SLIP_KEEPS) to 96 %
# (92 % for two typos) with none firing (3 on 4,946 held out: "на" for "нас", "rst" for
# "est"). Wider margins fire on held-out ones ("size" for Polish "się" at 1.0).
ZIPF_FROM = 3.0
# A slip of the finger (a letter dropped or struck twice, two neighbours swapped) that leaves
# this many letters is a typo whatever word it makes (measured: English typo recall 96 % / 92 %
# with no hard negative firing; with 3, 94 % / 88 %; with 1, "à" for "la" and "η" for "τη"
# fire on held-out draws).
SLIP_KEEPS = 2
# A shorter slip that makes a common word is forgiven if that word is this much rarer (zipf)
# than the code's word: a noisy-channel view, where a slip on a very common word is likelier
# than the rarer word meant. Judged in the code's language only.
RARER_BY = 0.75
# The margin, per edit, for any other change (a letter replaced, or one added that doubles
# none): that is far more often a different word meant ("ser" for "se", "in" for "la", "вас"
# for "нас") than a slip, so it needs a word much rarer still, in every language of the
# script (English "if" or "is" for French "la" is the English word).
RARER_BY_CHANGED = 1.5

# wordfreq's languages by the script they are written in (script_of's names). Serbo-Croatian
# is written in both alphabets. Chinese and Japanese are absent: those scripts have no spaces,
# and the word rule does not apply to them. A script with no list here (Armenian, Georgian...)
# keeps only the alignment part of the rule (no whole word lost, added or split off).
_LANGUAGES: dict[str, tuple[str, ...]] = {
    "LATIN": ("ca", "cs", "da", "de", "en", "es", "fi", "fil", "fr", "hu", "id", "is", "it",
              "lt", "lv", "ms", "nb", "nl", "pl", "pt", "ro", "sh", "sk", "sl", "sv", "tr",
              "vi"),
    "CYRILLIC": ("bg", "mk", "ru", "sh", "uk"),
    "GREEK": ("el",),
    "ARABIC": ("ar", "fa", "ur"),
    "HEBREW": ("he",),
    "DEVANAGARI": ("hi",),
    "BENGALI": ("bn",),
    "TAMIL": ("ta",),
    "HANGUL": ("ko",),
}

_lock = threading.Lock()


@dataclass(frozen=True)
class _Words:
    """One language's words from a zipf threshold up, normalised as matching does, commonest
    first, as one string "\\nword\\nword\\n": a few hundred kilobytes a language where a set
    of strings takes tens of megabytes; a lookup (a substring search, ~0.1 ms) happens only
    when a typo is judged."""

    text: str
    starts: tuple[int, ...]  # offset in text where each frequency bucket begins
    zipfs: tuple[float, ...]  # that bucket's zipf

    def zipf(self, word: str) -> float | None:
        at = self.text.find(f"\n{word}\n")
        return None if at < 0 else self.zipfs[bisect_right(self.starts, at) - 1]


@cache
def _language(lang: str, zipf_from: float) -> _Words:
    # Imported here: only a typo being judged pays for wordfreq (import and lists). Its files
    # are read directly rather than through wordfreq's own cached dictionaries, which would keep
    # every frequency of every word in memory as well.
    import wordfreq

    # The small lists hold every word from zipf 3; below that the large ones are needed.
    size = "small" if zipf_from >= 3.0 else "large"
    files = wordfreq.available_languages(size) or {}
    path = files.get(lang) or wordfreq.available_languages("small")[lang]
    # A list's n-th bucket holds the words seen 10 ** (-n / 100) of the time: zipf 9 - n/100.
    buckets = wordfreq.read_cBpack(path)[: round((9.0 - zipf_from) * 100) + 1]
    seen: set[str] = set()
    parts: list[str] = [""]
    starts: list[int] = []
    zipfs: list[float] = []
    at = 0
    for n, bucket in enumerate(buckets):
        if not bucket:
            continue
        # One normalisation per bucket, not per word; a contraction becomes two words ("do
        # not"), each a word anyway. A form already seen keeps its commoner bucket.
        forms = normalise(" ".join(bucket)).translate(I_IS_L).split(" ")
        new = [f for f in dict.fromkeys(forms) if f and f not in seen]
        if not new:
            continue
        seen.update(new)
        starts.append(at)
        zipfs.append(9.0 - n / 100)
        parts.extend(new)
        at += sum(len(f) + 1 for f in new)
    parts.append("")
    return _Words("\n".join(parts), tuple(starts), tuple(zipfs))


@lru_cache(maxsize=256)
def _language_of(code: tuple[str, ...], script: str) -> tuple[tuple[_Words, ...],
                                                               tuple[_Words, ...]]:
    """The code's language among those written in `script`, and the others. The code's is
    the one that knows most of its words, the commonest if several do (Indonesian and Tagalog
    lists hold many English words). A changed word is judged against the language of the
    sentence it is in where the change is a slip (Swedish "att" is no reason to refuse "att"
    for "at" in English, nor Dutch "wrok" for "work"), and against all where it is another
    change (see is_other_word). Every language of the script is the code's if none knows a
    word of it (a Latin word in a Cyrillic code's text)."""
    every = tuple(_language(lang, ZIPF_FROM) for lang in _LANGUAGES.get(script, ()))
    best: tuple[int, float] = (0, 0.0)
    chosen = None
    for words in every:
        known = [z for w in set(code) if (z := words.zipf(w)) is not None]
        score = (len(known), sum(known))
        if known and score > best:
            best, chosen = score, words
    if chosen is None:
        return every, ()
    return (chosen,), tuple(words for words in every if words is not chosen)


def _script(word: str) -> str:
    for ch in word:
        script = script_of(ch)
        if script:
            return script
    return ""


def scripts_in(texts: Iterable[str]) -> set[str]:
    """The scripts whose word lists judging typos in `texts` (codes' phrases) will need: their
    own, and Latin for any with letters, since a code is also compared through its Latin
    look-alike skeleton ("нас" as "hac")."""
    scripts = {script for text in texts for ch in normalise(text) if (script := script_of(ch))}
    return scripts | {"LATIN"} if scripts else scripts


def preload(scripts: Iterable[str]) -> None:
    """Load the word lists of `scripts` now (1.5-5 s and ~55 MB for the Latin-script
    languages), so that the first typo judged, which may be the first alarm, does not wait for
    them. Scripts without lists are ignored; lists already loaded cost nothing."""
    with _lock:
        for script in sorted(scripts):
            for lang in _LANGUAGES.get(script, ()):
                _language(lang, ZIPF_FROM)


def _slip(meant: str, typed: str) -> bool:
    """`typed` is `meant` with one slip of a finger: a letter dropped, a letter struck twice,
    or two neighbours swapped."""
    if len(typed) == len(meant) - 1:
        return any(meant[:i] + meant[i + 1 :] == typed for i in range(len(meant)))
    if len(typed) == len(meant) + 1:
        return any(typed[i] == typed[i + 1] and typed[:i] + typed[i + 1 :] == meant
                   for i in range(len(typed) - 1))
    if len(typed) == len(meant):
        return any(typed == meant[:i] + meant[i + 1] + meant[i] + meant[i + 2 :]
                   for i in range(len(meant) - 1))
    return False


def is_other_word(typed: str, meant: str | None, edits: int, code: tuple[str, ...]) -> bool:
    """Whether `typed`, `edits` edits from the code's word `meant`, is another word rather than
    a typo: a slip (a letter dropped, doubled, two swapped) leaving SLIP_KEEPS letters never
    is; otherwise a common word (all words normalised, i and l merged, as phrase.py compares),
    unless it is much rarer than `meant`: by `RARER_BY` for a shorter slip, judged in the code's
    language ("teh", "thee" and "te" are typed for "the" far more often than they are
    meant); by `RARER_BY_CHANGED` per edit for any other change, judged in every language
    of the script. `meant` None (words run together or split apart): any common word. A word
    without a letter (a number) counts as a word: "at 5" and "at 6" are different sentences,
    not a typo."""
    script = _script(typed)
    if not script:
        return True
    if script not in _LANGUAGES:
        return False
    # One thread builds the lists; others wait for them rather than build them twice.
    with _lock:
        own, others = _language_of(code, script)
    slip = meant is not None and _slip(meant, typed)
    # A slip that leaves a word of SLIP_KEEPS letters or more is forgiven whatever it spells:
    # the typos a dictionary refused were such slips ("fed" for "feed", "no" for "on", "at" for
    # "cat"), while the hard negatives were replaced or added letters ("вас" for "нас", "de"
    # for "me", "το" for "τη"). A shorter one ("à" for "la", "η" for "τη") is judged below.
    if slip and len(typed) >= SLIP_KEEPS:
        return False
    # A slip is judged in the code's language only: one that spells a word of another
    # language is still a slip ("chon" for German "schon" is Vietnamese "chọn" without its
    # accents). Any other change is judged in every language of the script, at its commonest:
    # English "if" or "is" for "la" in a French code, "size" for "się" in a Polish one.
    known = [z for words in (own if slip else own + others) if (z := words.zipf(typed))]
    if not known:
        return False
    if meant is None:
        return True
    meant_zipf = max((z for words in own if (z := words.zipf(meant))), default=None)
    margin = RARER_BY if slip else RARER_BY_CHANGED * edits
    return meant_zipf is None or meant_zipf - max(known) < margin
