"""Is a contact's message an acknowledgement? Only when nothing else can be meant.

An ack stops the escalation, so a false one is worse than none: the contact who meant
"I cannot go" must never end up recorded as handling it. A text acknowledges only when it
is, wholly, one of a few ack phrases or ack emoji, after trimming punctuation and spacing.
A question, a negation or anything longer is never an ack, whatever else it contains. "k"
is not an ack word: it is typed by accident, and as a curt reply to anything.
"""

from __future__ import annotations

import unicodedata

ACK_WORDS = frozenset({"ok", "okay", "on it", "im on it", "i am on it", "got it", "yes",
                       "handling it", "ack", "acknowledged", "on my way"})
MAX_ACK_WORDS = max(len(w.split()) for w in ACK_WORDS)
# Words that turn a sentence around or hand the job on ("someone else"); none is in an ack
# phrase, and a text holding one is refused before phrases are compared (defence in depth,
# should ACK_WORDS ever grow).
NEGATIONS = frozenset({"no", "not", "nope", "nah", "cannot", "cant", "can", "dont", "wont",
                       "isnt", "never", "unable", "nobody", "neither", "nor", "without",
                       "but", "someone", "else"})
QUESTION_MARKS = frozenset("?¿؟⸮;？")  # NFKC turns the Greek question mark into ";"
ACK_EMOJI = frozenset({"👍", "👌", "✅", "🆗", "✔", "☑"})
_EMOJI_NOISE = frozenset({"\ufe0f", "\ufe0e", *map(chr, range(0x1F3FB, 0x1F400))})
_APOSTROPHES = str.maketrans("", "", "'’‘`ʼ")


def clean(text: str) -> str:
    """NFKC, without invisible format characters (zero-width, bidi controls), folded."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if unicodedata.category(c) != "Cf")


def words(text: str) -> list[str]:
    """The words of a text, punctuation counted as spacing; any other symbol is kept (an
    "ok 👎" is not an "ok")."""
    bare = clean(text).translate(_APOSTROPHES)
    spaced = "".join(" " if unicodedata.category(c).startswith(("P", "Z", "C")) else c
                     for c in bare)
    return spaced.split()


def is_ack_emoji(text: str) -> bool:
    """One to three ack emoji and nothing else (skin tones and variation selectors aside)."""
    kept = [c for c in text if c not in _EMOJI_NOISE and not c.isspace()]
    return 0 < len(kept) <= 3 and all(c in ACK_EMOJI for c in kept)


def is_ack_text(text: str) -> bool:
    if any(c in QUESTION_MARKS for c in clean(text)):
        return False
    if is_ack_emoji(text):
        return True
    found = words(text)
    if not found or len(found) > MAX_ACK_WORDS or NEGATIONS.intersection(found):
        return False
    return " ".join(found) in ACK_WORDS
