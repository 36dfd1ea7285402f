"""Meeting the survivor: try a candidate phrase against the history files loaded
([web] history) before it goes into the config, with `watcher audit`'s engine.

A phrase that occurs in ordinary history will one day fire by accident; the page says so
plainly ("too common: 'ok' occurs 212 times") and shows the TOML to paste when it is rare.
The candidate is never stored, logged or put in a URL (it is the survivor's secret): it
arrives in a POST body and leaves in that one answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from detectors.codes import PhraseDetector
from watcher.core.config import Code, Config
from watcher.core.models import Event
from watcher.engine.audit import AuditResult, history

MAX_PHRASE = 200


@dataclass(frozen=True)
class Trial:
    phrase: str
    person: str
    messages: int
    count: int
    example: str
    verdict: str
    good: bool
    toml: str


def load_history(config: Config) -> tuple[list[Event], list[str]]:
    """Every event of the [web] history files, and the problems met reading them."""
    if config.web is None or not config.web.history:
        return [], []
    result = AuditResult()
    paths = [config.resolve(p) for p in config.web.history]
    missing = [f"{p}: history file not found" for p in paths if not p.is_file()]
    try:
        events = list(history(config, [p for p in paths if p.is_file()], None, result))
    except Exception as exc:  # an unreadable export must not break the page
        return [], [*missing, f"history could not be read ({type(exc).__name__})"]
    return events, missing + result.problems[:5]


def trial(config: Config, events: list[Event], phrase: str, person: str,
          tolerance: str) -> Trial:
    code = Code(person=person, phrase=[phrase],
                tolerance="exact" if tolerance == "exact" else "typos")
    detector = PhraseDetector(code)
    theirs = [e for e in events if e.person == person]
    spans: Counter[str] = Counter()
    for event in theirs:
        hit = detector.match(event)
        if hit is not None:
            spans[str(hit.get("matched", "")).lower()] += 1
    count = sum(spans.values())
    if count:
        example = spans.most_common(1)[0][0]
        verdict = (f"too common: '{example}' occurs {count} time{'s' if count > 1 else ''} "
                   f"in {len(theirs)} past messages; it would fire by accident. Choose a "
                   "rarer phrase.")
    else:
        example = ""
        verdict = (f"not found in {len(theirs)} past messages: a good candidate. Rehearse it "
                   "with a drill once it is in the config.")
    snippet = (f"[codes.NEW-NAME]\nperson = {toml_string(person)}\n"
               f"phrase = [{toml_string(phrase)}]\n"
               + ('tolerance = "exact"\n' if tolerance == "exact" else "")
               + 'playbook = "PLAYBOOK"\n')
    return Trial(phrase, person, len(theirs), count, example, verdict, count == 0, snippet)


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character (DEL too, which
    JSON leaves as it is and TOML refuses) escaped."""
    out = []
    for ch in text:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def history_names(config: Config) -> list[str]:
    return [Path(p).name for p in (config.web.history if config.web else [])]
