"""The survivor's ordinary Signal messages are kept only while they are handled.

Normal-mode receive acknowledges what it returns, so each batch is journalled in the store
before it is handled (at-least-once). That journal holds message text: once it is empty the
row is deleted and the WAL, which held every earlier version of it, checkpointed and
truncated. Checked on the bytes of the database, -wal and -shm files while the watcher is
still running, i.e. what a crash or a seized disk would leave.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.signal.connector import INBOX
from tests.conftest import eventually as until
from tests.fakes.signal_api import FakeSignalApi, text_message
from tests.test_signal_connector import PHRASE, SAM, api, running

__all__ = ["api"]  # the stand-in fixture, shared with the connector tests

pytestmark = pytest.mark.timeout(30)


def disk(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, db.with_name(db.name + "-wal"),
                                               db.with_name(db.name + "-shm")) if p.exists())


def spellings(text: str) -> list[bytes]:
    return [text.encode(), json.dumps(text).encode(), json.dumps(text, ensure_ascii=False)
            .encode()]


async def test_ordinary_messages_leave_no_copy_on_disk(tmp_path: Path,
                                                       api: FakeSignalApi) -> None:
    ordinary = [f"dinner at {n} then the school run, love you SENTINEL-{n} ✨" for n in range(5)]
    for text in ordinary:  # one batch of five, journalled and shrunk five times
        api.inject(text_message(SAM, text))
    api.inject(text_message(SAM, PHRASE))  # and a code, whose matched words are evidence
    rig = await running(tmp_path, api)
    try:
        await until(lambda: rig.incidents("network-down"), "the code")
        await until(lambda: rig.app.store.cursor(INBOX) in (None, "[]"), "the journal emptied")
        data = disk(rig.db)  # the watcher is still running: this is what a crash leaves
        for text in ordinary:
            for spelling in spellings(text):
                assert spelling not in data, text
        assert b"SENTINEL" not in data
        assert b"the network went down at work" in data  # the evidence is kept, on purpose
    finally:
        await rig.stop()
