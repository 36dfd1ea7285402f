"""Log audit: a whole watcher run at DEBUG leaks no secret, number, id or message text.

One App watches Telegram and Signal (their stand-ins, through PTB and httpx), a replay file
with a hostile line, alerts a contact over Apprise json:// to a webhook that fails first,
pings a secret heartbeat URL, takes acknowledgements, and every logger in the process
(ours, PTB, httpx, apprise, urllib3, aiohttp: the stand-ins' own access logs too) writes
at DEBUG to a handler set up by watcher.logs. Then every secret, number and id in the
config, and every message text, is searched for in what was written. A raw handler beside
it proves that the run did put such values into log records.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import eventually, write_config
from tests.fakes.signal_api import Contact, FakeSignalApi, quote_reply, text_message
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.webhook import FakeWebhook
from watcher.app import App
from watcher.core import logs
from watcher.core.config import Config, load
from watcher.core.models import IncidentState

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")]

TOKEN = "7301234567:AAHsEnTiNeLtOkEnFoRtHeLoGaUdIt-xyz0123"
SAM_TG, ALEX_TG, JO_TG = 7340012345, 6120098765, 5550123456
GROUP = -1001987654321
ACCOUNT_NUMBER = "+447700900001"
ACCOUNT = Contact("0b07a1e2-0000-4000-8000-00000000a001", ACCOUNT_NUMBER, "Watcher")
SAM = Contact("5a3e0c1e-1111-4000-8000-00000000a005", "+447700900005", "Sam")
ALEX = Contact("a1e00000-2222-4000-8000-00000000a002", "+447700900002", "Alex")
JO = Contact("c0000000-3333-4000-8000-00000000a003", "+447700900003", "Jo")
STRANGER = Contact("5e000000-4444-4000-8000-00000000a099", "+447700900099", "Stranger")
HOOK_PATH = "hook-SENTINEL-WEBHOOK-7f3a9c"
HOOK_PASS = "SENTINEL-HOOKPASS-91"
BEAT_PATH = "ping/SENTINEL-HEARTBEAT-4d2e"
CODE = "the network went down at work"
TEXTS = {  # every message text anyone sends in the run: none may be logged
    "tg-code": f"Ugh, {CODE} SENTINEL-TG-CODE",
    "tg-plain": "Dinner at six? SENTINEL-TG-PLAIN",
    "tg-stranger": "hello bot SENTINEL-TG-STRANGER",
    "sig-code": f"argh {CODE} SENTINEL-SIG-CODE",
    "sig-plain": "picking up the kids SENTINEL-SIG-PLAIN",
    "sig-stranger": "who is this SENTINEL-SIG-STRANGER",
    "sig-ack": "on it SENTINEL-SIG-ACK",
    "replay": "replayed words SENTINEL-REPLAY",
}


def toml(tg: FakeTelegram, api: FakeSignalApi, hook: FakeWebhook) -> str:
    return f"""
heartbeat = "unused"

[people.sam.telegram]
user_id = {SAM_TG}

[people.sam.signal]
uuid = "{SAM.uuid}"
number = "{SAM.number}"

[contacts.alex.telegram]
chat_id = {ALEX_TG}

[contacts.jo.signal]
number = "{JO.number}"

[contacts.nan]
name = "Nan"
apprise = [{{ env = "NAN_URL" }}]

[connectors.telegram]
token = {{ env = "TG_TOKEN" }}
api_url = "{tg.url}"
chats = [{GROUP}]
poll_timeout = 2

[connectors.signal]
url = "{api.base_url}"
number = "{ACCOUNT_NUMBER}"
mode = "normal"
poll_interval = "1s"
"""


def make_config(folder: Path, tg: FakeTelegram, api: FakeSignalApi,
                hook: FakeWebhook) -> Config:
    path = write_config(folder, extra=toml(tg, api, hook).replace('heartbeat = "unused"\n', ""))
    text = path.read_text()
    text = text.replace('[watcher]\n', '[watcher]\nheartbeat_url = { env = "HB_URL" }\n'
                        'heartbeat_every = "1s"\n', 1)
    text = text.replace('notify = ["alex", "jo"]', 'notify = ["alex", "jo", "nan"]')
    path.write_text(text)
    return load(path, environ={
        "TG_TOKEN": TOKEN,
        "NAN_URL": f"json://nan:{HOOK_PASS}@{hook.base}/{HOOK_PATH}",
        "HB_URL": f"http://{hook.base}/{BEAT_PATH}"})


def hostile_replay_line() -> str:
    """A field name that, logged raw, would forge a line of its own."""
    forged = "x\n2026-01-01 00:00:00,000 CRITICAL watcher: FORGED-LINE all clear"
    return json.dumps({"person": "sam", "id": "r1", "at": "2026-11-21T14:02:00Z",
                       "text": TEXTS["replay"], forged: 1}) + "\n"


def forbidden(config: Config) -> dict[str, str]:
    """Every value that must not appear, by what it is."""
    out = {f"text {k}": v for k, v in TEXTS.items()}
    out |= {f"sentinel {k}": v.split()[-1] for k, v in TEXTS.items()}
    # What alerts carry: the survivor's matched words and a contact's field (an address).
    out |= {"matched words": CODE, "address field": "12 Acacia Avenue"}
    out |= {"token": TOKEN, "token secret": TOKEN.split(":")[1], "hook path": HOOK_PATH,
            "hook password": HOOK_PASS, "heartbeat path": BEAT_PATH}
    secrets, ids = logs.sensitive(config)
    out |= {f"secret {n}": s for n, s in enumerate(secrets)}
    for value in ids:
        out[f"id {value[:3]}"] = value
        out[f"id {value[:3]} bare"] = value.lstrip("+-")
    for who in (SAM, ALEX, JO, STRANGER, ACCOUNT):
        out[f"{who.name} uuid"] = who.uuid
        out[f"{who.name} number"] = (who.number or "").lstrip("+")
    out["group as in links"] = str(GROUP)[4:]
    return out


def found(text: str, value: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(value)}(?![\w])", text) is not None


@pytest.fixture
def every_logger_at_debug() -> Iterator[tuple[io.StringIO, io.StringIO, logging.Handler]]:
    root = logging.getLogger()
    saved = (root.level, {n: lg.level for n, lg in logging.root.manager.loggerDict.items()
                          if isinstance(lg, logging.Logger)})
    masked, raw = io.StringIO(), io.StringIO()
    handler, raw_handler = logging.StreamHandler(masked), logging.StreamHandler(raw)
    root.addHandler(raw_handler)  # the masked one is added once it knows the config
    root.setLevel(logging.DEBUG)
    try:
        yield masked, raw, handler
    finally:
        root.removeHandler(handler)
        root.removeHandler(raw_handler)
        root.setLevel(saved[0])
        for name, level in saved[1].items():
            logging.getLogger(name).setLevel(level)


def all_debug() -> None:
    """Libraries set their own levels when imported; force every logger to DEBUG now."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.setLevel(logging.DEBUG)
            logger.disabled = False


