"""A full disk or a read-only database: stop taking events, say why, resume when fixed."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from tests.conftest import eventually as until
from tests.conftest import write_config
from watcher.app import App
from watcher.core.config import load


def line(n: int, text: str) -> str:
    return json.dumps({"person": "sam", "id": f"m{n}", "at": "2026-11-22T14:00:00Z",
                       "text": text}) + "\n"



async def scenario(tmp_path: Path, break_db: str, fix_db: str, reason: str) -> None:
    config = write_config(tmp_path)
    feed = tmp_path / "feed.jsonl"
    feed.write_text(line(0, "hello"))
    out = io.StringIO()
    app = App(load(config, environ={}), stdout=out)
    app.probe_every = 0.2
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    await until(lambda: app.store.seen("replay:m0"))
    app.store.conn.execute(break_db)
    with feed.open("a") as handle:
        # Enough events to need new pages, whatever free space the file still had.
        handle.write(line(1, "the network went down at work")
                     + "".join(line(n, "ordinary " * 40) for n in range(2, 400)))
    await until(lambda: out.getvalue().count("WATCHER STOPPED") == 2)  # Alex and Jo
    text = out.getvalue()
    assert f"its database cannot be written (the database cannot be written: {reason}" in text
    assert "ALERT to Alex (console channel)\nSam used" not in text  # nothing half-processed
    app.store.conn.execute(fix_db)
    await until(lambda: "Watcher resumed" in out.getvalue())
    await until(lambda: "Sam used the 'network-down' code" in out.getvalue())
    assert app.store.seen("replay:m1")
    stop.set()
    await asyncio.wait_for(task, 10)
    await app.aclose()


async def test_full_disk(tmp_path: Path) -> None:
    # SQLite's own limit on the file size gives the same SQLITE_FULL error as a full disk.
    conn_pages = "PRAGMA max_page_count = 1"
    await scenario(tmp_path, conn_pages, "PRAGMA max_page_count = 1073741823",
                   "database or disk is full")


async def test_read_only_database(tmp_path: Path) -> None:
    await scenario(tmp_path, "PRAGMA query_only = 1", "PRAGMA query_only = 0",
                   "attempt to write a readonly database")
