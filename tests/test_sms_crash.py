"""kill -9 of a real `watcher run` while the phone's webhooks stream in: the app retries what
was not answered 200, and the restarted watcher neither loses a text nor fires twice."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import pytest

from tests.conftest import db_count as count
from tests.conftest import write_config
from tests.fakes.sms_gateway import FakeSmsGateway
from tests.test_sms_connector import JO, KEY, PHRASE, SAM, assert_silent, sms_config

pytestmark = pytest.mark.timeout(120)
TEXTS = 30
CODE_AT = 12  # the one text with the code in it
KILLS = (4, 11, 19)  # kill when this many webhooks have been answered 200


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_kill_9_mid_webhooks_neither_loses_nor_doubles(tmp_path: Path) -> None:
    port = free_port()
    async with FakeSmsGateway(signing_key=KEY, time_factor=0.002) as gw:
        extra = sms_config(gw.base_url).replace('listen = "127.0.0.1:0"',
                                                 f'listen = "127.0.0.1:{port}"')
        config = write_config(tmp_path, extra=extra)
        db = tmp_path / "watcher.db"
        env = {**os.environ, "SMS_PASSWORD": gw.password, "SMS_KEY": KEY}
        command = [sys.executable, "-m", "watcher.cli", "run", "--config", str(config)]

        async def launch() -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                *command, env=env, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL)

        def answered() -> int:
            return sum(1 for q in gw.queue.values() if q.status == "completed")

        await gw.register_webhook(f"http://127.0.0.1:{port}/hooks/sms")
        proc = await launch()
        for n in range(TEXTS):
            gw.receive_sms(SAM, PHRASE if n == CODE_AT else f"ordinary text {n}")
        for threshold in KILLS:
            await gw.wait_until(lambda: answered() >= threshold, timeout=60)  # noqa: B023
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            proc = await launch()
        try:
            await gw.wait_until(lambda: answered() == TEXTS, timeout=90)
            assert not [q for q in gw.queue.values() if q.status == "permanently_failed"]
            # The kills did cut deliveries: the app had to retry some (else nothing was tested).
            assert any(a.error or a.status != 200 for a in gw.attempts)
            assert count(db, "SELECT COUNT(*) FROM seen_events WHERE key LIKE 'sms:%'") == TEXTS
            assert count(db, "SELECT COUNT(*) FROM incidents") == 1
            await gw.wait_until(lambda: gw.sent_to(JO), timeout=30)
            assert_silent(gw)
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 20)
