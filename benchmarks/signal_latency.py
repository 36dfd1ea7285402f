"""Signal end to end: a message appears at the signal-cli-rest-api stand-in -> alert sent.

200 code uses one at a time through the real App against tests/fakes/signal_api.py on
loopback, in json-rpc mode (websocket) and normal mode (polling); beside each, the floor: a
bare client (connectors/signal/client.py) that receives and sends with no detection or
storage. Targets: json-rpc p50 <= 300 ms, p99 <= 1 s; normal within one poll interval + 300 ms.
Run: .venv/bin/python benchmarks/signal_latency.py [--events 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import header, percentile  # noqa: E402
from connectors.signal.client import SignalClient  # noqa: E402
from tests.fakes.signal_api import FakeSignalApi, make_contact, text_message  # noqa: E402
from watcher.app import App  # noqa: E402
from watcher.core.config import load  # noqa: E402

ACCOUNT = "+15550000001"
SAM = make_contact("+15550000005", "Sam")
ALEX = make_contact("+15550000002", "Alex")
POLL = 1
CONFIG = """
[watcher]
database = "bench.db"
[people.sam]
name = "Sam"
signal = {{ uuid = "{uuid}", number = "{number}" }}
[contacts.alex]
name = "Alex"
signal = {{ number = "{alex}" }}
[codes.code]
person = "sam"
phrase = ["the network went down at work"]
playbook = "p"
[playbooks.p]
steps = [ {{ notify = ["alex"], message = "{{person}} used the code ({{incident}})" }} ]
[connectors.signal]
url = "{url}"
number = "{account}"
mode = "{mode}"
poll_interval = "{poll}s"
"""


async def one(api: FakeSignalApi, n: int) -> float:
    before = len(api.sends())
    record = api.inject(text_message(SAM, f"argh the network went down at work ({n})"))
    await api.wait_until(lambda: len(api.sends()) > before, timeout=15)
    return (api.sends()[before].time - record.available_at) * 1000


async def watcher_run(mode: str, events: int) -> list[float]:
    async with FakeSignalApi(ACCOUNT, mode="json-rpc" if mode == "json-rpc" else "normal") as api:
        folder = Path(tempfile.mkdtemp())
        (folder / "config.toml").write_text(CONFIG.format(
            uuid=SAM.uuid, number=SAM.number, alex=ALEX.number, url=api.base_url,
            account=ACCOUNT, mode=mode, poll=POLL))
        app = App(load(folder / "config.toml", environ={}), stdout=io.StringIO())
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        if mode == "json-rpc":
            await api.wait_for_listeners(timeout=15)
        else:
            await api.wait_until(lambda: bool(api.receive_params()), timeout=15)
        latencies = [await one(api, n) for n in range(events)]
        stop.set()
        await task
        await app.aclose()
        return latencies


async def floor_run(mode: str, events: int) -> list[float]:
    async with FakeSignalApi(ACCOUNT, mode="json-rpc" if mode == "json-rpc" else "normal") as api:
        client = SignalClient(api.base_url, ACCOUNT)
        stop = asyncio.Event()

        async def loop() -> None:
            if mode == "json-rpc":
                async for _ in client.stream():
                    await client.send([ALEX.number], "Sam used the code")
            else:
                while not stop.is_set():
                    for _ in await client.receive(timeout=POLL):
                        await client.send([ALEX.number], "Sam used the code")

        task = asyncio.create_task(loop())
        if mode == "json-rpc":
            await api.wait_for_listeners(timeout=15)
        latencies = [await one(api, n) for n in range(events)]
        stop.set()
        task.cancel()
        await client.aclose()
        return latencies


async def main(events: int) -> None:
    print(header(f"Signal: message -> alert sent, {events} code uses on loopback"))
    for mode in ("json-rpc", "normal"):
        ours = await watcher_run(mode, events)
        floor = await floor_run(mode, events)
        for name, values in ((f"{mode} watcher", ours), (f"{mode} floor", floor)):
            print(f"{name:>17}: p50 {percentile(values, 50):7.1f} ms  p99 "
                  f"{percentile(values, 99):7.1f} ms  max {max(values):7.1f} ms")
        print(f"{mode} ratio watcher/floor: p50 "
              f"{percentile(ours, 50) / percentile(floor, 50):.2f}x  p99 "
              f"{percentile(ours, 99) / percentile(floor, 99):.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200)
    asyncio.run(main(parser.parse_args().events))
