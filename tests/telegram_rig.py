"""One watched person in one watched Telegram group, on the stand-in: the setup the fuzz and
hostile-item tests share."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_config
from tests.fakes.telegram_api import FakeTelegram
from watcher.core.config import Config, load

SAM_TG, GROUP = 5001, -1001234567890


def sam_in_a_group(tg: FakeTelegram, folder: Path, chats: tuple[int, ...] = ()) -> Config:
    """Sam and the bot (an admin) in one group; the base config with Sam's Telegram id and a
    connector pointing at the stand-in (`chats`: the watched chats whose rights are checked)."""
    tg.add_user(SAM_TG, "Sam")
    tg.add_chat(GROUP, "supergroup", "Family")
    tg.set_bot_member(GROUP, "administrator")
    extra = (f'[connectors.telegram]\ntoken = {{ env = "TG" }}\napi_url = "{tg.url}"\n'
             "poll_timeout = 2\n" + (f"chats = {list(chats)}\n" if chats else ""))
    path = write_config(folder, extra=extra)
    path.write_text(path.read_text().replace(
        'name = "Sam"', f'name = "Sam"\ntelegram = {{ user_id = {SAM_TG} }}'))
    return load(path, environ={"TG": tg.token})
