"""Phrase codes: find an agreed phrase in text, tolerant of how people type under stress.

Pure: no I/O, same input, same answer. Both the phrase and the text go through the same
normalisation (detectors/phrase_normalise.py), so a phrase in any script still matches itself.

How a text is checked, cheapest step first:
1. The text is normalised once and cached, so 50 matchers looking at the same event pay for
   it once.
2. Matching is done on the normalised text with the spaces removed: a hurried "net work" or
   "networkwent" then costs no edit, while whole-word checks still use where the spaces were.
3. Prefilter (pigeonhole): a phrase of m characters allowed k edits is cut into k+1 pieces with
   one spare character between neighbours. One edit (insert, delete, substitute, or swap two
   neighbours) can break at most one piece, so any true match keeps at least one piece intact.
   If no piece occurs verbatim, the text cannot match; for ordinary text that is nearly always
   the answer, after k+1 substring searches.
4. Only around a piece that did occur, windows on word boundaries are scored with the
   optimal-string-alignment distance (rapidfuzz), which counts a swap of two letters as one
   typo.

Scripts (UTS #39 in spirit). The text is compared in up to three views, all mapped back to
the same positions: native (each word in its own script; look-alikes folded only inside a word
that mixes Latin with another script), skeleton (every look-alike folded to Latin), and, for
`transliterated` codes, a chat key (detectors/phrase_translit.py). A skeleton or chat-key hit
counts only where the matched text is written in other scripts than the code, so genuine Greek
or Cyrillic text is never compared through Latin look-alikes.
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from rapidfuzz.distance import OSA

from detectors.phrase_normalise import (
    confusable_skeleton,
    normalise,
    normalise_mapped,
    script_of,
)
from detectors.phrase_translit import Convention, chat_key, chat_key_mapped, convention_for
from detectors.phrase_words import I_IS_L, is_other_word

__all__ = ["PhraseHit", "PhraseMatcher", "max_edits_for", "normalise"]

# Edit allowance for tolerance="typos", by the phrase's length in normalised characters
# without spaces. From the sweep in benchmarks/phrase_accuracy.py (docs/benchmarks-phrase.md):
# real fragments of text used as codes fire by fuzzy match on other ordinary sentences at, per
# 100k sentences, ~150 with 1 edit at 6-7 characters ("my cat" vs "my car"), ~5 with 1 edit
# and ~75 with 2 edits at 8-11, ~6 with 2 edits at 12-15, ~1 with 2 edits at 16-19 and none
# from 20 up. Two typos are common in a hurried code, so 2 edits start where they cost about
# one false alarm per 100k posts; 1 edit where it costs a few; below 8 characters (emoji
# pairs, "help me") only exact matches. None of the example codes came within 5 edits of any
# of ~95,000 ordinary sentences.
_ONE_EDIT_FROM = 8
_TWO_EDITS_FROM = 16


def max_edits_for(phrase: str, tolerance: str | int = "typos") -> int:
    """How many edits `tolerance` allows for `phrase` (after normalisation)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | str):
        raise TypeError(f"tolerance must be 'exact', 'typos' or an int, not {tolerance!r}")
    if isinstance(tolerance, int):
        if tolerance < 0:
            raise ValueError("tolerance must not be negative")
        return tolerance
    if tolerance == "exact":
        return 0
    if tolerance != "typos":
        raise ValueError(f"tolerance must be 'exact', 'typos' or an int, not {tolerance!r}")
    # Letters of scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar) are not
    # counted. A Han character or a kana is a word or a syllable, so a "typo" there is a
    # different word ("我的蓝色雨伞" blue umbrella, "红色" red). In Thai and its neighbours
    # there are no word edges to tell a slip inside a word from a changed word ("ร่ม"
    # umbrella, "รถ" car: two edits). Codes in those scripts are therefore exact under
    # "typos", unless they carry enough other letters.
    length = sum(1 for ch in normalise(phrase) if ch != " " and not _unspaced(ch))
    if length >= _TWO_EDITS_FROM:
        return 2
    return 1 if length >= _ONE_EDIT_FROM else 0


@dataclass(frozen=True)
class PhraseHit:
    phrase: str
    matched: str
    start: int
    end: int
    distance: int = 0


