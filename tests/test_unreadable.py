"""An item a connector cannot read at all (the SDK refuses it, a malformed envelope) is not
only skipped: it is recorded as "could not be checked" and told to the contacts, like an
image that would not decode. Through the real client libraries and their stand-ins."""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import eventually as until
from tests.conftest import write_config
from tests.fakes.signal_api import FakeSignalApi, make_contact, text_message
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram_rig import GROUP, SAM_TG, sam_in_a_group
from watcher.app import App
from watcher.core.config import load
from watcher.core.store import Store, Unchecked
from watcher.engine.unchecked import UncheckedNotices

SAM = make_contact("+15550000005", "Sam")
CODE = "the network went down at work"
SECRET = "SENTINEL-UNREADABLE-TEXT"


async def run_until_code(app: App) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop=stop))
    try:
        await until(lambda: app.store.incidents(), "the code after the unreadable item")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await app.aclose()


async def test_an_update_ptb_cannot_read_is_recorded_and_the_code_after_it_alerts(
        tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        app = App(sam_in_a_group(tg, tmp_path), database=tmp_path / "w.db",
                  stdout=io.StringIO())
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        try:
            await tg.wait_polling(timeout=10)
            bad = tg.inject_update("message", {"text": SECRET})  # no chat, date or id
            tg.inject_message(GROUP, SAM_TG, CODE)
            await until(lambda: app.store.incidents(), "the code after the unreadable update")
            [row] = app.store.unchecked()
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await app.aclose()
    assert row["event_key"] == f"telegram:unreadable/update {bad['update_id']}"
    assert row["platform"] == "telegram" and row["person"] == ""
    assert SECRET not in str(row)


async def test_an_envelope_that_cannot_be_read_is_recorded_and_the_code_after_it_alerts(
        tmp_path: Path) -> None:
    async with FakeSignalApi("+15550000001", mode="normal") as api:
        extra = (f'[connectors.signal]\nurl = "{api.base_url}"\nnumber = "+15550000001"\n'
                 'mode = "normal"\npoll_interval = "1s"\n')
        path = write_config(tmp_path, extra=extra)
        path.write_text(path.read_text().replace(
            'name = "Sam"', f'name = "Sam"\nsignal = {{ uuid = "{SAM.uuid}" }}'))
        app = App(load(path, environ={}), database=tmp_path / "w.db", stdout=io.StringIO())
        api.inject({"sourceUuid": SAM.uuid, "timestamp": "not a number",
                    "dataMessage": {"message": SECRET}})
        api.inject(text_message(SAM, CODE))
        await run_until_code(app)
        rows = Store(tmp_path / "w.db").unchecked()
    assert [r["platform"] for r in rows] == ["signal"]
    assert SECRET not in str(rows)


def test_an_item_of_nobody_known_is_told_plainly(tmp_path: Path) -> None:
    config = load(write_config(tmp_path), environ={})
    store = Store(tmp_path / "w.db")
    at = datetime(2026, 3, 1, 14, 2, tzinfo=UTC)
    item = Unchecked(1, "telegram:unreadable/update 7", "", "telegram", at, None,
                     "the Bot API sent an update this version cannot read", at)
    text = UncheckedNotices(config, store, lambda: at).text("", [item])
    assert text.startswith("Someone in a watched chat or account posted something on "
                           "Telegram at ")
    assert "Please look at it yourself." in text
