"""Random and mutated update/envelope JSON never stops a connector: a bad item is logged
(without its content) and skipped, and the next one is read."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import eventually as until
from tests.conftest import write_config
from tests.fakes.signal_api import FakeSignalApi, make_contact, text_message
from tests.fakes.telegram_api import FakeTelegram
from tests.telegram_rig import GROUP, SAM_TG, sam_in_a_group
from watcher.app import App
from watcher.core.config import load

SAM = make_contact("+15550000005", "Sam")
CODE = "the network went down at work"
SECRET_TEXT = "SENTINEL-FUZZ-TEXT"

leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.text(max_size=12),
                 st.just(SECRET_TEXT), st.floats(allow_nan=False))
json_values = st.recursive(leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.sampled_from(["chat", "from", "text", "date", "message_id", "id",
                                     "photo", "caption", "sourceUuid", "timestamp",
                                     "dataMessage", "message", "reaction", "quote",
                                     "attachments", "groupInfo", "editMessage", "type",
                                     "syncMessage", "sentMessage", "x"]), inner, max_size=6)),
    max_leaves=20)
SETTINGS = settings(max_examples=6, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])



async def watch(app: App) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(app.run(stop=stop))


@SETTINGS
# A message without its required fields: PTB cannot read the batch, so we read on one by one.
@example(payloads=[("message", {"text": SECRET_TEXT})])
@given(payloads=st.lists(st.tuples(st.sampled_from(["message", "edited_message",
                                                    "channel_post", "message_reaction",
                                                    "callback_query", "business_message"]),
                                   json_values), min_size=1, max_size=8))
def test_telegram_skips_unreadable_updates(tmp_path_factory: pytest.TempPathFactory,
                                           caplog: pytest.LogCaptureFixture,
                                           payloads: list[tuple[str, Any]]) -> None:
    async def scenario() -> None:
        folder = tmp_path_factory.mktemp("tg")
        async with FakeTelegram() as tg:
            app = App(sam_in_a_group(tg, folder), database=folder / "w.db",
                      stdout=io.StringIO())
            stop, task = await watch(app)
            await tg.wait_polling(timeout=10)
            for kind, payload in payloads:
                tg.inject_update(kind, payload if isinstance(payload, dict) else {"x": payload})
            tg.inject_message(GROUP, SAM_TG, CODE)
            await until(lambda: app.store.incidents())
            stop.set()
            await asyncio.wait_for(task, 10)
            await app.aclose()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert SECRET_TEXT not in caplog.text


@SETTINGS
@example(envelopes=[{"timestamp": "not a number", "dataMessage": {"message": SECRET_TEXT}}])
@given(envelopes=st.lists(json_values, min_size=1, max_size=8))
def test_signal_skips_unreadable_envelopes(tmp_path_factory: pytest.TempPathFactory,
                                           caplog: pytest.LogCaptureFixture,
                                           envelopes: list[Any]) -> None:
    async def scenario() -> None:
        folder = tmp_path_factory.mktemp("sig")
        async with FakeSignalApi("+15550000001", mode="normal") as api:
            extra = (f'[connectors.signal]\nurl = "{api.base_url}"\nnumber = "+15550000001"\n'
                     'mode = "normal"\npoll_interval = "1s"\n')
            path = write_config(folder, extra=extra)
            path.write_text(path.read_text().replace(
                'name = "Sam"', f'name = "Sam"\nsignal = {{ uuid = "{SAM.uuid}" }}'))
            app = App(load(path, environ={}), database=folder / "w.db", stdout=io.StringIO())
            stop, task = await watch(app)
            for envelope in envelopes:
                if isinstance(envelope, dict):  # a watched sender, so it is really parsed
                    envelope.setdefault("sourceUuid", SAM.uuid)
                api.inject(envelope if isinstance(envelope, dict) else {"x": envelope})
            api.inject(text_message(SAM, CODE))
            await until(lambda: app.store.incidents())
            stop.set()
            await asyncio.wait_for(task, 10)
            await app.aclose()

    with caplog.at_level(logging.DEBUG):
        asyncio.run(scenario())
    assert SECRET_TEXT not in caplog.text
