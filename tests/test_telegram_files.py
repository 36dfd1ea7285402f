"""Files come from downloads only: a Bot API server that answers getFile with a path on
this machine's disk (as a local Bot API server does) must not make the watcher read it.

PTB reads `file_path` from the disk when it names an existing file. A hostile or
misconfigured server could point it at /etc/passwd, the watcher's database or, here, the
reference photo itself, which would fire the flower code from a file nobody posted.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import eventually, write_config
from tests.fakes.telegram_api import FakeTelegram
from tests.test_telegram_connector import (
    CODE_TEXT,
    FLOWER,
    GROUP,
    SAM,
    TELEGRAM_TOML,
    Watch,
    tg,
)
from watcher.core.config import load

__all__ = ["tg"]  # the stand-in fixture, shared with the connector tests

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")]


@contextlib.asynccontextmanager
async def watching(server: FakeTelegram, folder: Path, local_mode: bool
                   ) -> AsyncIterator[Watch]:
    extra = (TELEGRAM_TOML.replace("URL", server.url).replace("INTERVAL", "15m")
             .replace("CHATS", str([GROUP])))
    if local_mode:
        extra += "local_mode = true\n"
    config = load(write_config(folder, extra=extra), environ={"TG_TOKEN": server.token})
    watch = Watch(config, folder / "w.db")
    try:
        await server.wait_polling(timeout=8)
        yield watch
    finally:
        await watch.close()


def local_paths(folder: Path) -> dict[str, str]:
    return {"absolute": str(folder / "flower.jpg"),  # the reference photo itself
            "relative": "flower.jpg",  # PTB resolves it against the working directory
            "system": "/etc/passwd"}


@pytest.mark.parametrize("kind", ["absolute", "relative", "system"])
async def test_a_local_path_from_the_server_is_refused(
        tg: FakeTelegram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.chdir(tmp_path)
    async with watching(tg, tmp_path, local_mode=False) as watch:
        photo = tg.inject_message(GROUP, SAM, photo=FLOWER)
        tg.files[photo["message"]["photo"][0]["file_id"]].file_path = local_paths(tmp_path)[kind]
        tg.inject_message(GROUP, SAM, CODE_TEXT)  # the next update is read as usual
        await eventually(lambda: watch.incidents("network-down"), "the code after it")
        assert watch.incidents("flower") == []  # the local file was never read
        assert tg.calls("file") == []  # and nothing was downloaded in its place
        await eventually(lambda: tg.updates[photo["update_id"]].confirmed_at is not None,
                         "the update confirmed: refused once, not retried forever")


async def test_local_mode_reads_the_path_so_the_refusal_above_is_real(
        tg: FakeTelegram, tmp_path: Path) -> None:
    async with watching(tg, tmp_path, local_mode=True) as watch:
        photo = tg.inject_message(GROUP, SAM, photo=FLOWER)
        tg.files[photo["message"]["photo"][0]["file_id"]].file_path = str(tmp_path / "flower.jpg")
        [incident] = await eventually(lambda: watch.incidents("flower"), "read from the disk")
        assert incident.code == "flower"
