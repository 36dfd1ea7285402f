"""Phrase matching for text an OCR engine read: the phrase codes' tolerance, plus the letters
the engine is known to mistake for one another in handwriting.

Measured (benchmarks/ocr_accuracy.py, docs/benchmarks.md "OCR"): on handwriting-like fonts
PP-OCR misreads whole letters, not the layout: "Hhe KefHe is still Greken" for "the kettle
is still broken", "we ran eut ef eat milk". The ordinary typo allowance (two edits for a long
phrase) cannot absorb five such letters, so recall on handwriting stayed near 58 %. Here a
second comparison folds each class of letters the engine confuses to one letter, in the phrase
and in the read text alike, and then applies the code's usual tolerance.

The classes and where they apply were chosen by measurement, not by guess:
* recall: the misses of the first 300 positives (the classes each recovered), then checked on
  handwriting cases held out from that choice (ocr_corpus.handwriting_case);
* false alarms: real 3-5 word fragments of the phrase benchmark's English sentences used as
  codes, against 10,000 texts of four sentences each, folded like OCR text. Per 100k
  (code, text) pairs: 8-15 characters 9.1 unfolded -> 9.3 with _CLASSES -> 22.5 with
  _LONG_CLASSES too; 16-19: 2.3 -> 2.4 -> 2.8; 20 and more: 0.13 -> 0.20 -> 0.20. So the
  wider classes apply only to phrases of 16 characters or more (the two-typo tier of
  detectors/phrase.py), where they cost about as much as one more typo;
* rn/m, 0/O and 1/l: the engine did not make those errors in the measured cases (l/I is
  already one letter in detectors/phrase.py), so they are not folded.

Folding maps one character to one character, so a hit's span in the folded text is the same
span in the text that was read, and the evidence quotes what the engine really read.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from detectors.phrase import PhraseHit, PhraseMatcher, normalise

__all__ = ["OcrHit", "find_ocr", "fold"]

# Each string is one class; every letter of it is read as the first. Round letters (o, c read
# as e), the crossed and ascending strokes of t (h, f and a "+"), the descenders g/s/q, and a
# b whose bowl is lost (read l).
_CLASSES = ("eoc", "thf+", "gsq", "bl")
# Only for phrases long enough to afford them (see above): a read as o/e, and n/m/r
# (a hump more or less).
_LONG_CLASSES = ("eoca", "nmr")
_LONG_FROM = 16  # normalised characters without spaces: detectors.phrase's two-typo tier


def _table(classes: tuple[str, ...]) -> dict[int, int]:
    table: dict[int, int] = {}
    for cls in classes:
        for ch in cls:
            for variant in {ch, ch.upper()}:
                table[ord(variant)] = ord(cls[0])
    return table


_SHORT = _table(_CLASSES)
_LONG = _table(_CLASSES + _LONG_CLASSES)


def fold(text: str, long: bool = False) -> str:
    """`text` with each confusion class read as one letter; same length as `text`."""
    return text.translate(_LONG if long else _SHORT)


@dataclass(frozen=True)
class OcrHit:
    hit: PhraseHit  # span and `matched` in the text as read (folding keeps positions)
    confusions: int  # letters the folding forgave, beyond the hit's typo distance


class _Folded:
    """The folded twins of one PhraseMatcher: one for its short phrases, one for its long."""

    def __init__(self, matcher: PhraseMatcher) -> None:
        # Negations are folded too: a negation the engine misread the same way still
        # silences the code, as it would have in typed text.
        negations = [p.original for p in matcher._negations]
        self.by_phrase: dict[str, str] = {}
        self.matchers: list[tuple[bool, PhraseMatcher]] = []
        for long in (False, True):
            phrases = [p for p in matcher.phrases if _is_long(p) == long]
            if not phrases:
                continue
            folded = [fold(p, long) for p in phrases]
            self.by_phrase.update(zip(folded, phrases, strict=True))
            self.matchers.append((long, PhraseMatcher(
                folded, matcher.tolerance, [fold(n, long) for n in negations],
                matcher.whole_words, negation_scope=matcher.negation_scope)))


def _is_long(phrase: str) -> bool:
    return len(normalise(phrase).replace(" ", "")) >= _LONG_FROM


_folded: weakref.WeakKeyDictionary[PhraseMatcher, _Folded] = weakref.WeakKeyDictionary()
_folded_lock = threading.Lock()


def _twins(matcher: PhraseMatcher) -> _Folded:
    with _folded_lock:
        twins = _folded.get(matcher)
        if twins is None:
            twins = _folded[matcher] = _Folded(matcher)
        return twins


def find_ocr(matcher: PhraseMatcher, text: str) -> OcrHit | None:
    """`matcher`'s best hit in OCR-read `text`: as typed text first, then folded."""
    hit = matcher.find(text)
    if hit is not None:
        return OcrHit(hit, 0)
    best: OcrHit | None = None
    for long, folded in _twins(matcher).matchers:
        found = folded.find(fold(text, long))
        if found is None:
            continue
        phrase = _twins(matcher).by_phrase[found.phrase]
        matched = text[found.start:found.end]
        confusions = max(0, _distance(phrase, matched) - found.distance)
        candidate = OcrHit(PhraseHit(phrase, matched, found.start, found.end, found.distance),
                           confusions)
        if best is None or (found.distance, found.start) < (best.hit.distance, best.hit.start):
            best = candidate
    return best


def _distance(phrase: str, matched: str) -> int:
    def compact(s: str) -> str:
        return normalise(s).replace(" ", "")

    return int(OSA.distance(compact(phrase), compact(matched)))
