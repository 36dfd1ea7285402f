"""Losing access while the watch runs: each is a blind watch the contacts hear of at once.

The real App, connectors and client libraries against the stand-ins (the Bot API stand-in,
the signal-cli-rest-api stand-in, the real local PDS): the watch is running and has alerted
on a code; then the abuser (or a service) takes access away:
- Telegram: the bot is banned from the watched group by another member;
- Signal: the watcher's linked device is removed from the phone (Signal then refuses
  signal-cli's login), or the account is unregistered;
- Bluesky: the survivor's account is deactivated.
The contacts must get "WATCH BLIND" with the specific problem, without the stale_after grace
(15 minutes by default, far beyond these tests' time limit: an alert here can only come from
the lost-access path), on a channel that still works; when access returns, "Watch
restored", and a code used afterwards alerts again. Nothing is ever written to a watched
chat or to the survivor (SILENT).
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import eventually as until
from tests.conftest import write_config
from tests.fakes.pds import LocalPds
from tests.fakes.signal_api import FakeSignalApi, text_message
from tests.fakes.telegram_api import FakeTelegram
from tests.reliability import test_signal_faults as signal_faults
from tests.reliability.harness import CODE_TEXT, alert_numbers, telegram_config
from tests.reliability.test_bluesky_faults import config_text as bluesky_config
from watcher.app import App
from watcher.core.config import load, parse_duration

pytestmark = [pytest.mark.timeout(90),
              pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")]

SAM, ALEX, MUM = 5001, 5002, 5004
GROUP = -1001234567890
TEST_LIMIT = 90.0


class Running:
    """The App in the background, as `watcher run` runs it."""

    def __init__(self, config_text: str, folder: Path, environ: dict[str, str]) -> None:
        self.config = load(write_config(folder, text=config_text), environ=environ)
        # The alert can only come from the lost-access path if the grace is longer.
        assert parse_duration(self.config.watcher.stale_after).total_seconds() > TEST_LIMIT
        self.out = io.StringIO()
        self.app = App(self.config, database=folder / "w.db", stdout=self.out)
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(self.app.run(stop=self.stop_event))

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.app.store.deliveries()
                if d["kind"] == kind and d["status"] == "sent"]

    def alerts(self) -> set[int]:
        """The incidents whose alert reached a contact (on any of their channels)."""
        return set(alert_numbers(d["text"] for d in self.sent("alert")))

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)
        await self.app.aclose()


async def blind_then_restored(run: Running, problem: str, lose: Callable[[], Any],
                              restore: Callable[[], Any], use_code: Callable[[], Any]) -> None:
    """The shared script: an alert, access lost, blind told, access back, restored told,
    and the next code alerts."""
    await use_code()
    await until(lambda: len(run.alerts()) == 1, "the first alert")
    await lose()
    blind = await until(lambda: run.sent("blind"), "WATCH BLIND delivered")
    assert problem in blind[0]["text"] and "What to do" in blind[0]["text"]
    assert len(run.sent("blind")) == 1  # once, not once per poll
    await restore()
    await until(lambda: run.sent("recovered"), "Watch restored delivered")
    await use_code()
    await until(lambda: len(run.alerts()) == 2, "a code after the return alerts")


async def test_bot_removed_from_the_watched_group_while_running(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        for user, name in ((SAM, "Sam"), (ALEX, "Alex"), (MUM, "Mum")):
            tg.add_user(user, name)
        tg.add_chat(GROUP, "supergroup", "Family")
        tg.set_bot_member(GROUP, "administrator")
        run = Running(telegram_config(tg.url, 2), tmp_path, {"TG_TOKEN": tg.token})
        try:
            await tg.wait_polling(timeout=10)

            async def code() -> None:
                tg.inject_message(GROUP, SAM, CODE_TEXT)

            async def lose() -> None:
                tg.change_bot_member(GROUP, "kicked", by=MUM)

            async def restore() -> None:
                tg.change_bot_member(GROUP, "administrator", by=MUM)

            await blind_then_restored(run, "the bot was banned from Family", lose, restore,
                                      code)
            told = [m.get("text", "") for m in tg.sent_messages(ALEX)]
            assert any("WATCH BLIND" in t for t in told)  # on Telegram itself
            assert any("Watch restored" in t for t in told)
        finally:
            await run.stop()
        assert tg.writes_to(GROUP) == [] and tg.writes_to(SAM) == []  # SILENT


@pytest.mark.parametrize("how", ["unlinked", "unregistered"])
async def test_signal_account_lost_while_running(tmp_path: Path, how: str) -> None:
    """Signal itself can no longer carry the alert: Alex hears on the console channel."""
    text = signal_faults.config_text("URL").replace(
        'name = "Alex"\n', 'name = "Alex"\nconsole = true\n')
    async with FakeSignalApi(signal_faults.ACCOUNT, mode="normal") as api:
        run = Running(text.replace("URL", api.base_url), tmp_path, {})
        try:
            async def code() -> None:
                api.inject(text_message(signal_faults.SAM, CODE_TEXT))

            async def lose() -> None:
                api.lose_account(how)

            async def restore() -> None:
                api.restore_account()

            problem = "linked device was removed" if how == "unlinked" else "not registered"
            await blind_then_restored(run, problem, lose, restore, code)
            assert "WATCH BLIND: Sam's Signal" in run.out.getvalue()
            assert signal_faults.ACCOUNT not in run.out.getvalue()
        finally:
            await run.stop()
        assert not {signal_faults.SAM.number, signal_faults.SAM.uuid} & api.sent_to()


@pytest.mark.pds
@pytest.mark.timeout(120)
async def test_bluesky_account_deactivated_while_running(tmp_path: Path,
                                                          pds: LocalPds) -> None:
    sam, _did, handle = await asyncio.to_thread(pds.new_account, "sam")
    run = Running(bluesky_config(pds, handle), tmp_path, {})
    try:
        await until(lambda: run.app.store.cursor(f"bluesky:{_did}:app.bsky.feed.post")
                    is not None, "the first look")

        async def code() -> None:
            await asyncio.to_thread(sam.send_post, CODE_TEXT)

        async def lose() -> None:
            await asyncio.to_thread(sam.com.atproto.server.deactivate_account, {})

        async def restore() -> None:
            await asyncio.to_thread(sam.com.atproto.server.activate_account)

        await blind_then_restored(run, "account was deactivated", lose, restore, code)
        assert "WATCH BLIND: Sam's Bluesky" in run.out.getvalue()
    finally:
        await run.stop()