async def test_a_whole_run_at_debug_leaks_nothing(
        tmp_path: Path,
        every_logger_at_debug: tuple[io.StringIO, io.StringIO, logging.Handler]) -> None:
    masked, raw, handler = every_logger_at_debug
    async with FakeTelegram(TOKEN) as tg, FakeSignalApi(ACCOUNT_NUMBER) as api, \
            FakeWebhook() as hook:
        tg.add_user(SAM_TG, "Sam")
        tg.add_user(ALEX_TG, "Alex")
        tg.add_user(JO_TG, "Jo")
        tg.add_chat(GROUP, "supergroup", "Family")
        tg.set_bot_member(GROUP, "administrator")
        config = make_config(tmp_path, tg, api, hook)
        (tmp_path / "feed.jsonl").write_text(hostile_replay_line())
        logs.protect(handler, *logs.sensitive(config))
        logging.getLogger().addHandler(handler)
        all_debug()
        hook.fail_next(2)  # the first alert to Nan and the first ping fail, then succeed
        app = App(config, database=tmp_path / "w.db", stdout=io.StringIO())
        all_debug()
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        try:
            await tg.wait_polling(timeout=8)
            tg.inject_message(GROUP, SAM_TG, TEXTS["tg-plain"])
            tg.inject_message(GROUP, 999_000_111, TEXTS["tg-stranger"])
            tg.inject_message(GROUP, SAM_TG, TEXTS["tg-code"])
            alert = await eventually(lambda: tg.sent_messages(ALEX_TG), "the Telegram alert")
            tg.inject_callback(ALEX_TG, alert[0], "ack:1")  # the button: Alex acknowledges
            await eventually(lambda: app.store.incident(1) is not None and
                             app.store.incident(1).state == IncidentState.ACKNOWLEDGED,  # type: ignore[union-attr]
                             "Alex's acknowledgement")
            api.inject(text_message(SAM, TEXTS["sig-plain"]))
            api.inject(text_message(STRANGER, TEXTS["sig-stranger"]))
            api.inject(text_message(SAM, TEXTS["sig-code"]))
            await eventually(lambda: len(app.store.incidents()) >= 2, "the Signal code")
            rows = await eventually(lambda: [
                d for d in app.store.deliveries() if d["channel"] == "signal"
                and d["contact"] == "jo" and d["status"] == "sent"], "the Signal alert to Jo")
            before = len(api.sends())
            api.inject(quote_reply(JO, TEXTS["sig-ack"], ACCOUNT, int(rows[0]["platform_ref"]),
                                   "alert"))
            await eventually(lambda: len(api.sends()) > before, "an answer to Jo's reply")
            await eventually(lambda: sum(HOOK_PATH in h.path for h in hook.hits) >= 2,
                             "Nan's alert, after a failed try")
            await eventually(lambda: any(BEAT_PATH in h.path for h in hook.hits), "a ping")
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
            await app.aclose()

    written, unmasked = masked.getvalue(), raw.getvalue()
    assert "delivery" in written or "delivered" in written  # it did log the run
    leaks = {name: value for name, value in forbidden(config).items()
             if found(written, value)}
    assert leaks == {}, leaks
    # The audit has teeth: the same records, unmasked, did carry such values.
    assert {n for n, v in forbidden(config).items() if found(unmasked, v)}
    # No line was forged: every line is a record's first line or a traceback line.
    for line in written.splitlines():
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ |  \| ", line), line
    assert "FORGED-LINE" in written  # the hostile field name was logged, on its own line
    assert not [line for line in written.splitlines() if line.startswith("2026-01-01")]
