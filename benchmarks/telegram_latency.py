"""Telegram end to end: update appears at the Bot API stand-in -> alert arrives there.

200 code uses, one at a time, through the real App (PTB, storage, detection, playbook,
delivery) against tests/fakes/telegram_api.py on loopback; beside it, the floor: a bare PTB
bot making the same calls (getUpdates, then sendMessage) with no detection or storage.
Also the idle CPU of the connected watcher. Targets: p50 <= 300 ms, p99 <= 1 s, idle < 1 %.
Run: .venv/bin/python benchmarks/telegram_latency.py [--events 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from telegram import Bot  # noqa: E402
from telegram.request import HTTPXRequest  # noqa: E402

from benchmarks.common import header, percentile  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from watcher.app import App  # noqa: E402
from watcher.core.config import load  # noqa: E402

SAM, ALEX, GROUP = 5001, 5002, -1001234567890
CONFIG = """
[watcher]
database = "bench.db"
[people.sam]
name = "Sam"
telegram = { user_id = 5001 }
[contacts.alex]
name = "Alex"
telegram = { chat_id = 5002 }
[codes.code]
person = "sam"
phrase = ["the network went down at work"]
playbook = "p"
[playbooks.p]
steps = [ { notify = ["alex"], message = "{person} used the code ({incident})" } ]
[connectors.telegram]
token = { env = "TG" }
api_url = "URL"
chats = [-1001234567890]
poll_timeout = 20
"""


def populate(tg: FakeTelegram) -> None:
    tg.add_user(SAM, "Sam")
    tg.add_user(ALEX, "Alex")
    tg.add_chat(GROUP, "supergroup", "Family")
    tg.set_bot_member(GROUP, "administrator")


async def one(tg: FakeTelegram, n: int) -> float:
    before = len(tg.sent_messages(ALEX))
    update = tg.inject_message(GROUP, SAM, f"argh the network went down at work ({n})")
    queued = tg.updates[update["update_id"]]
    call = await tg.wait_for(lambda: tg.calls("sendMessage")[before:] or None, timeout=10)
    return (call[0].at - queued.available_at) * 1000


async def watcher_run(events: int) -> tuple[list[float], float]:
    async with FakeTelegram() as tg:
        populate(tg)
        folder = Path(tempfile.mkdtemp())
        (folder / "config.toml").write_text(CONFIG.replace("URL", tg.url))
        app = App(load(folder / "config.toml", environ={"TG": tg.token}), stdout=io.StringIO())
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        await tg.wait_polling(timeout=10)
        latencies = [await one(tg, n) for n in range(events)]
        await asyncio.sleep(2)
        cpu0, wall0 = time.process_time(), time.monotonic()
        await asyncio.sleep(30)
        idle = (time.process_time() - cpu0) / (time.monotonic() - wall0) * 100
        stop.set()
        await task
        await app.aclose()
        return latencies, idle


async def floor_run(events: int) -> list[float]:
    """The same calls with a bare PTB bot: poll, then send; no detection, no storage."""
    async with FakeTelegram() as tg:
        populate(tg)
        bot = Bot(tg.token, base_url=f"{tg.url}/bot", base_file_url=f"{tg.url}/file/bot",
                  request=HTTPXRequest(), get_updates_request=HTTPXRequest(read_timeout=30))
        await bot.initialize()
        stop = asyncio.Event()

        async def loop() -> None:
            offset = 0
            while not stop.is_set():
                updates = await bot.get_updates(offset=offset, timeout=20,
                                                allowed_updates=["message"])
                for update in updates:
                    offset = update.update_id + 1
                    await bot.send_message(ALEX, "Sam used the code")

        task = asyncio.create_task(loop())
        await tg.wait_polling(timeout=10)
        latencies = [await one(tg, n) for n in range(events)]
        stop.set()
        task.cancel()
        await bot.shutdown()
        return latencies


async def main(events: int) -> None:
    print(header(f"Telegram: update -> alert, {events} code uses on loopback"))
    ours, idle = await watcher_run(events)
    floor = await floor_run(events)
    for name, values in (("watcher", ours), ("floor (bare PTB)", floor)):
        print(f"{name:>17}: p50 {percentile(values, 50):6.1f} ms  p99 "
              f"{percentile(values, 99):6.1f} ms  max {max(values):6.1f} ms")
    print(f"ratio watcher/floor: p50 {percentile(ours, 50) / percentile(floor, 50):.2f}x  "
          f"p99 {percentile(ours, 99) / percentile(floor, 99):.2f}x (goal <= 1.5x)")
    print(f"idle CPU, connected and long-polling, over 30 s: {idle:.2f} % (target < 1)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    asyncio.run(main(parser.parse_args().events))