def _unspaced(ch: str) -> bool:
    """Scripts written without spaces between words: any character edge is a word edge."""
    code = ord(ch)
    return (
        _ideographic(ch)
        or 0x0E00 <= code <= 0x0EFF  # Thai, Lao
        or 0x1000 <= code <= 0x109F  # Myanmar
        or 0x1780 <= code <= 0x17FF  # Khmer
    )


def _ideographic(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x9FFF  # CJK ideographs
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3134F
    )


# i and l are one letter (detectors/phrase_words.py says why). It costs little: words that
# differ only by i/l ("mail"/"mall") are one edit apart anyway.
_I_IS_L = I_IS_L
# Below this many characters a chat key (consonants, mostly) is too short to say anything.
# Measured (benchmarks/phrase_accuracy.py, transliterated sweep: real 3-6 word fragments of
# Greek, Arabic and Hindi text as codes, against 30,000 Latin-script sentences): with keys
# from 4 characters, ~2 false alarms per 100k sentences per code; from 6, ~0.05.
_MIN_CHAT_KEY = 6


def _symbols(norm: str) -> frozenset[str]:
    """Emoji and other pictographs in a normalised text (each is a token of its own)."""
    if norm.isascii():
        return frozenset()
    return frozenset(
        t for t in norm.split(" ") if len(t) == 1 and unicodedata.category(t) == "So"
    )


def _scripts(norm: str) -> frozenset[str]:
    if norm.isascii():
        return frozenset(("LATIN",)) if any(ch.isalpha() for ch in norm) else frozenset()
    return frozenset(script_of(ch) for ch in norm) - {""}


@dataclass(frozen=True)
class _View:
    """A text as one comparison sees it."""

    norm: str  # tokens joined by single spaces
    compact: str  # norm without spaces: what phrases are aligned against
    base: tuple[int, ...] | None  # for each norm character, its index in the native norm


def _view(norm: str, base: tuple[int, ...] | None = None) -> _View:
    return _View(norm, norm.replace(" ", ""), base)


@dataclass(frozen=True)
class _Prepared:
    plain: str  # normalise(text)
    native: _View  # plain with i and l merged: letter for letter the same positions
    skeleton: _View | None  # every look-alike folded to Latin; None where that changes nothing
    symbols: frozenset[str]


@lru_cache(maxsize=256)
def _prepare(text: str) -> _Prepared:
    plain = normalise(text)
    norm = plain.translate(_I_IS_L)
    skeleton = confusable_skeleton(norm)
    return _Prepared(
        plain, _view(norm), _view(skeleton) if skeleton != norm else None, _symbols(norm)
    )


@lru_cache(maxsize=256)
def _chat_view(plain: str, convention: Convention) -> _View:
    key, where = chat_key_mapped(plain, convention)
    return _view(key, where)


# Many matchers see the same event one after another: an identity check is cheaper than even
# the lru_cache lookup. A tuple is swapped in whole, so concurrent readers see a consistent pair.
_last: tuple[str, _Prepared] = ("", _Prepared("", _view(""), None, frozenset()))


def _prepared(text: str) -> _Prepared:
    global _last
    last = _last
    if last[0] is text:
        return last[1]
    prepared = _prepare(text)
    _last = (text, prepared)
    return prepared


def _tokens(norm: str, drop: frozenset[str]) -> list[tuple[int, str]]:
    """(offset in norm, token) for every token not dropped."""
    out = []
    at = 0
    for token in norm.split(" "):
        if token not in drop:
            out.append((at, token))
        at += len(token) + 1
    return out


@lru_cache(maxsize=64)
def _compact(norm: str, drop: frozenset[str]) -> str:
    return "".join(token for _, token in _tokens(norm, drop))


@lru_cache(maxsize=64)
def _edges(norm: str, drop: frozenset[str]) -> tuple[frozenset[int], frozenset[int]]:
    """Compact indices where a whole-word match may start, and where it may end."""
    starts: set[int] = set()
    ends: set[int] = set()
    at = 0
    for _, token in _tokens(norm, drop):
        starts.add(at)
        if not token.isascii():
            for i, ch in enumerate(token):
                if _unspaced(ch):
                    starts.update((at + i, at + i + 1))
                    ends.update((at + i, at + i + 1))
        at += len(token)
        ends.add(at)
    return frozenset(starts), frozenset(ends)


