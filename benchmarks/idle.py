"""Idle: CPU and memory with every connector connected and nothing happening.

Telegram (long polling the Bot API stand-in), Signal (json-rpc websocket to the
signal-cli-rest-api stand-in) and Bluesky (a real local PDS, polled, with the firehose
stream on) all connected; nothing is posted. Targets: < 1 % CPU, < 250 MB RSS.
Run: bash scripts/install-pds.sh && .venv/bin/python benchmarks/idle.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import header  # noqa: E402
from tests.fakes.pds import LocalPds  # noqa: E402
from tests.fakes.signal_api import FakeSignalApi, make_contact  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from watcher.app import App  # noqa: E402
from watcher.core.config import load  # noqa: E402

SAM_SIGNAL = make_contact("+15550000005", "Sam")
CONFIG = """
[watcher]
database = "idle.db"
[people.sam]
name = "Sam"
telegram = {{ user_id = 5001 }}
signal = {{ uuid = "{uuid}" }}
bluesky = {{ handle = "{handle}" }}
[contacts.alex]
name = "Alex"
telegram = {{ chat_id = 5002 }}
[codes.code]
person = "sam"
phrase = ["the network went down at work"]
playbook = "p"
[codes.flower]
person = "sam"
image = ["{flower}"]
playbook = "p"
[playbooks.p]
steps = [ {{ notify = ["alex"], message = "{{person}} used {{code}}" }} ]
[connectors.telegram]
token = {{ env = "TG" }}
api_url = "{tg}"
[connectors.signal]
url = "{signal}"
number = "+15550000001"
mode = "json-rpc"
[connectors.bluesky]
service = "{pds}"
plc = "{plc}"
poll_interval = "60s"
stream = "firehose"
"""


def rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


async def main(seconds: int) -> None:
    print(header(f"Idle: every connector connected, nothing happening, {seconds} s"))
    with LocalPds() as pds:
        _, _, handle = pds.new_account("survivor")
        async with FakeTelegram() as tg, FakeSignalApi("+15550000001", mode="json-rpc") as sig:
            tg.add_user(5001, "Sam")
            tg.add_user(5002, "Alex")
            folder = Path(tempfile.mkdtemp())
            (folder / "config.toml").write_text(CONFIG.format(
                uuid=SAM_SIGNAL.uuid, handle=handle, tg=tg.url, signal=sig.base_url,
                pds=pds.pds_url, plc=pds.plc_url,
                flower=ROOT / "examples" / "codes" / "flower.jpg"))
            app = App(load(folder / "config.toml", environ={"TG": tg.token}),
                      stdout=io.StringIO())
            stop = asyncio.Event()
            task = asyncio.create_task(app.run(stop=stop))
            await tg.wait_polling(timeout=20)
            await sig.wait_for_listeners(timeout=20)
            await asyncio.sleep(5)  # let start-up work (first polls, identity) finish
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0) * 100
            health = {r["feed"]: bool(r["last_ok"]) for r in app.store.health()}
            print(f"feeds read successfully: {health}")
            print(f"idle CPU: {cpu:.2f} % of one core (target < 1)")
            print(f"RSS now: {rss_mb():.0f} MB; peak: "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB "
                  "(target < 250; the PDS and stand-ins run in other processes or tasks: the "
                  "stand-ins share this process, so this is an upper bound)")
            stop.set()
            await task
            await app.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=60)
    asyncio.run(main(parser.parse_args().seconds))
