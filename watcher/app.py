"""Wiring: config, store, detectors, engine, connectors and playbooks in one asyncio loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from connectors.replay import LineError, Position, ReplayFile
from detectors.codes import build_detectors
from playbooks.channels import AppriseChannel, Channel, ConsoleChannel
from playbooks.runner import PlaybookRunner
from watcher.config import Config, parse_duration
from watcher.engine import Engine
from watcher.models import Event, utcnow
from watcher.store import Store

log = logging.getLogger("watcher.app")


def unknown_person(config: Config, event: Event) -> str | None:
    if event.person in config.people:
        return None
    known = ", ".join(sorted(config.people)) or "none"
    return f'no person "{event.person}" in the config; known people: {known}'


class App:
    def __init__(self, config: Config, database: Path | None = None,
                 stdout: TextIO | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.store = Store(database or config.database)
        detectors, self.warnings = build_detectors(config)
        self.engine = Engine(config, self.store, detectors, clock)
        self.channels: dict[str, Channel] = {
            "console": ConsoleChannel(config, stdout),
            "apprise": AppriseChannel(config, config.secrets),
        }
        self.runner = PlaybookRunner(config, self.store, self.channels, clock)
        replay = config.connectors.replay
        files = replay.files if replay else []
        self.replay_files = [ReplayFile(config.resolve(f)) for f in files]
        self.bad_lines: list[LineError] = []

    async def poll_replay(self) -> int:
        """Read every whole line added to the replay files since their stored cursors."""
        count = 0
        for source in self.replay_files:
            start = Position.decode(self.store.cursor(source.feed))
            for item, position in source.read(start):
                cursor = (source.feed, position.encode())
                if isinstance(item, Event) and (problem := unknown_person(self.config, item)):
                    item = LineError(source.path, position.line, problem)
                if isinstance(item, LineError):
                    self.bad_lines.append(item)
                    log.error("skipped bad event line %s", item)
                    with self.store.transaction():
                        self.store.set_cursor(*cursor, utcnow())
                    continue
                await self.engine.ingest(item, cursor)
                count += 1
        return count

    async def run(self, once: bool = False, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        tick = parse_duration(self.config.watcher.tick).total_seconds() or 1.0
        log.info("watching %d code(s) for %d person(s)", len(self.config.codes),
                 len(self.config.people))
        while not stop.is_set():
            await self.poll_replay()
            while await self.runner.tick():
                # Keep going while steps fall due at once (notify, then the next notify).
                pass
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
        log.info("stopped")

    def close(self) -> None:
        self.store.close()