@lru_cache(maxsize=64)
def _positions(norm: str, drop: frozenset[str]) -> tuple[int, ...]:
    """For each compact index, the index of the same character in norm."""
    return tuple(at + i for at, token in _tokens(norm, drop) for i in range(len(token)))


def _edits_by_length(length: int, tolerance: str | int) -> int:
    if isinstance(tolerance, int) and not isinstance(tolerance, bool):
        return max_edits_for("", tolerance)
    if tolerance == "typos":
        return 2 if length >= _TWO_EDITS_FROM else 1 if length >= _ONE_EDIT_FROM else 0
    return max_edits_for("", tolerance)


def _whole_letters(norm: str, a: int, b: int) -> tuple[int, int]:
    """Widen a span to whole words: a chat key drops vowels, so its first kept letter may be
    the third of the word ("euxaristw" keys from the x). Unspaced scripts are left as they
    are, since there every character is a word."""
    while a > 0 and norm[a - 1] != " " and not _unspaced(norm[a - 1]) and not _unspaced(norm[a]):
        a -= 1
    while b < len(norm) and norm[b] != " " and not _unspaced(norm[b]) and not _unspaced(
            norm[b - 1]):
        b += 1
    return a, b


# The word rule of tolerance="typos". A typo changes letters inside a word; it never removes or
# adds a whole word, and it does not make another real word: "went down" / "went up", "у нас"
# / "у вас", "Se me" / "Dime me", an inserted "no" all fit in a 2-edit allowance on the whole
# phrase, and each turns the code into another sentence (benchmarks/phrase_accuracy.py
# --languages, hard negatives). So after the whole phrase is within its allowance, its words
# are aligned with the matched words (no word lost or added), and a word that differs from the
# code's is forgiven only if it keeps half its letters and is not itself a common word of the
# code's language, unless much rarer than the code's word, or made by a slip of the finger
# (a letter dropped, doubled, two swapped) that leaves two letters (detectors/phrase_words.py).
# Measured (--word-sweep, docs/benchmarks-phrase.md): no hard negative fires in any language
# with spaces, English typo recall is 96 % (one typo) and 92 % (two); the earlier length rule
# (words <= 3 letters exact) also fired on none but kept 74 % and 53 %.
_MAX_GROUP = 3  # words run together or split apart, per group


@lru_cache(maxsize=64)
def _breaks(norm: str, drop: frozenset[str]) -> tuple[int, ...]:
    """Compact indices where a word of the text ends (a space was there)."""
    out = []
    at = 0
    for _, token in _tokens(norm, drop):
        at += len(token)
        out.append(at)
    return tuple(out)


def _split(compact: str, start: int, end: int, breaks: tuple[int, ...]) -> tuple[str, ...]:
    """The words of compact[start:end], cut where the text had spaces."""
    words = []
    at = start
    for cut in breaks[bisect_right(breaks, start):]:
        if cut >= end:
            break
        words.append(compact[at:cut])
        at = cut
    words.append(compact[at:end])
    return tuple(words)


# How a form's words are held to the word rule: "words" (the phrase as typed, or its look-alike
# skeleton: the changed words must not be common words), "keyed" (a chat key). See _group_cost.
WordRule = Literal["words", "keyed"]


def _group_cost(code: Sequence[str], text: Sequence[str], edits: int, rule: WordRule,
                code_words: tuple[str, ...]) -> int | None:
    """Edits for code words matched to text words, one side being a single word; None if the
    rule refuses. Words run together or split apart ("networkwent", "net work") cost nothing.
    Any other difference is a typo only if no word of the text side is another word
    (phrase_words.is_other_word): "у вас" for "у нас" or "work" for "at work" is another
    sentence, "netwrok" or "networkwnet" is a slip. `keyed`: chat keys (consonants of a
    transliteration, "mr nl kt pr") are no words of any list and vary by spelling convention
    ("phir" / "fir"), so there a single word keeps the whole allowance, and only a word
    dropped, added or hidden in a neighbour is refused.
    `code_words`: all the code's words, which say what language its words are judged in."""
    joined_code, joined_text = "".join(code), "".join(text)
    if joined_code == joined_text:
        return 0
    if rule == "keyed" and (len(code) != 1 or len(text) != 1):
        return None
    distance = OSA.distance(joined_code, joined_text, score_cutoff=edits)
    if distance > edits:
        return None
    if rule == "words":
        meant = joined_code if len(code) == 1 and len(text) == 1 else None
        # A typo leaves most of a word: "fd" for "à", "URL" for "lại" replace it. Where words
        # run together or split, every word is longer than the edits, so that the edits
        # cannot be a whole word lost or added ("a" dropped from "a networkk").
        if meant is not None and distance > len(meant) // 2:
            return None
        if meant is None and distance >= min(map(len, (*code, *text))):
            return None
        if any(is_other_word(word, meant, distance, code_words) for word in text):
            return None
    return distance


