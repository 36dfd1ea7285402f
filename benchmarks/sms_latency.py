"""SMS end to end: the stand-in phone posts its signed `sms:received` webhook -> incident stored,
and -> the alert text handed back to the phone's API to send.

N code uses, one at a time, through the real App (aiohttp listener, signature check, storage,
detection, playbook, delivery through the gateway's API) against tests/fakes/sms_gateway.py on
loopback. The clock starts when the stand-in begins its webhook attempt (after signing); the
incident is stored when the phone gets its 200, because the watcher commits the text, its
verdict and the incident before answering (connectors/sms/webhook.py); the alert is queued
when the stand-in's `POST /messages` receives it. Beside it, the floor: a bare aiohttp handler
that verifies the same signature and answers 200, with no watcher.
Run: .venv/bin/python benchmarks/sms_latency.py [--texts 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import header, percentile  # noqa: E402
from connectors.sms.connector import SmsConnector  # noqa: E402
from connectors.sms.webhook import refusal  # noqa: E402
from tests.fakes.sms_gateway import FakeSmsGateway  # noqa: E402
from watcher.app import App  # noqa: E402
from watcher.core.config import load  # noqa: E402

KEY = "a-long-random-signing-key-for-the-benchmark"
SAM = "+447700900001"
JO = "+447700900003"
CONFIG = """
[watcher]
database = "bench.db"
[people.sam]
name = "Sam"
sms = {{ numbers = ["{sam}"] }}
[contacts.alex]
name = "Alex"
console = true
[contacts.jo]
name = "Jo"
sms = {{ number = "{jo}" }}
[codes.code]
person = "sam"
phrase = ["the network went down at work"]
playbook = "p"
[playbooks.p]
steps = [ {{ notify = ["jo"], message = "{{person}} used the code ({{incident}})" }} ]
[connectors.sms]
url = "{url}"
password = {{ env = "SMS_PASSWORD" }}
signing_key = {{ env = "SMS_KEY" }}
listen = "127.0.0.1:0"
owner = "alex"
poll_interval = "1h"
"""


class Figures:
    def __init__(self) -> None:
        self.stored: list[float] = []
        self.alert: list[float] = []


async def one(gw: FakeSmsGateway, n: int, figures: Figures, alert: bool) -> None:
    sent_before = len(gw.outbox)
    attempts_before = len(gw.attempts)
    sms = gw.receive_sms(SAM, f"argh the network went down at work ({n})")
    # Woken by each change of the stand-in's state, not by polling.
    await gw.wait_until(lambda: gw.completed(sms.event_ids[0]), timeout=15)
    done = time.monotonic()
    attempt = gw.attempts[attempts_before]
    if attempt.status != 200 or len(gw.attempts) != attempts_before + 1:
        raise RuntimeError("the webhook was not answered 200 at the first attempt")
    figures.stored.append((done - attempt.at) * 1000)
    if alert:
        await gw.wait_until(lambda: len(gw.outbox) > sent_before, timeout=15)
        figures.alert.append((time.monotonic() - attempt.at) * 1000)


async def watcher_run(texts: int) -> Figures:
    figures = Figures()
    async with FakeSmsGateway(signing_key=KEY) as gw:
        folder = Path(tempfile.mkdtemp())
        (folder / "config.toml").write_text(CONFIG.format(sam=SAM, jo=JO, url=gw.base_url))
        config = load(folder / "config.toml",
                      environ={"SMS_PASSWORD": gw.password, "SMS_KEY": KEY})
        app = App(config, stdout=io.StringIO())
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        sms = next(c for c in app.connectors if isinstance(c, SmsConnector))
        port = await _listening(sms)
        await gw.register_webhook(f"http://127.0.0.1:{port}/hooks/sms")
        for n in range(texts):
            await one(gw, n, figures, alert=True)
        stop.set()
        await task
        stored = len(app.store.incidents())
        await app.aclose()
        shutil.rmtree(folder, ignore_errors=True)
        if stored != texts:
            raise RuntimeError(f"{stored} incidents stored for {texts} code uses")
    return figures


async def floor_run(texts: int) -> Figures:
    """The least any receiver must do: read the body, check the signature, answer 200."""

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        why = refusal(KEY, body, request.headers.get("X-Timestamp"),
                      request.headers.get("X-Signature"), time.time())
        return web.Response(status=401 if why else 200)

    server = web.Application()
    server.router.add_post("/hooks/sms", handler)
    runner = web.AppRunner(server)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    figures = Figures()
    try:
        async with FakeSmsGateway(signing_key=KEY) as gw:
            await gw.register_webhook(f"http://127.0.0.1:{port}/hooks/sms")
            for n in range(texts):
                await one(gw, n, figures, alert=False)
    finally:
        await runner.cleanup()
    return figures


async def _listening(sms: SmsConnector, timeout: float = 15.0) -> int:
    """The webhook listener's port once it is up (setup only, never inside a timed span)."""
    deadline = time.monotonic() + timeout
    while sms.port is None:
        if time.monotonic() > deadline:
            raise RuntimeError("the SMS webhook listener did not start")
        await asyncio.sleep(0.02)
    return sms.port


def line(name: str, values: list[float]) -> str:
    return (f"{name:>22}: p50 {percentile(values, 50):7.1f} ms  p99 "
            f"{percentile(values, 99):7.1f} ms  max {max(values):7.1f} ms")


async def main(texts: int) -> None:
    print(header(f"SMS: signed webhook -> incident stored / alert queued, {texts} texts "
                 "on loopback"))
    ours = await watcher_run(texts)
    floor = await floor_run(texts)
    print(line("watcher: stored", ours.stored))
    print(line("watcher: alert queued", ours.alert))
    print(line("floor: verified + 200", floor.stored))
    p50 = percentile(ours.stored, 50) / percentile(floor.stored, 50)
    p99 = percentile(ours.stored, 99) / percentile(floor.stored, 99)
    print(f"ratio stored/floor: p50 {p50:.2f}x  p99 {p99:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=200)
    asyncio.run(main(parser.parse_args().texts))
