"""What the CLI's commands do, as library functions: the CLI only parses and prints.

`watcher drill`, `watcher ack` / `standdown` and `watcher replay` run here; each returns what
happened (a report, an outcome, the matches of each line) and raises typed errors, so a test
or another front end can call them the same way the command does.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from connectors.files.replay import LineError, Position, ReplayFile
from detectors.codes import Filtered
from playbooks import actions
from playbooks.drills import report, start_drill
from watcher.app import App
from watcher.core.clock import utcnow
from watcher.core.config import Config
from watcher.core.config_schema import OPERATOR
from watcher.core.models import IncidentState, Match
from watcher.engine.engine import detect


async def run_drill(config: Config, database: Path, code: str, timeout: float,
                    here: bool) -> str:
    """The drill's report (see `drill`)."""
    text, _ = await drill(config, database, code, timeout, here)
    return text


async def drill(config: Config, database: Path, code: str, timeout: float,
                here: bool) -> tuple[str, bool]:
    """Start a drill; run it in this process unless a running watcher owns the database.
    Return the report and whether someone acknowledged."""
    # The person running a drill chose to see the console alerts here (ConsoleChannel).
    app = App(config, database=database, stdout=sys.stdout, connectors=None if here else [],
              web=False)
    incident = start_drill(config, app.store, code, utcnow())
    stop = asyncio.Event()
    runner = asyncio.create_task(app.run(stop=stop)) if here else None
    deadline = asyncio.get_running_loop().time() + timeout
    try:
        while asyncio.get_running_loop().time() < deadline and drill_running(app, incident):
            await asyncio.sleep(0.2)
        timed_out = drill_running(app, incident)
        found = app.store.incident(incident)
        acknowledged = app.store.acked_by(incident) is not None
        if found is not None and found.state == IncidentState.OPEN:
            with app.store.transaction():  # never leave a drill escalating after we leave
                app.store.set_incident_state(incident, IncidentState.RESOLVED, utcnow())
        ending = None if acknowledged else (
            f"Nobody acknowledged within {timeout:.0f} s; the drill was ended." if timed_out
            else "Nobody acknowledged; the playbook ran to its end.")
        text = report(app.store, incident).text(config, ending)
    finally:
        stop.set()
        if runner is not None:
            await runner
        await app.aclose()
    return text, acknowledged


def drill_running(app: App, incident: int) -> bool:
    """A drill goes on until someone acknowledges it or its playbook ends: the last step
    done and every message delivered (a playbook without wait_ack ends there)."""
    found = app.store.incident(incident)
    if found is None or found.state != IncidentState.OPEN:
        return False
    return app.store.run_active(incident) or app.store.pending_deliveries(incident) > 0


@dataclass(frozen=True)
class OperatorResult:
    text: str  # the outcome, as the operator reads it
    refused: bool  # no such alert, or it had already ended
    delivered_by: str  # "nobody" (nothing to tell), "watcher" (a running one), "here"
    waiting: int = 0  # messages still waiting when delivered here


async def operator_action(config: Config, database: Path, command: str, incident: int,
                          timeout: float, here: bool,
                          announce: Callable[[str], None] = lambda text: None
                          ) -> OperatorResult:
    """Act as the operator; with no watcher running (`here`), deliver the notices too.
    `announce` hears the outcome as soon as it is stored, before any notice goes out."""
    # The operator at the terminal sees the console notices, as with a drill.
    app = App(config, database=database, stdout=sys.stdout, connectors=None if here else [],
              web=False)
    try:
        names = {key: c.name for key, c in config.contacts.items()}
        now = utcnow()
        outcome = (actions.acknowledge(app.store, incident, OPERATOR, "cli", now, names)
                   if command == "ack" else
                   actions.stand_down(app.store, incident, OPERATOR, now))
        announce(outcome.text)
        if not outcome.known or outcome.ended:
            return OperatorResult(outcome.text, True, "nobody")
        if not outcome.done:
            return OperatorResult(outcome.text, False, "nobody")
        if not here:
            return OperatorResult(outcome.text, False, "watcher")
        left = await deliver_notices(app, incident, timeout)
        return OperatorResult(outcome.text, False, "here", left)
    finally:
        await app.aclose()


async def deliver_notices(app: App, incident: int, timeout: float) -> int:
    """Run the watcher until the incident's notices are delivered (or `timeout`); return how
    many messages about it are still waiting."""
    stop = asyncio.Event()
    runner = asyncio.create_task(app.run(stop=stop))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def waiting() -> bool:
        return bool(app.store.pending_notices()) or app.store.pending_deliveries(incident) > 0

    try:
        while loop.time() < deadline and not runner.done() and waiting():
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await runner
    return app.store.pending_deliveries(incident)




@dataclass(frozen=True)
class ReplayLine:
    """One line of a replay file run through the detectors, without storing anything."""

    line: int
    error: LineError | None = None
    matches: list[Match] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def dry_run(config: Config, detectors: Mapping[str, Filtered], path: Path
            ) -> Iterator[ReplayLine]:
    """`watcher replay`: each line's matches (or why it could not be read)."""
    for item, position in ReplayFile(path, config.people).read(Position()):
        if isinstance(item, LineError):
            yield ReplayLine(position.line, error=item)
            continue
        matches, failures = detect(detectors, item)
        yield ReplayLine(position.line, matches=list(matches), failures=[str(f) for f in failures])