def _words_fit(code: tuple[str, ...], text: tuple[str, ...], edits: int,
               rule: WordRule = "words") -> bool:
    """Whether the text words are the code words with typos inside words only: an alignment
    where every code word meets text words (one to one, or run together / split apart), each
    group within its own allowance, all within `edits`."""
    n, m = len(code), len(text)
    inf = edits + 1
    best = [[inf] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0
    for i in range(n):
        for j in range(m):
            here = best[i][j]
            if here > edits:
                continue
            for size in range(1, _MAX_GROUP + 1):
                # One code word to `size` text words, and `size` code words to one text word.
                for a, b in ((1, size), (size, 1)) if size > 1 else ((1, 1),):
                    if i + a > n or j + b > m:
                        continue
                    cost = _group_cost(code[i : i + a], text[j : j + b], edits, rule, code)
                    if cost is not None and here + cost < best[i + a][j + b]:
                        best[i + a][j + b] = here + cost
    return best[n][m] <= edits


@dataclass(frozen=True)
class _Form:
    """A phrase as one comparison sees it: the string aligned, its allowance, its pieces."""

    compact: str
    edits: int
    pieces: tuple[tuple[int, str], ...]  # (offset in compact phrase, verbatim piece)
    # The phrase's words, for the word rule of tolerance="typos" (see _words_fit); None where
    # the rule does not apply (a number of edits, or a phrase in a script without spaces).
    words: tuple[str, ...] | None = None
    rule: WordRule = "words"

    @classmethod
    def build(cls, compact: str, edits: int, words: tuple[str, ...] | None = None,
              rule: WordRule = "words") -> _Form:
        count = edits + 1
        usable = len(compact) - edits  # one spare character between neighbouring pieces
        pieces: list[tuple[int, str]] = []
        if usable >= count:
            at = 0
            for index in range(count):
                size = usable // count + (1 if index < usable % count else 0)
                pieces.append((at, compact[at : at + size]))
                at += size + 1
        # Too short to cut: no prefilter, every window is scored (only with huge int tolerances).
        return cls(compact, edits, tuple(pieces), words, rule)

    def scan(self, view: _View, drop: frozenset[str], whole_words: bool, native: str
             ) -> list[tuple[int, int, int]]:
        """All (distance, start, end) within the allowance, in the coordinates of `native`
        (the text's native norm)."""
        compact = _compact(view.norm, drop) if drop else view.compact
        # The prefilter: for ordinary text this is the whole cost.
        for _, piece in self.pieces:
            if piece in compact:
                break
        else:
            if self.pieces:
                return []
        size, k = len(self.compact), self.edits
        if self.pieces:
            centres: set[int] = set()
            for offset, piece in self.pieces:
                at = compact.find(piece)
                while at >= 0:
                    centres.add(at - offset)
                    at = compact.find(piece, at + 1)
            starts = sorted({s for c in centres for s in range(c - k, c + k + 1)})
        else:
            starts = list(range(len(compact)))
        if whole_words:
            left, right = _edges(view.norm, drop)
        found: list[tuple[int, int, int]] = []
        for start in starts:
            if start < 0 or start >= len(compact) or (whole_words and start not in left):
                continue
            for end in range(max(start + 1, start + size - k), start + size + k + 1):
                if end > len(compact) or (whole_words and end not in right):
                    continue
                distance = OSA.distance(self.compact, compact[start:end], score_cutoff=k)
                if distance <= k:
                    found.append((distance, start, end))
        if found and self.words is not None:
            breaks = _breaks(view.norm, drop)
            words = self.words
            found = [(d, s, e) for d, s, e in found
                     if d == 0 or _words_fit(words, _split(compact, s, e, breaks), k, self.rule)]
        if not found:
            return found
        to_norm = _positions(view.norm, drop)
        base = view.base
        out = []
        for distance, start, end in found:
            a, b = to_norm[start], to_norm[end - 1] + 1
            if base is not None:
                a, b = _whole_letters(native, base[a], base[b - 1] + 1)
            out.append((distance, a, b))
        return out


@dataclass(frozen=True)
class _Pattern:
    original: str
    native: _Form  # compared with the text's native form: each word in its own script
    skeleton: _Form  # look-alikes folded: only where the text is in another script
    translit: _Form | None  # chat key (transliterated = true): only across scripts too
    convention: Convention
    scripts: frozenset[str]
    non_latin: frozenset[str]  # its scripts other than Latin: what a chat key stands for
    # The phrase's own emoji. A phrase with words ignores other emoji in the text (a "😭" in
    # the middle of a hurried code is not a typo); a phrase of emoji only (None) sees them all.
    symbols: frozenset[str] | None
    folds: bool  # the phrase has look-alikes of Latin letters
    prefilter: bool  # the native and skeleton prefilters decide alone (pieces, no chat key)

    @classmethod
    def build(cls, original: str, tolerance: str | int, transliterated: bool) -> _Pattern:
        plain = normalise(original)
        norm = plain.translate(_I_IS_L)
        compact = norm.replace(" ", "")
        edits = max_edits_for(original, tolerance)
        own = _symbols(norm)
        wordy = any(ch.isalnum() for ch in compact)
        convention = convention_for(plain)
        # The word rule (_words_fit) holds for "typos" only: a number of edits is the user's
        # explicit choice, and in a script without spaces there are no words to align.
        worded = tolerance == "typos" and not any(_unspaced(ch) for ch in compact)

        def words(form: str) -> tuple[str, ...] | None:
            return tuple(w for w in form.split(" ") if w) if worded else None

        translit = None
        if transliterated:
            spaced_key = chat_key(plain, convention)
            key = spaced_key.replace(" ", "")
            if len(key) >= _MIN_CHAT_KEY:
                translit = _Form.build(key, _edits_by_length(len(key), tolerance),
                                       words(spaced_key), "keyed")
        spaced_skeleton = confusable_skeleton(norm)
        skeleton = spaced_skeleton.replace(" ", "")
        native = _Form.build(compact, edits, words(norm))
        prefilter = bool(native.pieces) and translit is None
        scripts = _scripts(plain)
        return cls(original, native, _Form.build(skeleton, edits, words(spaced_skeleton)),
                   translit, convention,
                   scripts, scripts - {"LATIN"}, own if wordy else None, skeleton != compact,
                   prefilter)

    def drop(self, prepared: _Prepared) -> frozenset[str]:
        if self.symbols is None or not prepared.symbols:
            return frozenset()
        return prepared.symbols - self.symbols

    def windows(self, prepared: _Prepared, whole_words: bool) -> list[tuple[int, int, int]]:
        """All (distance, start, end) in native norm coordinates within the edit allowance."""
        drop = self.drop(prepared)
        norm = prepared.native.norm
        found = self.native.scan(prepared.native, drop, whole_words, norm)
        if prepared.skeleton is not None or self.folds:
            view = prepared.skeleton or prepared.native
            folded = self.skeleton.scan(view, drop, whole_words, norm)
            if folded:
                found += self._across(folded, prepared, found)
        if self.translit is not None:
            view = _chat_view(prepared.plain, self.convention)
            chatted = self.translit.scan(view, drop, whole_words, norm)
            if chatted:
                found += self._across(chatted, prepared, found, wholly=True)
        return found

    def _across(self, windows: list[tuple[int, int, int]], prepared: _Prepared,
                native: list[tuple[int, int, int]], wholly: bool = False
                ) -> list[tuple[int, int, int]]:
        """UTS #39 whole-script rule: a folded comparison counts only where the text is written
        in another script than the code (Latin "y hac" for Cyrillic "у нас"), never between
        two texts in the same script (Greek "σ" and "ο" stay different letters). `wholly`
        (chat keys): the text must have no letter at all in the code's scripts, so that one
        English word in a Hindi sentence is not read as the Hindi word it replaced."""
        seen = {(a, b) for _, a, b in native}
        out = []
        for d, a, b in windows:
            if (a, b) in seen:
                continue
            scripts = _scripts(prepared.native.norm[a:b])
            if scripts != self.scripts and not (wholly and scripts & self.non_latin):
                out.append((d, a, b))
        return out


NegationScope = Literal["text", "overlap"]


class PhraseMatcher:
    """Finds any of `phrases` in a text.

    Negations (the user's `not = [...]` list) are matched with the same normalisation, on
    whole words, and by default with no typo allowance: a negation only ever suppresses an
    alarm, so a fuzzy negation would turn near-miss text into a missed code, and the person
    writing a negation is not typing under duress. `negation_scope="text"` (default): a
    negation anywhere in the text silences every phrase, the simple rule a user can predict
    ("if my post says X, it is not a code"). `negation_scope="overlap"`: only a hit that
    overlaps a negation is silenced; another occurrence of the code elsewhere still fires.

    `transliterated=True` also compares the phrase and the text through a chat
    transliteration to Latin (detectors/phrase_translit.py), for phrases and negations alike.
    """

    def __init__(
        self,
        phrases: Sequence[str],
        tolerance: str | int = "typos",
        negations: Sequence[str] = (),
        whole_words: bool = True,
        *,
        negation_tolerance: str | int = "exact",
        negation_scope: NegationScope = "text",
        transliterated: bool = False,
    ) -> None:
        if isinstance(phrases, str):
            raise TypeError("phrases must be a sequence of strings, not one string")
        if negation_scope not in ("text", "overlap"):
            raise ValueError(f"negation_scope must be 'text' or 'overlap': {negation_scope!r}")
        self.phrases = tuple(phrases)
        self.tolerance = tolerance
        self.whole_words = whole_words
        self.negation_scope = negation_scope
        self.transliterated = transliterated
        self._patterns = [
            _Pattern.build(p, tolerance, transliterated) for p in self.phrases if normalise(p)
        ]
        self._negations = [
            _Pattern.build(n, negation_tolerance, transliterated)
            for n in negations
            if normalise(n)
        ]

    def find(self, text: str) -> PhraseHit | None:
        """The best hit (fewest edits, then earliest), or None."""
        prepared = _prepared(text)
        best: tuple[int, int, int, _Pattern] | None = None
        folded = (prepared.skeleton or prepared.native).compact
        # The prefilter, inline: for ordinary text it is the whole cost of a pattern (a method
        # call per pattern would double it). Folding is a map of single letters, so a piece
        # found in the native text is also found, folded, in the folded text: one search
        # stands for both comparisons. With emoji to drop or a chat key to build,
        # Pattern.windows runs the prefilters itself.
        inline = not prepared.symbols
        for pattern in self._patterns:
            if inline and pattern.prefilter:
                for _, piece in pattern.skeleton.pieces:
                    if piece in folded:
                        break
                else:
                    continue
            windows = pattern.windows(prepared, self.whole_words)
            if windows and self._negations:
                windows = self._unnegated(windows, prepared)
            for distance, start, end in windows:
                if best is None or (distance, start) < best[:2]:
                    best = (distance, start, end, pattern)
        if best is None:
            return None
        distance, start, end, pattern = best
        return _hit(text, pattern, distance, start, end)

    def _unnegated(
        self, windows: list[tuple[int, int, int]], prepared: _Prepared
    ) -> list[tuple[int, int, int]]:
        spans = []
        for negation in self._negations:
            found = negation.windows(prepared, True)
            if found and self.negation_scope == "text":
                return []
            spans += [(a, b) for _, a, b in found]
        if not spans:
            return windows
        return [(d, s, e) for d, s, e in windows if not any(a < e and s < b for a, b in spans)]


def _hit(text: str, pattern: _Pattern, distance: int, start: int, end: int) -> PhraseHit:
    mapped, starts, ends = normalise_mapped(text)
    # normalise and normalise_mapped agree by construction (and by a property test); if they
    # ever did not, firing with a rough span beats not firing.
    last_index = len(mapped) - 1
    lo = starts[min(start, last_index)]
    hi = ends[min(end - 1, last_index)]
    # Keep marks that belong to the last matched character (accents, emoji selectors).
    while hi < len(text) and _attached(text[hi]):
        hi += 1
    return PhraseHit(pattern.original, text[lo:hi], lo, hi, distance)


def _attached(ch: str) -> bool:
    code = ord(ch)
    return bool(
        unicodedata.combining(ch)
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0100 <= code <= 0xE01EF
    )
