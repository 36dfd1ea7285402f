"""Phrase codes: normalisation rules, matching rules, and accuracy on a committed corpus slice.

The slice (tests/data/phrase/) is written by `benchmarks/phrase_accuracy.py --write-slice`:
labelled variants of the example codes embedded in ordinary text, and ordinary texts from
fortunes, WordNet, chatterbot-corpus and hunspell-ar (see tests/data/phrase/README.md).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
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


# --- scripts and languages (issue 20) -------------------------------------------------------


def test_a_word_that_mixes_scripts_is_folded_to_latin() -> None:
    assert normalise("umbrеlla") == "umbrella"  # Cyrillic е
    assert normalise("y нac") == "y hac"  # "нac": Cyrillic н with Latin a and c
    assert normalise("χωρίς χωριό") == "χωρισ χωριο"  # wholly Greek: stays Greek


def test_genuine_greek_words_stay_apart_even_when_exact() -> None:
    # σ/ς and ο are both look-alikes of Latin "o": folding them merged "χωρίς" (without) and
    # "χωριό" (village), a pair found in the Greek corpus of the benchmark.
    assert not fires("χωρίς", "χωριό", tolerance="exact")
    assert not fires("πάμε χωριό αύριο", "πάμε χωρίς αύριο", tolerance="exact")
    assert fires("πάμε χωριό αύριο", "ΠΑΜΕ ΧΩΡΙΟ ΑΥΡΙΟ!", tolerance="exact")
    # A Cyrillic code and genuine Cyrillic text: н/п/т are not "h", "n", "t" to each other.
    assert not fires("тон", "нон", tolerance="exact")


def test_look_alikes_still_match_across_scripts() -> None:
    # Whole-script confusables: the text's word is in another script than the code's.
    assert fires("the boat", "ΤΗΕ ΒΟΑΤ", tolerance="exact")  # all Greek capitals
    assert fires("a cat", "а cat", tolerance="exact")  # a one-letter Cyrillic word
    assert fires(CODES[5], "y нac cлoмaлcя xoлoдильник", tolerance="exact")
    # Mixed-script words in a Greek code still match their Latin-polluted copies.
    assert fires("πάμε χωριό αύριο", "πάμε χωριo αύριο", tolerance="exact")  # Latin o
    assert fires("πάμε χωριό αύριο", "πάμε χωριо αύριο", tolerance="exact")  # Cyrillic о


_SCRIPT_ALPHABETS = {
    "GREEK": "αβγδεζηθικλμνξοπρσςτυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩάέήίόύώ",
    "CYRILLIC": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґАВЕКМНОРСТХЅЈ",
    "ARMENIAN": "աբգդեզէըթժիլխծկհձղճմյնշոչպջռսվտրցւփքօֆ",
    "CHEROKEE": "ᎠᎡᎢᎣᎤᎥᎦᎧᎨᎩᎪᎫᎬᎭᎮᎯᎰᎱᎲᎳᎴᎵᎶᎷᎸᎹᎺᎻᎼᎽᎾᎿᏀᏁᏂᏃᏄᏅᏆᏇᏈᏉᏊᏋᏌᏍᏎᏏᏐᏑᏒᏓᏔᏕᏖᏗᏘᏙᏚᏛᏜᏝᏞᏟ",
}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_SCRIPT_ALPHABETS)).flatmap(
    lambda script: st.tuples(st.just(script), st.lists(
        st.text(st.sampled_from(_SCRIPT_ALPHABETS[script]), min_size=1, max_size=10),
        min_size=1, max_size=4).map(" ".join))))
def test_a_word_wholly_in_one_script_is_never_folded_to_latin(sample: tuple[str, str]) -> None:
    script, text = sample
    from detectors.phrase_normalise import script_of

    scripts = {script_of(ch) for ch in normalise(text)} - {""}
    assert scripts <= {script}, (text, normalise(text))
    # ... and so a same-script text matches a same-script code only through its own letters.
    hit = PhraseMatcher([text], tolerance="exact").find(f"x {text} y")
    assert hit is not None and hit.distance == 0


@pytest.mark.parametrize(
    ("code", "typed"),
    [
        ("у нас опять сломался холодильник", "u nas opyat slomalsya holodilnik"),  # translit
        ("у нас опять сломался холодильник", "u nas opjat' slomalsja xolodil'nik"),
        ("у нас опять сломался холодильник", "u nas opyat slomals9 kholodilnik"),
        ("ξέχασα να ταΐσω τη γάτα πάλι", "ksexasa na taisw th gata pali"),  # Greeklish
        ("ξέχασα να ταΐσω τη γάτα πάλι", "3exasa na taiso ti gata pali"),
        ("ευχαριστώ πολύ για όλα", "euxaristw poly gia ola"),
        (ARABIC, "nseet shera2 el7aleeb marra okhra"),  # Arabizi
        (ARABIC, "nsit shira2 il 7alib mara o5ra"),
        ("मेरा नीला छाता फिर से टूट गया", "mera neela chhata phir se toot gaya"),  # Hinglish
        ("मेरा नीला छाता फिर से टूट गया", "mera nila chata fir se tut gya"),
        ("我的蓝色雨伞又坏了", "wo de lan se yu san you huai le"),  # pinyin without tones
        ("我的蓝色雨伞又坏了", "wode lanse yusan you huaile"),
        ("我的藍色雨傘又壞了", "wo3 de lan2 se4 yu3 san3 you4 huai4 le"),  # traditional code
    ],
)
def test_transliterated_codes_match_how_people_chat(code: str, typed: str) -> None:
    text = f"hey. {typed}!! ok"
    assert not fires(code, text)  # off by default
    hit = PhraseMatcher([code], transliterated=True).find(text)
    assert hit is not None
    assert text[hit.start : hit.end] == hit.matched
    # The quoted span is the typed words (a word with no consonant, "u", may be left out).
    assert hit.matched in typed and len(hit.matched) >= len(typed) - 2


def test_transliterated_hard_negatives_and_negations() -> None:
    code = "ξέχασα να ταΐσω τη γάτα πάλι"
    matcher = PhraseMatcher([code], transliterated=True)
    assert matcher.find("ksexasa na taisw ton skylo pali") is None  # the dog, not the cat
    assert PhraseMatcher([ARABIC], transliterated=True).find(
        "nseet shera2 el 5obz marra okhra") is None  # bread, not milk
    negated = PhraseMatcher([code], negations=["den " + code], transliterated=True)
    assert negated.find("den ksexasa na taisw th gata pali") is None
    assert negated.find("ksexasa na taisw th gata pali") is not None
    in_greek = PhraseMatcher([code], negations=["δεν " + code], transliterated=True)
    assert in_greek.find("den ksexasa na taisw th gata pali") is None


def test_a_chat_key_is_not_used_for_a_text_partly_in_the_code_script() -> None:
    # "your" for "मेरा" (my): as consonants "r" is one edit from "mr", but the rest of the
    # sentence is in Devanagari, where the Hindi comparison is the one that counts.
    code = "मेरा नीला छाता फिर से टूट गया"
    matcher = PhraseMatcher([code], "exact", transliterated=True)
    assert matcher.find("your नीला छाता फिर से टूट गया") is None
    assert matcher.find("mera neela chhata phir se toot gaya") is not None


def test_transliteration_never_compares_two_texts_in_the_same_script() -> None:
    # "καλημέρα σου αγάπη μου" and "καλή μοίρα σου αγάπη μου" share a chat key; in Greek
    # letters they are different words, and the Greek comparison is the one that counts.
    code = PhraseMatcher(["καλημέρα σου αγάπη μου"], "exact", transliterated=True)
    assert code.find("καλή μοίρα σου αγάπη μου") is None
    assert code.find("kali moira sou agapi mou") is not None


def test_a_chat_key_too_short_to_mean_anything_is_not_used() -> None:
    # "у нас" is "ns" as a chat key: it would fire on "nice", "no sir", ...
    assert PhraseMatcher(["у нас"], transliterated=True).find("u nas") is None
    assert PhraseMatcher(["καλημέρα σου"], transliterated=True).find("kalimera sou") is None
    assert PhraseMatcher(["у нас"], transliterated=True).find("у нас") is not None


def test_traditional_and_simplified_chinese_are_one_code() -> None:
    assert fires("我的蓝色雨伞又坏了", "今天我的藍色雨傘又壞了。", tolerance="exact")
    assert fires("我的藍色雨傘又壞了", "我的蓝色雨伞又坏了", tolerance="exact")


def test_typos_in_scripts_without_spaces_are_different_words() -> None:
    # One character is a word: "typos" forgives nothing there, an int tolerance still does.
    assert max_edits_for("我的蓝色雨伞又坏了") == 0
    assert max_edits_for("青い傘がまた壊れた") == 0
    assert not fires("我的蓝色雨伞又坏了", "我的红色雨伞又坏了")  # red, not blue
    assert not fires("青い傘がまた壊れた", "赤い傘がまた壊れた")  # red, not blue
    assert fires("我的蓝色雨伞又坏了", "我的蓝色雨伞坏了", tolerance=1)
    # Thai has no word edges either: "ร่ม" (umbrella) and "รถ" (car) are two edits apart, so
    # under "typos" a Thai code is exact (issue #20's Thai hard negative fired before).
    assert max_edits_for("ร่มสีฟ้าของฉันพังอีกแล้ว") == 0
    assert not fires("ร่มสีฟ้าของฉันพังอีกแล้ว", "รถสีฟ้าของฉันพังอีกแล้ว")  # car, not umbrella
    assert fires("ร่มสีฟ้าของฉันพังอีกแล้ว", "วันนี้ร่มสีฟ้าของฉันพังอีกแล้วค่ะ")
    assert fires("ร่มสีฟ้าของฉันพังอีกแล้ว", "รมสีฟ้าของฉันพังอีกแล้ว", tolerance=1)


def test_whole_words_in_scripts_without_spaces() -> None:
    # Chinese, Japanese and Thai put no spaces between words, so every character edge is a
    # word edge: whole_words cannot refuse a code inside a longer run of characters there.
    assert fires("雨伞", "我的蓝色雨伞又坏了", tolerance="exact")
    assert fires("傘", "青い傘がまた", tolerance="exact")
    assert fires("ร่ม", "ร่มสีฟ้า", tolerance="exact")
    # Against a neighbouring Latin word it is still an edge; inside a Latin word it is not.
    assert fires("雨伞", "my雨伞broke", tolerance="exact")
    assert not fires("cat", "my雨伞cats", tolerance="exact")


def test_a_typo_never_changes_a_whole_word() -> None:
    # Each of these fits in the 2 edits "typos" allows on the whole phrase, and each is
    # another sentence: a word lost, added or swapped for another real word is not a typo
    # (issue #20 hard negatives, docs/benchmarks-phrase.md).
    code = "the network went down at work"
    assert max_edits_for(code) == 2
    assert not fires(code, "the network went up at work")
    assert not fires(code, "the network went no down at work")  # "no" inserted
    assert not fires(code, "the network went down at no work")
    assert not fires(code, "the network went down in work")  # a short word replaced
    assert not fires(code, "the network went town at work")
    assert not fires(code, "network went down at work")  # a short word dropped
    assert not fires(code, "the network went down work")
    assert not fires("у нас опять сломался холодильник", "у вас опять сломался холодильник")
    assert not fires("se me olvidó comprar leche otra vez",
                     "Dime me olvidó comprar leche otra vez")
    assert not fires("se me olvidó comprar leche otra vez", "de me olvidó comprar leche otra vez")
    assert not fires("la machine à laver est encore en panne",
                     "dans machine à laver est encore en panne")
    assert not fires("tủ lạnh nhà tôi lại bị hỏng rồi", "bảng lạnh nhà tôi lại bị hỏng rồi")
    assert not fires("tủ lạnh nhà tôi lại bị hỏng rồi", "tủ lạnh nhà tôi lại bị không rồi")
    assert not fires("ξέχασα να ταΐσω τη γάτα πάλι", "ξέχασα θα ταΐσω τη γάτα πάλι")
    assert not fires("can you feed the cat on thursday", "can you feed the cats on thursday")
    # A word replaced by one with few of its letters is not a typo, even a rare one.
    assert not fires("la machine à laver est encore en panne",
                     "la machine fd laver est encore en panne")
    # Typos inside words still match: letters changed, and no other word made.
    assert fires(code, "the netwrok went down at work")
    assert fires(code, "the network went odwn at work")
    assert fires(code, "the network wnet down at wrok")
    assert fires(code, "the network wnt dwn at work")
    assert fires(code, "the network went down att work")
    # A slip of the finger (a letter dropped or doubled, two swapped) that leaves two letters
    # or more is a typo whatever word it spells (phrase_words.SLIP_KEEPS): "teh", "he" for
    # "the", "too" for "to", "fed" for "feed", "no" for "on", "at" for "cat". The hard
    # negatives were replaced or added letters; the price is "на" for "нас" (measured in
    # docs/benchmarks-phrase.md).
    assert fires(code, "teh network went down at work")
    assert fires(code, "te network went down ta work")
    assert fires(code, "he network went down at work")
    assert fires(code, "the network went own at work")
    assert fires("I forgot to buy milk again", "I forgot too by milk again")
    assert fires("can you feed the cat on thursday", "can you fed the cat no thursday")
    assert fires("can you feed the cat on thursday", "can you feed the at on thursday")
    # A slip that leaves one letter is judged like a word: "à" (French "to") for "la",
    # "η" for "τη" are other sentences.
    assert not fires("la machine à laver est encore en panne",
                     "à machine à laver est encore en panne")
    assert not fires("ξέχασα να ταΐσω τη γάτα πάλι", "ξέχασα να ταΐσω η γάτα πάλι")
    # Any other change needs a word much rarer still (RARER_BY_CHANGED): "as" is as common as
    # "at", and "ser" (6.3) is a verb that "se" (7.1) does not become by a slip.
    assert not fires(code, "the network went down as work")
    assert not fires("se me olvidó comprar leche otra vez", "ser me olvidó comprar leche otra vez")
    assert not fires("se me olvidó comprar leche otra vez",
                     "se ser me olvidó comprar leche otra vez")
    # Spacing costs nothing, and a typo on top of it is still a typo.
    assert fires(code, "the networkwent down at work")
    assert fires(code, "the net work went down at work")
    assert fires(code, "the networkwnet down at work")
    assert fires("у нас опять сломался холодильник", "у нас опять сломлся холодильник")
    assert fires("se me olvidó comprar leche otra vez", "se me olvidó comprra leche otra vez")


def test_the_word_rule_is_for_typos_only() -> None:
    # A number of edits is the user's explicit choice: the whole allowance, anywhere.
    code = "the network went down at work"
    assert fires(code, "he network went down at work", tolerance=2)
    assert fires(code, "network went down at work", tolerance=3)
    # Transliterated (chat keys): a word may be spelt by another convention ("fir" for
    # "phir"), but not dropped.
    hindi = "मेरा नीला छाता फिर से टूट गया"
    assert fires(hindi, "mera nila chata fir se tut gya", transliterated=True)
    assert not fires(hindi, "mera nila chata fir tut gya", transliterated=True)


def test_a_lunate_sigma_reads_as_a_c() -> None:
    # Greek "ϲ" looks like a Latin "c"; NFKC would make it σ, which folds to "o".
    assert normalise("ϲan ϲat") == "can cat"
    assert fires("can you feed the cat on thursday", "ϲan уou fҽed tհe ϲat on thuгѕdαу")
    assert confusable_skeleton("ϲ") == "c"


def test_the_config_key_reaches_the_detector() -> None:
    from detectors.codes import PhraseDetector
    from watcher.core.config import Code
    from watcher.core.models import Event

    def detect(transliterated: bool) -> bool:
        code = Code(person="p", phrase=["ξέχασα να ταΐσω τη γάτα πάλι"],
                    transliterated=transliterated)
        event = Event(platform="replay", person="p", kind="message", id="1",
                      at=datetime.now(UTC), text="ksexasa na taisw th gata pali")
        return PhraseDetector(code).match(event) is not None

    assert Code(person="p", phrase=["x"]).transliterated is False
    assert detect(True) and not detect(False)


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
    "join/split": 0.95, "lookalike-any": 0.90, "misspelt": 0.90,
    # The targets. A typo that replaces a letter and makes another common word ("sat"
    # for "cat", "in" for "on") is refused: it cannot be told from the hard negatives, where
    # that word was meant (detectors/phrase.py, the word rule); slips are forgiven. Measured on
    # the benchmark (1,800 each) 96 % and 92 %, docs/benchmarks-phrase.md.
    "typo-1": 0.95, "typo-2": 0.90,
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


@settings(max_examples=200, deadline=None)
@given(_PHRASE, _ANY_TEXT, _ANY_TEXT)
def test_transliterated_matching_survives_any_text(phrase: str, before: str, after: str) -> None:
    # Hostile or odd text must never break the chat-key path, and a hit always quotes the
    # original text it came from.
    if not normalise(phrase):
        return
    matcher = PhraseMatcher([phrase], tolerance="exact", transliterated=True)
    text = f"{before} {phrase} {after}"
    hit = matcher.find(text)
    assert hit is not None and hit.distance == 0
    assert text[hit.start : hit.end] == hit.matched
    other = matcher.find(before + after)
    assert other is None or (before + after)[other.start : other.end] == other.matched


# One whole word of a code changed: code words use these letters, other words the rest, so a
# changed word is never a typo of the word it replaces (no letter in common).
_CODE_WORD = st.text("abcdefghjkm", min_size=1, max_size=9)
_OTHER_WORD = st.text("noprstuvwxyz", min_size=1, max_size=9)
_CODE = st.lists(_CODE_WORD, min_size=2, max_size=6).filter(
    lambda words: max_edits_for(" ".join(words)) > 0)


@settings(max_examples=400, deadline=None)
@given(_CODE, _OTHER_WORD, st.integers(0, 10), st.sampled_from(["replace", "add", "remove"]))
def test_a_whole_word_changed_never_matches(words: list[str], other: str, at: int, how: str
                                            ) -> None:
    changed = list(words)
    if how == "replace":
        changed[at % len(words)] = other
    elif how == "add":  # between two words: at either end the code itself is still there
        changed.insert(1 + at % (len(words) - 1), other)
    else:
        del changed[at % len(words)]
    code = " ".join(words)
    assert not fires(code, " ".join(changed))
    assert not fires(code, f"so. {' '.join(changed)} ok")


@settings(max_examples=400, deadline=None)
@given(_CODE, st.text("abcdefghjkm", min_size=6, max_size=12), st.integers(0, 10),
       st.integers(1, 10), st.sampled_from(["drop", "double", "swap", "replace"]),
       st.sampled_from("abcdefghjkm"))
def test_one_letter_typo_in_a_long_word_still_matches(
        words: list[str], long_word: str, where: int, at: int, how: str, letter: str) -> None:
    place = where % len(words)
    words = [*words[:place], long_word, *words[place:]]
    i = at % (len(long_word) - 1)
    if how == "drop":
        typed = long_word[:i] + long_word[i + 1 :]
    elif how == "double":
        typed = long_word[: i + 1] + long_word[i:]
    elif how == "swap":
        typed = long_word[:i] + long_word[i + 1] + long_word[i] + long_word[i + 2 :]
    else:
        typed = long_word[:i] + letter + long_word[i + 1 :]
    code = " ".join(words)
    text = " ".join([*words[:place], typed, *words[place + 1 :]])
    assert max_edits_for(code) > 0
    assert fires(code, f"well. {text}, ok")


# --- the word rule against real words (wordfreq is the oracle here, not detectors) ------------

# Real codes, one per language with spaces (benchmarks/corpora/phrase_chat.py has the same).
_REAL_CODES = {
    "en": "the network went down at work",
    "es": "se me olvidó comprar leche otra vez",
    "fr": "la machine à laver est encore en panne",
    "de": "unser Kühlschrank ist schon wieder kaputt",
    "pl": "mój niebieski parasol znowu się zepsuł",
    "tr": "mavi şemsiyem yine kırıldı",
    "vi": "tủ lạnh nhà tôi lại bị hỏng rồi",
    "ru": "у нас опять сломался холодильник",
    "el": "ξέχασα να ταΐσω τη γάτα πάλι",
    "ar": "نسيت شراء الحليب مرة أخرى",
    "hi": "मेरा नीला छाता फिर से टूट गया",
}


def _zipf(word: str, lang: str) -> float:
    import wordfreq

    return float(wordfreq.zipf_frequency(word, lang))


@cache
def _word_forms(lang: str) -> frozenset[str]:
    """Every word of the language from zipf 3, as the matcher compares it: normalised, with i
    and l as one letter (so Turkish "kılıdı" typed for "kırıldı" reads as "kilidi", a word)."""
    import wordfreq

    return frozenset(normalise(w).replace("l", "i")
                     for w, f in wordfreq.get_frequency_dict(lang).items() if f >= 1e-6)


@cache
def _any_word_forms() -> frozenset[str]:
    import wordfreq

    return frozenset().union(*(_word_forms(lang) for lang in wordfreq.available_languages()))


def _one_slip(meant: str, typed: str) -> bool:
    """A letter dropped, one doubled, or two neighbours swapped (written apart from
    phrase_words, which this checks)."""
    drops = {meant[:i] + meant[i + 1 :] for i in range(len(meant))}
    doubles = {meant[:i] + meant[i] + meant[i:] for i in range(len(meant))}
    swaps = {meant[:i] + meant[i + 1] + meant[i] + meant[i + 2 :] for i in range(len(meant) - 1)}
    return typed in drops | doubles | swaps


def test_preload_reads_the_word_lists_of_the_codes_scripts() -> None:
    # The lists take seconds to read: build_detectors reads them at start for the scripts of
    # the "typos" phrase codes, so that the first alarm does not wait for them.
    from detectors import phrase_words

    assert phrase_words.scripts_in(["у нас 12", "🌻"]) == {"CYRILLIC", "LATIN"}
    assert phrase_words.scripts_in(["🌻🌻", "12"]) == set()
    # A Greek code is also compared through its Latin look-alike skeleton.
    greek = phrase_words.scripts_in(["ξέχασα να ταΐσω τη γάτα πάλι"])
    assert greek == {"GREEK", "LATIN"}
    phrase_words._language.cache_clear()
    phrase_words._language_of.cache_clear()
    phrase_words.preload(greek | {"NO SUCH SCRIPT"})
    loaded = phrase_words._language.cache_info()
    assert loaded.currsize > 1
    assert fires("ξέχασα να ταΐσω τη γάτα πάλι", "ξέχασα να ταΐσω τη γάτα πλάι")
    assert not fires("ξέχασα να ταΐσω τη γάτα πάλι", "ξέχασα να ταΐσω το γάτα πάλι")
    # Judging Greek typos read no further list.
    assert phrase_words._language.cache_info().misses == loaded.misses


def _top_words(lang: str) -> list[str]:
    import wordfreq

    return [w for w in wordfreq.top_n_list(lang, 3000) if w.isalpha()]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_REAL_CODES)), st.integers(0, 10), st.data())
def test_one_common_word_for_another_never_matches(lang: str, at: int, data: st.DataObject
                                                   ) -> None:
    # Another common word of the code's language in place of one of its words, no rarer than
    # it by RARER_BY (phrase_words forgives only a word much rarer than the one it stands
    # for, as a typo): a different sentence, never a match.
    from detectors.phrase_words import RARER_BY, RARER_BY_CHANGED

    code = _REAL_CODES[lang]
    words = code.split()
    i = at % len(words)
    floor = _zipf(words[i], lang) - min(RARER_BY, RARER_BY_CHANGED)
    other = data.draw(st.sampled_from([w for w in _top_words(lang) if _zipf(w, lang) >= floor]))
    assume(normalise(other) != normalise(words[i]))
    # A slip of the finger that leaves two letters is forgiven whatever it spells (SLIP_KEEPS):
    # "fed" for "feed" is a typo here, and so, by design, is "на" for "нас".
    assume(not _one_slip(normalise(words[i]), normalise(other)) or len(normalise(other)) < 2)
    changed = " ".join([*words[:i], other, *words[i + 1 :]])
    assert not fires(code, changed)
    assert not fires(code, f"ok. {changed}!")
    assert not fires(code, changed, transliterated=True)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_REAL_CODES)), st.integers(0, 10), st.booleans(), st.data())
def test_a_whole_word_lost_or_added_never_matches(lang: str, at: int, add: bool,
                                                  data: st.DataObject) -> None:
    code = _REAL_CODES[lang]
    words = code.split()
    if add:  # between two words: at either end the code itself is still there
        other = data.draw(st.sampled_from(_top_words(lang)))
        cut = 1 + at % (len(words) - 1)
        # A word typed twice ("у у нас") still holds the code: not a word added.
        assume(normalise(other) not in (normalise(words[cut - 1]), normalise(words[cut])))
        changed = [*words[:cut], other, *words[cut:]]
    else:
        changed = [w for j, w in enumerate(words) if j != at % len(words)]
    assert not fires(code, " ".join(changed))
    # In a text (a number is a word, never a typo: "so." before "me olvidó" would be a fair
    # typo of the "se" that was dropped).
    assert not fires(code, f"12:30 {' '.join(changed)}!!")


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(_REAL_CODES)), st.integers(0, 10), st.integers(0, 20),
       st.sampled_from(["drop", "double", "swap", "replace"]), st.integers(0, 20))
def test_a_one_letter_typo_that_makes_no_word_still_matches(
        lang: str, which: int, at: int, how: str, pick: int) -> None:
    code = _REAL_CODES[lang]
    words = code.split()
    long_words = [j for j, w in enumerate(words) if len(w) >= 5]
    assume(long_words)
    j = long_words[which % len(long_words)]
    word = words[j]
    i = at % (len(word) - 1)
    if how == "drop":
        typed = word[:i] + word[i + 1 :]
    elif how == "double":
        typed = word[: i + 1] + word[i:]
    elif how == "swap":
        typed = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    else:
        letters = sorted(set(code.replace(" ", "")))
        typed = word[:i] + letters[pick % len(letters)] + word[i + 1 :]
    # A non-word: nothing in the language's lists reads the same once normalised; for a
    # replaced letter (not a slip of the finger), nothing in any language's lists
    # (phrase_words judges such a change in every language of the script).
    assume(normalise(typed) != normalise(word))
    form = normalise(typed).replace("l", "i")
    assume(form not in (_any_word_forms() if how == "replace" else _word_forms(lang)))
    text = " ".join([*words[:j], typed, *words[j + 1 :]])
    assert fires(code, f"well. {text}, ok")


def test_build_detectors_preloads_the_lists_of_typos_codes(tmp_path: Path) -> None:
    # The watcher reads the lists at start (detectors/codes.py), not on the first alarm: after
    # build_detectors, judging a typo of the Greek code reads no list.
    from detectors import phrase_words
    from detectors.codes import build_detectors
    from tests.conftest import write_config
    from watcher.core.config import load

    greek = "ξέχασα να ταΐσω τη γάτα πάλι"
    path = write_config(tmp_path, extra=f"""
        [codes.cat]
        person = "sam"
        phrase = ["{greek}"]
        playbook = "check-on-me"
        """)
    phrase_words._language.cache_clear()
    phrase_words._language_of.cache_clear()
    build_detectors(load(path, environ={}))
    loaded = phrase_words._language.cache_info()
    assert loaded.currsize > 1
    assert fires(greek, "ξέχασα να ταΐσω τη γάτα πάιλ")
    assert phrase_words._language.cache_info().misses == loaded.misses
