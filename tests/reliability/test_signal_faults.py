"""Signal: the watch goes on through every fault signal-cli-rest-api can throw at it, in
normal mode (long polls) and json-rpc mode (one websocket).

Each test runs the real App, client, HTTP and websockets against the stand-in through a
scripted run of 1,000 messages from Sam, 50 of them uses of the phrase code, injected in 20
bursts of 50, with the fault injected before bursts 5, 10 and 15. Then: every code use
opened exactly one incident, every alert reached Alex at the stand-in, and at most one
duplicate alert per fault (tests/reliability/harness.py).

json-rpc mode keeps nothing for an absent reader: what is sent while the websocket is down
is DROPPED by the real service (docs/signal.md). That documented loss is not a watcher bug,
so these tests inject only while the socket is connected, and cut it only once what was
pushed has been stored; `test_json_rpc_gap_is_reported` injects during a gap on purpose and
checks that the loss is exactly the dropped messages and that the gap was reported.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import connectors.signal.connector
from tests.conftest import eventually as until
from tests.conftest import write_config
from tests.fakes.signal_api import Contact, FakeSignalApi, Mode, make_contact, text_message
from tests.reliability.harness import (
    EVENTS,
    PLAYBOOK,
    alert_numbers,
    check,
    incident_keys,
    is_code,
    outbox_settled,
    seen_count,
    text_of,
)
from watcher.app import App
from watcher.core.config import load

pytestmark = pytest.mark.timeout(90)

ACCOUNT = "+15550000001"
SAM = Contact("5a3e0c1e-0000-4000-8000-000000000005", "+15550000005", "Sam")
ALEX = make_contact("+15550000002", "Alex")
BURSTS, SIZE = 20, EVENTS // 20
FAULT_BURSTS = (5, 10, 15)
# The hang test shortens the client timeout (20 s) so that exceeding it costs seconds.
SHORT_TIMEOUT = 3.0


def config_text(url: str) -> str:
    return f"""
[watcher]
database = "watcher.db"
timezone = "UTC"

[people.sam]
name = "Sam"

[people.sam.signal]
uuid = "{SAM.uuid}"
number = "{SAM.number}"

[contacts.alex]
name = "Alex"

