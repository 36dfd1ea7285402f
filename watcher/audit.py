"""`watcher audit`: how often would each code have fired on a person's ordinary history?

A code that fires on ordinary messages will one day send police to the door for nothing.
The audit runs every code over past messages and names the ones that would have fired.
It runs no playbook and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.replay import LineError, Position, ReplayFile
from connectors.telegram_export import is_export, read_export
from detectors.codes import Filtered
from watcher.config import Config
from watcher.engine import detect
from watcher.models import Event


@dataclass
class CodeAudit:
    code: str
    fired: list[tuple[str, str]] = field(default_factory=list)  # (event id, matched span)


@dataclass
class AuditResult:
    events: int = 0
    codes: dict[str, CodeAudit] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def history(config: Config, paths: Iterable[Path], person: str | None,
            result: AuditResult) -> Iterable[Event]:
    by_user = {p.telegram.user_id: key for key, p in config.people.items() if p.telegram}
    default = person or (next(iter(config.people)) if len(config.people) == 1 else None)
    if default is not None and config.people[default].telegram is not None:
        default = None  # their user id is known: others' messages in an export are not theirs
    for path in paths:
        if is_export(path):
            yield from read_export(path, by_user, default)
            continue
        for item, _ in ReplayFile(path).read(Position()):
            if isinstance(item, LineError):
                result.problems.append(str(item))
            else:
                yield item


def audit(config: Config, detectors: Mapping[str, Filtered], paths: Iterable[Path],
          person: str | None = None) -> AuditResult:
    result = AuditResult(codes={name: CodeAudit(name) for name in detectors})
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
                     "ordinary history, so it is likely to cause false alarms. Choose a rarer "
                     "phrase or photo, or list the innocent text under `not`:")
        lines.extend(f"    - {event_id}: \"{span}\"" for event_id, span in code.fired[:20])
        if len(code.fired) > 20:
            lines.append(f"    ... and {len(code.fired) - 20} more")
    return "\n".join(lines)
