"""Phrase codes: find an agreed phrase in text, tolerant of how people type.

Pure: no I/O, same input, same answer. Both the phrase and the text go through
the same normalisation, so a phrase in any script still matches itself.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Fold case, compatibility forms and punctuation so that variants compare equal."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch)
    )
    kept = "".join(ch if (ch.isalnum() or ord(ch) > 0x2000) else " " for ch in stripped)
    return _SPACE.sub(" ", kept).strip()


@dataclass(frozen=True)
class PhraseHit:
    phrase: str
    matched: str
    start: int
    end: int
    distance: int = 0


class PhraseMatcher:
    """Finds any of `phrases` in a text, on word boundaries."""

    def __init__(
        self,
        phrases: Sequence[str],
        tolerance: str | int = "typos",
        negations: Sequence[str] = (),
        whole_words: bool = True,
    ) -> None:
        self.phrases = [(p, normalise(p)) for p in phrases]
        self.tolerance = tolerance
        self.negations = [normalise(n) for n in negations]
        self.whole_words = whole_words

    def find(self, text: str) -> PhraseHit | None:
        norm = normalise(text)
        if any(n and n in norm for n in self.negations):
            return None
        padded = f" {norm} "
        for original, phrase in self.phrases:
            if not phrase:
                continue
            needle = f" {phrase} " if self.whole_words else phrase
            at = padded.find(needle)
            if at >= 0:
                return PhraseHit(original, phrase, max(at, 0), max(at, 0) + len(phrase))
        return None