[contacts.alex.signal]
number = "{ALEX.number}"
{PLAYBOOK}
[connectors.signal]
url = "{url}"
number = "{ACCOUNT}"
mode = "auto"
poll_interval = "1s"
"""


class SignalApi(FakeSignalApi):
    """The stand-in with the helpers these scripts need (it restarts on the same port)."""

    async def __aenter__(self) -> SignalApi:
        await self.start()
        return self

    def alerts_to(self, contact: Contact) -> list[str]:
        return [c.body["message"] for c in self.sends()
                if c.status == 201 and contact.number in c.body.get("recipients", [])]

    def pending_faults(self) -> int:
        return sum(len(f) for f in self._faults.values())


def assert_silent(api: SignalApi) -> None:
    assert not {SAM.number, SAM.uuid, ACCOUNT} & api.sent_to()
    assert all(p.get("send_read_receipts") == "false" for p in api.receive_params())


class Run:
    """The App on the stand-in, and the bookkeeping of one scripted run."""

    def __init__(self, api: SignalApi, folder: Path) -> None:
        self.api = api
        self.config = load(write_config(folder, text=config_text(api.base_url)), environ={})
        self.app = App(self.config, database=folder / "w.db", stdout=io.StringIO())
        self.store = self.app.store
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(self.app.run(stop=self.stop_event))
        self.code_keys: set[str] = set()
        self.injected = 0
        self.dropped: list[int] = []  # event numbers the service dropped (json-rpc gaps)
        self.started = time.monotonic()

    def burst(self, burst: int) -> None:
        for n in range(burst * SIZE, (burst + 1) * SIZE):
            record = self.api.inject(text_message(SAM, text_of(n)))
            self.injected += 1
            if record.dropped:
                self.dropped.append(n)
            elif is_code(n):
                self.code_keys.add(f"signal:{SAM.uuid}/{record.timestamp}")

    def stored(self) -> int:
        return seen_count(self.store, "signal:")

    async def all_stored(self, what: str) -> None:
        expected = self.injected - len(self.dropped)
        await until(lambda: self.stored() >= expected, what, timeout=40)

    def health(self) -> dict[str, Any]:
        return next((h for h in self.store.health() if h["feed"] == "sam/signal"), {})

    async def finish(self, name: str, faults: int, **extra: object) -> None:
        try:
            await self.all_stored("every event stored")
            await until(lambda: len(self.store.incidents()) >= len(self.code_keys),
                        "every incident")
            await until(lambda: outbox_settled(self.store), "every alert sent", timeout=40)
            assert self.stored() == self.injected - len(self.dropped)
        finally:
            self.stop_event.set()
            await asyncio.wait_for(self.task, 15)
            keys = incident_keys(self.store)
            await self.app.aclose()
        check(name, incident_keys=keys, code_keys=self.code_keys,
              alerts=alert_numbers(self.api.alerts_to(ALEX)), faults=faults,
              started=self.started, extra=extra)


@pytest.fixture(params=["normal", "json-rpc"])
def mode(request: pytest.FixtureRequest) -> Mode:
    value: Mode = request.param
    return value


@pytest.fixture
async def api(mode: Mode) -> AsyncIterator[SignalApi]:
    async with SignalApi(ACCOUNT, mode=mode) as server:
        yield server
        assert_silent(server)


async def connected(run: Run) -> None:
    """json-rpc: wait for the socket before injecting (what is sent before is dropped)."""
    if run.api.mode == "json-rpc":
        await run.api.wait_for_listeners(timeout=15)


async def scripted(api: SignalApi, folder: Path, name: str, inject_fault: Any) -> None:
    """The run: 20 bursts; before bursts 5, 10 and 15, `inject_fault(run, burst)` (returns
    the number of faults injected)."""
    run = Run(api, folder)
    faults = 0
    try:
        for burst in range(BURSTS):
            await connected(run)
            if burst in FAULT_BURSTS:
                faults += await inject_fault(run, burst)
                await connected(run)
            run.burst(burst)
            await run.all_stored(f"burst {burst} stored")
        assert run.dropped == [], "these tests inject only while connected"
    except BaseException:
        run.stop_event.set()
        await asyncio.wait_for(run.task, 15)
        await run.app.aclose()
        raise
    await run.finish(f"signal-{api.mode}/{name}", faults)
    assert api.pending_faults() == 0, "every injected fault was really hit"


# ----------------------------------------------------------------------- HTTP faults


async def test_server_errors(api: SignalApi, tmp_path: Path) -> None:
    async def fault(run: Run, burst: int) -> int:
        api.fault("send", status=500)
        if api.mode != "json-rpc":  # a json-rpc receive is one websocket, opened once
            api.fault("receive", status=500)
            return 2
        return 1

    await scripted(api, tmp_path, "500", fault)


async def test_rate_limits(api: SignalApi, tmp_path: Path) -> None:
    async def fault(run: Run, burst: int) -> int:
        api.fault("send", status=429, retry_after="1")
        if api.mode != "json-rpc":
            api.fault("receive", status=429, retry_after="1")
            return 2
        return 1

    await scripted(api, tmp_path, "429", fault)


async def test_hangs(api: SignalApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                     caplog: pytest.LogCaptureFixture) -> None:
    """3 s hangs complete late; at burst 10 a send hangs past the client's own timeout
    (shortened to 3 s): the client gives up and the runner retries. The stand-in, like the
    real service, still sends the one it was holding: that may be the one duplicate."""
    monkeypatch.setattr(connectors.signal.connector, "CLIENT_TIMEOUT", SHORT_TIMEOUT)
    caplog.set_level(logging.WARNING, logger="watcher.playbooks")

    async def fault(run: Run, burst: int) -> int:
        api.fault("send", hang=SHORT_TIMEOUT + 2 if burst == FAULT_BURSTS[1] else 2)
        if api.mode != "json-rpc":
            # Shorter than the receive's read timeout (client timeout + poll timeout):
            # a receive the client abandoned could take messages with it (see
            # test_abandoned_receive_is_reported below).
            api.fault("receive", hang=SHORT_TIMEOUT - 1)
            return 2
        return 1

    await scripted(api, tmp_path, "hang", fault)
    assert "send: timed out" in caplog.text  # the client's own timeout did fire


async def test_dropped_connections(api: SignalApi, tmp_path: Path) -> None:
    async def fault(run: Run, burst: int) -> int:
        api.fault("send", drop=True)
        if api.mode != "json-rpc":
            api.fault("receive", drop=True)
            return 2
        return 1

    await scripted(api, tmp_path, "drop", fault)


async def test_service_restart(api: SignalApi, tmp_path: Path) -> None:
    """The service goes away (every connection cut) and comes back on the same port.
    Normal mode: messages sent meanwhile wait on Signal's servers and are read after; what
    a receive already returned is in the watcher's journal. json-rpc: the restart happens
    once what was pushed is stored, and nothing is sent while it is down."""

    async def fault(run: Run, burst: int) -> int:
        if api.mode == "json-rpc":
            await run.all_stored("pushed messages stored before the restart")
        await api.stop()
        await until(lambda: bool(run.health().get("blind_since")), "the outage noticed")
        await api.start()
        return 1

    await scripted(api, tmp_path, "restart", fault)


# ----------------------------------------------------------------------- json-rpc


async def cut(api: SignalApi, abrupt: bool = True) -> None:
    """Cut the websockets, and wait until the stand-in has seen them go: a message pushed
    into a socket the server has not yet noticed is dead goes nowhere (part of the gap)."""
    old = list(api._listeners)
    await api.cut_websockets(abrupt=abrupt)
    await api.wait_until(lambda: not set(map(id, old)) & set(map(id, api._listeners)),
                         timeout=10)


@pytest.fixture
async def rpc_api() -> AsyncIterator[SignalApi]:
    async with SignalApi(ACCOUNT, mode="json-rpc") as server:
        yield server
        assert_silent(server)


async def test_websocket_cuts(rpc_api: SignalApi, tmp_path: Path) -> None:
    """Three cuts (abrupt, close frame 1011, abrupt) once what was pushed is stored, while
    alerts are still going out; the watcher reconnects and misses nothing sent after."""
    api = rpc_api

    async def fault(run: Run, burst: int) -> int:
        await run.all_stored("pushed messages stored before the cut")
        await cut(api, abrupt=burst != FAULT_BURSTS[1])
        return 1

    await scripted(api, tmp_path, "cut", fault)
    assert len(api.receive_params()) == 1 + len(FAULT_BURSTS)  # one reconnect per cut


async def test_json_rpc_gap_is_reported(rpc_api: SignalApi, tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """The documented loss: a burst sent while the websocket is down is dropped by the
    service. The watcher must report the gap (store.health() while it lasts, and the log),
    and lose nothing else."""
    caplog.set_level(logging.WARNING, logger="watcher.app")
    api = rpc_api
    run = Run(api, tmp_path)
    reported: list[str] = []
    try:
        for burst in range(BURSTS):
            await connected(run)
            if burst == FAULT_BURSTS[1]:
                await run.all_stored("pushed messages stored before the cut")
                api.fault("about", hang=2.0)  # the reconnect takes seconds: a real gap
                await cut(api)
                await until(lambda: "websocket was cut" in (run.health().get("detail") or ""),
                            "the gap reported")
                reported.append(run.health()["detail"])
                run.burst(burst)  # sent during the gap: dropped by the service
                assert api.listeners == 0
                continue
            run.burst(burst)
            await run.all_stored(f"burst {burst} stored")
    except BaseException:
        run.stop_event.set()
        await asyncio.wait_for(run.task, 15)
        await run.app.aclose()
        raise
    assert run.dropped == list(range(FAULT_BURSTS[1] * SIZE, (FAULT_BURSTS[1] + 1) * SIZE))
    lost_codes = [n for n in run.dropped if is_code(n)]
    assert "messages sent while it was down may be lost" in reported[0]
    assert "websocket was cut" in caplog.text
    await run.finish("signal-json-rpc/gap", 1, dropped=len(run.dropped),
                     dropped_codes=len(lost_codes))
    assert len(run.code_keys) == 50 - len(lost_codes)
