"""The OCR-aware phrase comparison (detectors/ocr_match.py): the letters the engine confuses in
handwriting are forgiven, only as far as measured, and the evidence quotes what was read."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from detectors.ocr_match import _CLASSES, _LONG_CLASSES, find_ocr, fold
from detectors.phrase import PhraseMatcher

LONG = "the kettle is still broken"  # 22 letters: the two-typo tier, every class applies
SHORT = "walk the dog"  # 10 letters: one typo, the narrow classes only


def _swaps(classes: tuple[str, ...]) -> dict[str, str]:
    """For each letter in a class, another letter of the same class."""
    return {ch: cls[(i + 1) % len(cls)] for cls in classes for i, ch in enumerate(cls)
            if ch.isalpha()}


@given(st.text(max_size=80))
def test_fold_keeps_every_position(text: str) -> None:
    for long in (False, True):
        folded = fold(text, long)
        assert len(folded) == len(text)
        assert fold(folded, long) == folded


@given(st.lists(st.booleans(), min_size=len(LONG), max_size=len(LONG)),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,!", max_size=30),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,!", max_size=30))
def test_any_confusion_of_a_long_phrase_matches_and_quotes_the_read_text(
        which: list[bool], before: str, after: str) -> None:
    swaps = _swaps(_CLASSES + _LONG_CLASSES)
    misread = "".join(swaps.get(ch, ch) if flip else ch for ch, flip in zip(LONG, which,
                                                                          strict=True))
    text = f"{before} {misread} {after}"
    found = find_ocr(PhraseMatcher([LONG]), text)
    assert found is not None and found.hit.phrase == LONG
    assert found.hit.matched == text[found.hit.start:found.hit.end]


@given(st.text(max_size=60))
def test_typed_text_match_comes_first_unchanged(noise: str) -> None:
    matcher = PhraseMatcher([LONG])
    text = f"{noise} {LONG}"
    plain = matcher.find(text)
    found = find_ocr(matcher, text)
    assert plain is not None and found is not None
    assert found.hit == plain and found.confusions == 0


def test_the_engines_measured_misreadings() -> None:
    # Lines RapidOCR really read from handwriting-like fonts (benchmarks/ocr_accuracy.py).
    read = {"the kettle is still broken": "Hhe KefHe is still Greken",
            "we ran out of oat milk": "We ran eut ef eat milk",
            "green candles for the party": "sreen candlles fer Hhe party",
            "walk the dog past the bakery": "walk Hhe des past Hhe bakery"}
    for phrase, text in read.items():
        assert PhraseMatcher([phrase]).find(text) is None  # typed-text tolerance: a miss
        found = find_ocr(PhraseMatcher([phrase]), text)
        assert found is not None and found.hit.phrase == phrase and found.confusions >= 2
        assert found.hit.matched == text


def test_short_phrases_get_only_the_narrow_classes() -> None:
    matcher = PhraseMatcher([SHORT])
    # o read as e, t as h: narrow classes, forgiven.
    assert find_ocr(matcher, "walk hhe deg") is not None
    # a read as e twice: a long-phrase class only (for short codes it tripled the false
    # alarms on ordinary sentences), and two edits are over a short phrase's one typo.
    assert find_ocr(matcher, "welk the dag") is None
    assert find_ocr(PhraseMatcher([LONG + " " + SHORT]),
                    "the kettle is still broken welk the dag") is not None


def test_a_folded_negation_still_silences() -> None:
    matcher = PhraseMatcher([LONG], negations=["just a joke"])
    assert find_ocr(matcher, "Hhe KefHe is still Greken") is not None
    # The negation misread the same way ("o" as "e") still says it is not a code.
    assert find_ocr(matcher, "Hhe KefHe is still Greken, just a jeke") is None


def test_other_codes_phrases_are_not_found_in_ordinary_text() -> None:
    """Every phrase of the benchmark against ordinary lines the engine read from negatives;
    a guard on the classes, not the measurement (that is benchmarks/ocr_accuracy.py)."""
    phrases = ["the blue heron flies at noon", "grandma needs her reading glasses",
               "please water the ferns today", LONG, "i left my library card", SHORT]
    ordinary = ["OPEN 9am - 5pm Monday to Saturday", "the blue line to the station at noon",
                "grandpa reads the papers", "please wait here today", "the bottle is still open",
                "i lent my library book", "walk the cat"]
    matcher = PhraseMatcher(phrases)
    assert [line for line in ordinary if find_ocr(matcher, line)] == []
