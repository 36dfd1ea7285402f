"""`watcher audit`: how often would each code have fired on a person's ordinary history?

A code that fires on ordinary messages will one day send police to the door for nothing.
The audit runs every code over past messages and names the ones that would have fired.
It runs no playbook and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.files.replay import LineError, Position, ReplayFile
from connectors.files.telegram_export import ExportFormatError, is_export, read_export
from detectors.codes import Filtered
from watcher.core.config import Config
from watcher.core.models import Event
from watcher.engine.engine import detect


@dataclass
class CodeAudit:
    code: str
    fired: list[tuple[str, str]] = field(default_factory=list)  # (event id, matched span)
    kind: str = "phrase"  # phrase, image, reaction or checkin: what advice fits


# What to do about a code that fires on ordinary history depends on what kind of code it is.
ADVICE = {
    "phrase": "Choose a rarer phrase, or list the innocent text under `not`",
    "image": "Choose a rarer photo (one the person would never post otherwise)",
    "reaction": "Agree on a message or post the person would not otherwise react to, or a "
                "rarer emoji",
    "checkin": "Choose a rarer check-in phrase",
}


@dataclass
class AuditResult:
    events: int = 0
    codes: dict[str, CodeAudit] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def _export_owner_problem(config: Config, path: Path, person: str | None) -> str | None:
    """An export is attributed by Telegram user id only: say so when it is missing."""
    whose = person or (next(iter(config.people)) if len(config.people) == 1 else None)
    if whose is not None and config.people[whose].telegram is None:
        name = config.people[whose].name
        return (f"{path}: a Telegram export holds everyone's messages, and "
                f"people.{whose}.telegram.user_id is not set, so {name}'s messages cannot be "
                f"told from the others'. Add it ({name}'s messages in the export have "
                f'from_id "user" followed by it) and run the audit again')
    if whose is None and not any(p.telegram for p in config.people.values()):
        return (f"{path}: a Telegram export holds everyone's messages, and nobody in the "
                "config has telegram.user_id set, so no message can be attributed; add "
                "people.KEY.telegram.user_id")
    return None


def history(config: Config, paths: Iterable[Path], person: str | None,
            result: AuditResult) -> Iterable[Event]:
    by_user = {p.telegram.user_id: key for key, p in config.people.items() if p.telegram}
    for path in paths:
        if is_export(path):
            events = read_export(path, by_user)  # not an export at all: said first
            problem = _export_owner_problem(config, path, person)
            if problem is not None:
                raise ExportFormatError(problem)
            yield from events
            continue
        for item, _ in ReplayFile(path).read(Position()):
            if isinstance(item, LineError):
                result.problems.append(str(item))
            else:
                yield item


def audit(config: Config, detectors: Mapping[str, Filtered], paths: Iterable[Path],
          person: str | None = None) -> AuditResult:
    result = AuditResult(codes={
        name: CodeAudit(name, kind=next(iter(config.codes[name].detector_kinds()), "phrase")
                        if name in config.codes else "phrase")
        for name in detectors})
    for event in history(config, paths, person, result):
        if person is not None and event.person != person:
            continue
        result.events += 1
        matches, failures = detect(detectors, event)
        result.failures.extend(f"{event.id}: {f}" for f in failures)
        for match in matches:
            span = str(match.evidence.get("matched") or match.evidence.get("reference") or "")
            result.codes[match.code].fired.append((event.id, span))
    return result


def report(result: AuditResult) -> str:
    lines = [f"Audited {result.events} past event(s)."]
    for name, code in sorted(result.codes.items()):
        if not code.fired:
            lines.append(f"  {name}: would not have fired. Good.")
            continue
        lines.append(f"  WARNING {name}: would have fired {len(code.fired)} time(s) on "
                     "ordinary history, so it is likely to cause false alarms. "
                     f"{ADVICE.get(code.kind, ADVICE['phrase'])}:")
        lines.extend(f"    - {event_id}: \"{span}\"" for event_id, span in code.fired[:20])
        if len(code.fired) > 20:
            lines.append(f"    ... and {len(code.fired) - 20} more")
    return "\n".join(lines)
