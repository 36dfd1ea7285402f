"""Phrase codes: normalisation rules, matching rules, and accuracy on a committed corpus slice.

The slice (tests/data/phrase/) is written by `benchmarks/phrase_accuracy.py --write-slice`:
labelled variants of the example codes embedded in ordinary text, and ordinary texts from
fortunes, WordNet, chatterbot-corpus and hunspell-ar (see tests/data/phrase/README.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.phrase import PhraseHit, PhraseMatcher, max_edits_for, normalise
from detectors.phrase_normalise import confusable_skeleton, normalise_mapped

DATA = Path(__file__).parent / "data" / "phrase"
ARABIC = "نسيت شراء الحليب مرة أخرى"
CODES = [
    "the network went down at work",
    "I forgot to buy milk again",
    "can you feed the cat on thursday",
    "🌻🌻",
    "my blue umbrella broke",
    "у нас сломался холодильник",
    ARABIC,
]


def fires(phrase: str, text: str, **kwargs: object) -> bool:
    return PhraseMatcher([phrase], **kwargs).find(text) is not None  # type: ignore[arg-type]


# --- normalisation, one rule at a time -------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＴＨＥ　ＮＥＴＷＯＲＫ", "the network"),  # fullwidth letters and space (NFKC)
        ("𝐭𝐡𝐞 𝓷𝓮𝓽𝔀𝓸𝓻𝓴", "the network"),  # mathematical alphabets (NFKC)
        ("ⓗⓔⓛⓛⓞ", "hello"),  # circled letters (NFKC)
        ("ﬁne", "fine"),  # ligature (NFKC)
        ("Straße", "strasse"),  # case folding, not just lower()
        ("THE Network", "the network"),
        ("café crème brûlée", "cafe creme brulee"),  # precomposed accents
        ("cafe\u0301", "cafe"),  # combining accent
        ("łódź", "lodz"),  # letters with no decomposition
        ("net\u200bwork", "network"),  # zero-width space
        ("net\u200c\u200d\u2060\ufeffwork", "network"),  # ZWNJ, ZWJ, word joiner, BOM
        ("net\u00adwork", "network"),  # soft hyphen
        ("\u202enetwork\u202c", "network"),  # bidi override
        ("net\x00wo\x07rk", "network"),  # control bytes
        ("the\tnetwork\n\nwent", "the network went"),  # white-space controls are spaces
        ("hello,,,   world!!!", "hello world"),  # punctuation and runs of space
        ("“quoted” — (text) [here]…", "quoted text here"),
        ("e-mail_address", "e mail address"),
    ],
)
def test_normalise_rules(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("tһе nеtwоrk", "the network"),  # Cyrillic е о һ
        # Greek capitals. (Ν and Υ fold like their lowercase forms, ν "v" and υ "u", so that
        # Greek text stays case-consistent; the typo allowance absorbs that one letter.)
        ("ΤΗΕ ΒΟΑΤ", "the boat"),
        ("tο", "to"),  # Greek omicron
        ("ᴛʜᴇ ɴᴇᴛᴡᴏʀᴋ", "the network"),  # small capitals
        ("mіlk", "milk"),  # Ukrainian і
    ],
)
def test_normalise_folds_lookalikes(raw: str, expected: str) -> None:
    # The skeleton folds every look-alike; normalise alone folds them in mixed-script words.
    assert confusable_skeleton(normalise(raw)) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("I didn't", "i did not"),
        ("I didn’t", "i did not"),  # curly apostrophe
        ("i didnt", "i did not"),
        ("I'm", "i am"),
        ("Im", "i am"),
        ("it's", "it is"),
        ("its", "it is"),
        ("gonna", "going to"),
        ("wanna", "want to"),
        ("can't", "can not"),
        ("cannot", "can not"),
        ("won't", "will not"),
        ("we're", "we are"),
        ("they'll", "they will"),
        ("can u", "can you"),
        ("john's", "johns"),  # possessive: apostrophe joins
        ("'quoted'", "quoted"),
        ("we'll well", "we will well"),  # bare "well" is a word, left alone
    ],
)
def test_normalise_contractions(raw: str, expected: str) -> None:
    assert normalise(raw) == expected


def test_normalise_keeps_emoji_as_tokens() -> None:
    assert normalise("🌻🌻") == "🌻 🌻"
    assert normalise("love🌻🌻!") == "love 🌻 🌻"
    assert normalise("❤️") == normalise("❤")  # presentation selector dropped
    assert normalise("👍🏽") == normalise("👍")  # skin tone dropped
    assert normalise("🌻") != normalise("🌷")


def test_normalise_other_scripts() -> None:
    assert normalise("У НАС") == normalise("у нас")
    assert normalise("ёлка") == normalise("елка")
    # Arabic: harakat, kashida, alef with hamza, alef maksura, teh marbuta, Persian letters.
    assert normalise("نَسِيتُ") == normalise("نسيت")
    assert normalise("الحلـــيب") == normalise("الحليب")
    assert normalise("أخرى") == normalise("اخري")
    assert normalise("مرة") == normalise("مره")
    assert normalise("کی") == normalise("كي")
    assert normalise("٣ ۳") == "3 3"
    # Han characters are compared in their simplified form (OpenCC's character table), in
    # Japanese text too: both sides fold alike, so a Japanese code still matches itself.
    assert normalise("日本語のテキスト") == "日本语のテキスト"
    assert normalise("我的藍色雨傘壞了") == normalise("我的蓝色雨伞坏了")
    assert normalise("") == ""


def test_normalise_mapped_points_at_original_characters() -> None:
    text = "Ｉ didn't\u200b go"
    norm, starts, ends = normalise_mapped(text)
    assert norm == "i did not go"
    assert text[starts[0] : ends[0]] == "Ｉ"
    # Every character of an expanded contraction stands for the whole original token.
    assert text[starts[2] : ends[8]] == "didn't"
    assert text[starts[-1] : ends[-1]] == "o"


# --- matching ----------------------------------------------------------------------------------


def test_word_boundaries() -> None:
    assert not fires("network", "we met at a networking event")
    assert not fires("network", "the subnetwork failed")
    assert fires("network", "the network, again")
    assert fires("network", "networking", whole_words=False)
    assert fires("network", "subnetwork", whole_words=False)
    # A fuzzy match must also end on a word edge.
    assert not fires("the network went down at work", "the network went down at workshops")


def test_joined_and_split_words() -> None:
    code = "the network went down at work"
    assert fires(code, "the net work went down at work")
    assert fires(code, "the networkwent down at work")
    assert fires(code, "thenetworkwentdownatwork")


def test_tolerance_thresholds() -> None:
    assert max_edits_for("help me") == 0
    assert max_edits_for("🌻🌻") == 0
    assert max_edits_for("blue umbrella") == 1
    assert max_edits_for("my blue umbrella broke") == 2
    assert max_edits_for("anything", "exact") == 0
    assert max_edits_for("a", 3) == 3
    with pytest.raises(ValueError):
        max_edits_for("x", "loose")
    with pytest.raises(ValueError):
        max_edits_for("x", -1)
    with pytest.raises(TypeError):
        max_edits_for("x", True)


def test_tolerance_modes() -> None:
    code = "my blue umbrella broke"
    assert fires(code, "my blue umbrela broke")  # dropped letter
    assert fires(code, "my bleu umbrella broke")  # swapped letters: one edit
    assert fires(code, "my bllue umbrela broke")  # two edits
    assert not fires(code, "my bllue umbrela brokke")  # three
    assert not fires(code, "my blue umbrela broke", tolerance="exact")
    assert fires(code, "my blue umbrella broke", tolerance="exact")
    assert fires(code, "my bllue umbrela brokke", tolerance=3)
    assert not fires(code, "my blue umbrela broke", tolerance=0)
    # Medium phrase: one edit, not two.
    assert fires("blue umbrella", "blue umbrela")
    assert not fires("blue umbrella", "bleu umbrela")
    # Short phrase: exact only ("my cat" must not fire on "my car").
    assert not fires("my cat", "my car")
    assert fires("my cat", "My Cat!")


def test_hit_reports_original_span_and_distance() -> None:
    text = "ugh!! The Network went dwon at wrok... anyway"
    hit = PhraseMatcher(["the network went down at work"]).find(text)
    assert hit == PhraseHit("the network went down at work", "The Network went dwon at wrok",
                            6, 35, 2)
    assert text[hit.start : hit.end] == hit.matched

    text = "so 𝓶𝔂 𝓫𝓵𝓾𝓮 umbrella broke‼"
    hit = PhraseMatcher(["my blue umbrella broke"]).find(text)
    assert hit is not None and hit.matched == "𝓶𝔂 𝓫𝓵𝓾𝓮 umbrella broke"
    assert hit.distance == 0

    text = "x cafe\u0301 noir"  # the accent after the last letter belongs to the match
    hit = PhraseMatcher(["x café"]).find(text)
    assert hit is not None and hit.matched == "x cafe\u0301"

    text = "today 🌻\ufe0f🌻\ufe0f!"
    hit = PhraseMatcher(["🌻🌻"]).find(text)
    assert hit is not None and hit.matched == "🌻\ufe0f🌻\ufe0f" and hit.start == 6


def test_best_hit_among_phrases() -> None:
    matcher = PhraseMatcher(["blue umbrella", "red umbrella"])
    hit = matcher.find("my red umbrela and my blue umbrella")
    assert hit is not None and hit.phrase == "blue umbrella" and hit.distance == 0
    hit = matcher.find("my red umbrela")
    assert hit is not None and hit.phrase == "red umbrella" and hit.distance == 1


@pytest.mark.parametrize(
    "code",
    [
        *CODES,
        "Καλημέρα σας φίλε μου",
        "मुझे मदद चाहिए अभी",
        "我今天很好",
        "אני צריכה עזרה",
        "ＡＢＣ",
        "🏳️‍🌈 🦄",
    ],
)
def test_any_script_matches_itself(code: str) -> None:
    hit = PhraseMatcher([code]).find(f"first {code} last")
    assert hit is not None and hit.distance == 0 and hit.matched == code
    assert fires(code, code.upper())


def test_cyrillic_and_arabic_codes() -> None:
    assert fires(CODES[5], "Привет. У НАС СЛОМАЛСЯ ХОЛОДИЛЬНИК!!")
    assert fires(CODES[5], "у нас сломался холодильнк")  # a typo
    assert fires(CODES[5], "y нac cлoмaлcя xoлoдильник")  # Latin look-alikes typed in
    assert not fires(CODES[5], "у нас сломался телевизор")
    assert fires(ARABIC, "نَسِيتُ شِرَاءَ الحَلِيبِ مَرَّةً أُخْرَى")  # fully vowelled
    assert fires(ARABIC, "نسيت شراء الحليب مره اخري")  # everyday spelling variants
    assert not fires(ARABIC, "نسيت شراء الخبز مرة أخرى")  # bread, not milk


def test_emoji_codes_are_exact() -> None:
    assert fires("🌻🌻", "🌻 🌻")
    assert fires("🌻🌻", "lovely day🌻🌻")
    assert not fires("🌻🌻", "🌻")
    assert not fires("🌻🌻", "🌻🌷")
    assert not fires("🌻🌻", "🌻😂🌻")


def test_stray_emoji_inside_a_worded_code_is_ignored() -> None:
    assert fires("I forgot to buy milk again", "I forgot to buy 😭 milk again")
    assert fires("sunny 🌻 day", "sunny 🌻 😂 day")
    assert not fires("sunny 🌻 day", "sunny 🌷 day", tolerance="exact")


def test_negation_text_scope() -> None:
    matcher = PhraseMatcher(["my blue umbrella broke"], negations=["last year"])
    assert matcher.find("my blue umbrella broke") is not None
    assert matcher.find("LAST-YEAR my blue umbrella broke") is None
    assert matcher.find("my blue umbrela broke, like last year") is None
    # Negations are exact after normalisation: a typo'd negation does not silence a code.
    assert matcher.find("last yeer my blue umbrella broke") is not None
    # ... unless the user asks for it.
    lenient = PhraseMatcher(["my blue umbrella broke"], negations=["last year"],
                            negation_tolerance=1)
    assert lenient.find("last yeer my blue umbrella broke") is None


def test_negation_containing_the_code() -> None:
    matcher = PhraseMatcher(["the network went down at work"],
                            negations=["did you say the network went down at work"])
    assert matcher.find("Did you say the network went down at work?") is None
    assert matcher.find("did you say: the n\u200betwork went down at work") is None
    assert matcher.find("the network went down at work") is not None


def test_negation_overlap_scope() -> None:
    matcher = PhraseMatcher(["my blue umbrella broke"], negations=["not my blue umbrella"],
                            negation_scope="overlap")
    assert matcher.find("not my blue umbrella broke") is None
    hit = matcher.find("not my blue umbrella broke. my blue umbrella broke")
    assert hit is not None and hit.start == 28
    assert matcher.find("my blue umbrella broke, not my blue umbrella stand") is not None
    with pytest.raises(ValueError):
        PhraseMatcher(["x"], negation_scope="nearby")  # type: ignore[arg-type]


def test_degenerate_inputs() -> None:
    assert PhraseMatcher([]).find("anything") is None
    assert PhraseMatcher(["", "!!!"]).find("!!!") is None
    assert PhraseMatcher(["help"]).find("") is None
    with pytest.raises(TypeError):
        PhraseMatcher("my phrase")


# --- properties -----------------------------------------------------------------------------

_ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
_PHRASE = st.lists(
    st.text(st.characters(categories=["L", "N", "So"]), min_size=1, max_size=8),
    min_size=1, max_size=5,
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(_ANY_TEXT)
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@settings(max_examples=300, deadline=None)
@given(_ANY_TEXT)
def test_mapped_normalisation_agrees_with_the_fast_one(text: str) -> None:
    norm, starts, ends = normalise_mapped(text)
    assert norm == normalise(text)
    assert len(starts) == len(ends) == len(norm)
    assert all(0 <= s <= e <= len(text) for s, e in zip(starts, ends, strict=True))


@settings(max_examples=200, deadline=None)
@given(_PHRASE, _ANY_TEXT, _ANY_TEXT)
def test_a_phrase_always_matches_itself_in_any_text(phrase: str, before: str, after: str) -> None:
    if not normalise(phrase):
        return
    text = f"{before} {phrase} {after}"
    hit = PhraseMatcher([phrase], tolerance="exact").find(text)
    assert hit is not None and hit.distance == 0
    assert text[hit.start : hit.end] == hit.matched


# --- accuracy on the committed slice --------------------------------------------------------

# Kinds the issue sets a target for; others are held at what the benchmark measured.
_TARGETS = {
    "exact": 1.0, "case": 1.0, "punctuation": 1.0, "spacing": 1.0, "accents": 1.0,
    "emoji": 1.0, "lookalike": 1.0, "zero-width": 1.0, "negation": 1.0, "contraction": 1.0,
    "typo-1": 0.95, "typo-2": 0.90, "join/split": 0.95, "misspelt": 0.90,
    "lookalike-any": 0.90,
}


def _rows(name: str) -> list[dict[str, object]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_slice_recall_by_kind() -> None:
    matchers: dict[tuple[str, tuple[str, ...]], PhraseMatcher] = {}
    results: dict[str, list[bool]] = defaultdict(list)
    for row in _rows("variants.jsonl"):
        negations: list[str] = row["negations"]  # type: ignore[assignment]
        key = (str(row["phrase"]), tuple(negations))
        matcher = matchers.setdefault(key, PhraseMatcher([key[0]], negations=key[1]))
        hit = matcher.find(str(row["text"]))
        results[str(row["kind"])].append((hit is not None) == row["fire"])
        if hit is not None:
            assert str(row["text"])[hit.start : hit.end] == hit.matched
    assert set(results) == set(_TARGETS)
    scores = {kind: sum(ok) / len(ok) for kind, ok in results.items()}
    failing = {k: v for k, v in scores.items() if v < _TARGETS[k]}
    assert not failing, failing


def test_slice_has_no_false_positives() -> None:
    rows = _rows("ordinary.jsonl")
    assert len(rows) >= 4000
    matchers = [PhraseMatcher([code]) for code in CODES]
    hits = [(m.phrases[0], row["text"]) for row in rows for m in matchers
            if m.find(str(row["text"])) is not None]
    assert hits == []
