"""Issue #19: every kind of item the survivor can write in, tested from the one table.

For every "read" row of connectors/item_fields.FIELDS, an item of that kind carrying a code
goes through the real client library (PTB; httpx and websockets) and the platform's stand-in,
as a new message and as an edit, and must open an incident whose alert renders the words
matched. Every row, read or skipped, must be in docs/event-format.md exactly as in the table.
Bluesky rows are in tests/test_item_kinds_bluesky.py (they need the local PDS).
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import item_fields
from connectors.bluesky.translate import as_model, record_words
from connectors.item_fields import FIELDS, SIGNAL, TELEGRAM, Field, fields, prune, walk, words
from connectors.signal.translate import MENTION, Directory, person_draft, slim, with_mentions
from tests import item_kinds as kinds
from tests.conftest import ROOT, eventually, write_config
from tests.fakes.signal_api import Blob, Contact, FakeSignalApi, make_contact, next_ts
from tests.fakes.telegram_api import FakeTelegram
from watcher.app import App
from watcher.core.config import Config, load
from watcher.core.models import Incident

pytestmark = pytest.mark.timeout(90)

ALERT = "{person} used {code} on {platform}: [{matched}] {link}"
CODES_TOML = f"""
[codes.pineapple]
person = "sam"
phrase = ["{kinds.PHRASE}"]
playbook = "told"

[codes.sos]
person = "sam"
phrase = ["{kinds.EMOJI}"]
playbook = "told"

[codes.ask-alex]
person = "sam"
phrase = ["ask Alex about the network"]
playbook = "told"

[playbooks.told]
steps = [ {{ notify = ["alex"], message = "{ALERT}" }} ]
"""


# ---------------------------------------------------------------------------------- docs


def doc_rows() -> list[str]:
    doc = (ROOT / "docs" / "event-format.md").read_text()
    section = doc.split("## What is read, per kind of item", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith(("| platform", "|---"))]


def test_the_docs_table_is_the_table_the_connectors_read() -> None:
    assert doc_rows() == [kinds.markdown_row(row) for row in FIELDS]


def test_every_row_says_why_and_each_path_is_listed_once_per_kind() -> None:
    keys = [(f.platform, f.kind, f.path) for f in FIELDS]
    assert len(keys) == len(set(keys))
    assert all(f.why and "|" not in f.why + f.kind + f.path for f in FIELDS)
    for platform in (TELEGRAM, SIGNAL, "bluesky"):
        assert fields(platform) and fields(platform, read=False)


def test_a_phrase_never_joins_two_pieces() -> None:
    """Pieces are matched one by one: the end of a question and an option are not a code."""
    poll = {"poll": {"question": "Pineapple", "options": [{"text": "express"}]}}
    text, pieces = words(TELEGRAM, poll)
    assert text == "" and pieces == ("Pineapple", "express")
    profile = {"displayName": "Sam Pineapple", "description": "express delivery fan"}
    assert words("bluesky", profile) == ("Sam Pineapple", ("express delivery fan",))


def test_walk_ignores_odd_shapes() -> None:
    """A hostile server's odd JSON (a list where a dict is due, numbers) is skipped, not
    raised: the item's other fields are still read."""
    odd = {"poll": ["x"], "checklist": {"tasks": {"text": "x"}}, "venue": {"title": 7},
           "text": "hello", "dice": None}
    assert words(TELEGRAM, odd) == ("hello", ())
    assert list(walk({"a": [1, {"b": "c"}]}, "a[].b")) == ["c"]


def test_prune_keeps_only_the_read_paths() -> None:
    data = {"pollCreate": {"question": "q", "options": ["a"], "allowMultiple": True},
            "quote": {"text": "someone else's"}, "contacts": [{"name": {"given": "Jo"},
                                                               "phone": [{"value": "+1"}]}]}
    kept = prune(data, ("pollCreate.question", "pollCreate.options[]",
                        "contacts[].name.given"))
    assert kept == {"pollCreate": {"question": "q", "options": ["a"]},
                    "contacts": [{"name": {"given": "Jo"}}]}


# What a hostile server could put at any of the table's paths, or anywhere else.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=8)


@st.composite
def hostile_items(draw: st.DrawFn, platform: str) -> dict[str, Any]:
    """Items with odd or ordinary values at some of the platform's paths (read or not)."""
    found: dict[str, Any] = draw(st.dictionaries(st.text(max_size=4), JSON_VALUES,
                                                 max_size=2))
    rows = [f for f in FIELDS if f.platform == platform and f.path]
    for row in draw(st.lists(st.sampled_from(rows), max_size=5)):
        value = draw(JSON_VALUES | st.text(min_size=1, max_size=12))
        found = kinds.merged(found, kinds.place(row.path, value))
    return found


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([TELEGRAM, SIGNAL, "bluesky"]).flatmap(
    lambda p: st.tuples(st.just(p), hostile_items(p))))
def test_any_shape_at_any_path_is_read_or_passed_never_raised(case: tuple[str, Any]) -> None:
    platform, item = case
    text, pieces = words(platform, item)
    assert isinstance(text, str) and all(isinstance(p, str) and p.strip() for p in pieces)


@settings(max_examples=150, deadline=None)
@given(hostile_items("bluesky"), st.sampled_from(["app.bsky.feed.post",
                                                  "app.bsky.actor.profile", None]),
       st.text(min_size=1, max_size=12).filter(str.strip))
def test_any_bluesky_record_keeps_its_text(item: dict[str, Any], kind: str | None,
                                           text: str) -> None:
    """However odd the rest of a record (the SDK may fail to type it), its text is read."""
    record = item | {"text": text} | ({"$type": kind} if kind else {})
    for form in (record, as_model(record)):
        found, pieces = record_words(form)
        assert isinstance(found, str) and all(isinstance(p, str) for p in pieces)
        if kind is not None:
            assert text in found


SAM_DIRECTORY = Directory(account="+15550000001", person_uuids={"u-sam": "sam"})


@settings(max_examples=200, deadline=None)
@given(hostile_items(SIGNAL), st.sampled_from(["dataMessage", "editMessage.dataMessage"]),
       st.dictionaries(st.sampled_from(["attachments", "mentions", "message", "quote"]),
                       JSON_VALUES))
def test_the_journal_copy_keeps_every_word(item: dict[str, Any], where: str,
                                           odd: dict[str, Any]) -> None:
    """What is kept in the store until an envelope is handled (slim) is what is handled:
    an envelope and its copy make the same event, so no read field is lost on the way; and
    an odd value in any field of the table costs nothing but that field."""
    content = item.get("dataMessage")
    if not isinstance(content, dict):
        return
    data = {"timestamp": 1700000000000, **content, **odd}
    body = kinds.place(where, data)
    if where.startswith("editMessage"):
        body["editMessage"]["targetSentTimestamp"] = 1699999999000
    envelope = {"sourceUuid": "u-sam", "timestamp": 1700000000000, **body}
    whole = person_draft(SAM_DIRECTORY, "sam", envelope)  # odd fields never raise
    kept = person_draft(SAM_DIRECTORY, "sam", slim(envelope))
    assert (kept and kept.event) == (whole and whole.event)


MENTIONED = st.fixed_dictionaries({"start": st.integers(0, 50) | JSON_VALUES}, optional={
    "uuid": st.sampled_from(["u-alex", "u-other"]),
    "number": st.sampled_from(["+15550000002", "+15559999999"]),
    "name": st.sampled_from(["+15559999999", "u-other"])})


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["ask ", "\ufffc", " now", "ok"]), max_size=8),
       st.lists(MENTIONED | JSON_VALUES, max_size=4) | JSON_VALUES)
def test_mentions_become_names_and_never_numbers(parts: list[str], mentions: Any) -> None:
    """Each placeholder becomes "@" and the config's name (Alex, known by number or uuid)
    or a bare "@": never a number, a uuid or the placeholder itself, whatever the list."""
    directory = Directory(account="+15550000001")
    directory.names.update({"u-alex": "Alex", "+15550000002": "Alex"})
    text = with_mentions(directory, {"message": "".join(parts), "mentions": mentions})
    assert MENTION not in text and text.count("@") == parts.count(MENTION)
    assert not re.search(r"\+1555|u-other|u-alex", text)
    assert text.replace("@Alex", "@").count("@") == parts.count(MENTION)


# ----------------------------------------------------------------------- shared checking


@dataclass
class Expected:
    """One item sent, and what must come of it."""

    row: Field
    how: str  # "new" or "edit" or another wrapper
    key: str  # the incident's event key (or its start, for an edit's)
    prefix: bool = False
    code: str = field(init=False)

    def __post_init__(self) -> None:
        self.code = kinds.code_for(self.row)

    def fired(self, incident: Incident) -> bool:
        key = incident.event_key or ""
        hit = key.startswith(self.key) if self.prefix else key == self.key
        return hit and incident.code == self.code

    def label(self) -> str:
        return f"{self.row.platform} {self.row.kind} `{self.row.path}` ({self.how})"


def unmatched(expected: list[Expected], incidents: list[Incident]) -> list[str]:
    return [e.label() for e in expected if not any(e.fired(i) for i in incidents)]


async def all_alerted(expected: list[Expected], incidents: Callable[[], list[Incident]],
                      alerts: Callable[[], list[str]], platform: str) -> None:
    """Every item opened its incident, and every alert rendered the words it matched."""
    try:
        await eventually(lambda: not unmatched(expected, incidents()), "every kind",
                         timeout=60)
    except AssertionError:
        raise AssertionError(f"no alert for: {unmatched(expected, incidents())}") from None
    assert len(incidents()) == len(expected), "an item fired twice or an extra one fired"
    def every_alert() -> list[str] | None:
        sent = alerts()
        return sent if len(sent) >= len(expected) else None

    sent = await eventually(every_alert, "every alert sent", timeout=60)
    assert len(sent) == len(expected), "an alert was sent twice"
    for text in sent:
        found = re.fullmatch(rf"Sam used (pineapple|sos) on {platform}: \[(.+)\] (.*)", text,
                             re.S)
        assert found, f"an alert did not render: {text!r}"
        assert (kinds.PHRASE if found[1] == "pineapple" else kinds.EMOJI) in found[2].lower()


# ---------------------------------------------------------------------------------- Telegram

SAM, ALEX = 5001, 5002
GROUP = -1001234567890


def telegram_config(tg: FakeTelegram, folder: Path) -> Config:
    extra = f"""
    [people.sam.telegram]
    user_id = {SAM}

    [contacts.alex.telegram]
    chat_id = {ALEX}

    [connectors.telegram]
    token = {{ env = "TG_TOKEN" }}
    api_url = "{tg.url}"
    chats = [{GROUP}]
    poll_timeout = 1
    """ + CODES_TOML
    return load(write_config(folder, extra=extra), environ={"TG_TOKEN": tg.token})


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_user(SAM, "Sam")
        server.add_user(ALEX, "Alex")
        server.add_chat(GROUP, "supergroup", "Family")
        server.set_bot_member(GROUP, "administrator")
        yield server
        assert server.writes_to(GROUP) == [] and server.writes_to(SAM) == []


class Running:
    """An App on `config`, running as `watcher run` does, until closed."""

    def __init__(self, config: Config, folder: Path) -> None:
        self.out = io.StringIO()
        self.app = App(config, database=folder / "w.db", stdout=self.out)
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(self.app.run(stop=self.stop))

    def incidents(self) -> list[Incident]:
        return self.app.store.incidents()

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)
        await self.app.aclose()


def telegram_items(tg: FakeTelegram) -> list[Expected]:
    """Each read row as a new message, and as an edit that adds it to a plain message."""
    expected: list[Expected] = []
    for row in kinds.read_rows(TELEGRAM):
        content = kinds.item(row, kinds.TELEGRAM)
        new = tg.inject_message(GROUP, SAM, **content)["message"]["message_id"]
        plain = tg.inject_message(GROUP, SAM, "hello")["message"]["message_id"]
        tg.inject_message(GROUP, SAM, kind="edited_message", message_id=plain, **content)
        expected += [Expected(row, "new", f"telegram:{GROUP}/{new}"),
                     Expected(row, "edit", f"telegram:{GROUP}/{plain}/edit/", prefix=True)]
    return expected


async def test_every_telegram_kind_read_alerts(tg: FakeTelegram, tmp_path: Path) -> None:
    watch = Running(telegram_config(tg, tmp_path), tmp_path)
    try:
        await tg.wait_polling(timeout=8)
        expected = telegram_items(tg)
        await all_alerted(expected, watch.incidents,
                          lambda: [m.get("text", "") for m in tg.sent_messages(ALEX)],
                          TELEGRAM)
    finally:
        await watch.close()


async def test_a_new_kind_is_one_row(tg: FakeTelegram, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A kind from a Bot API newer than PTB (made up here) is kept by PTB in api_kwargs and
    breaks nothing; adding its row to the table is all it takes for a code in it to fire.
    A modelled kind with fields PTB does not know (the checklist) is read as well."""
    row = Field(TELEGRAM, "memo", "memo.lines[].text", True, "a made-up future kind")
    monkeypatch.setattr(item_fields, "FIELDS", (*FIELDS, row))
    watch = Running(telegram_config(tg, tmp_path), tmp_path)
    try:
        await tg.wait_polling(timeout=8)
        memo = tg.inject_message(GROUP, SAM, memo={"lines": [{"text": kinds.PHRASE}]})
        listed = tg.inject_message(GROUP, SAM, checklist={
            "title": kinds.PHRASE, "tasks": [], "colour": "blue", "unknown": {"a": 1}})
        await eventually(lambda: len(watch.incidents()) == 2, "both items")
        found = watch.incidents()
        assert {i.event_key for i in found} == {
            f"telegram:{GROUP}/{u['message']['message_id']}" for u in (memo, listed)}
    finally:
        await watch.close()


LONG = ("word " * 2000)[:4096 - len(kinds.PHRASE) - 1] + " " + kinds.PHRASE


async def test_alerts_from_the_longest_items_still_fit(tg: FakeTelegram,
                                                        tmp_path: Path) -> None:
    """A code at the end of the longest text Telegram allows, and in a long poll: the alert
    names the words matched, not the whole item, so it stays within one Telegram message."""
    watch = Running(telegram_config(tg, tmp_path), tmp_path)
    try:
        await tg.wait_polling(timeout=8)
        tg.inject_message(GROUP, SAM, LONG)
        long_poll = kinds.TELEGRAM["poll"]["poll"] | {"question": LONG[-300:]}
        long_poll["options"] = [o | {"text": "x" * 100} for o in long_poll["options"]]
        tg.inject_message(GROUP, SAM, poll=long_poll)
        await eventually(lambda: len(tg.sent_messages(ALEX)) == 2, "both alerts")
        for alert in tg.sent_messages(ALEX):
            assert len(alert["text"]) < 300 and f"[{kinds.PHRASE}]" in alert["text"]
    finally:
        await watch.close()


# ---------------------------------------------------------------------------------- Signal

ACCOUNT = "+15550000001"
SAM_SIGNAL = Contact("5a3e0c1e-0000-4000-8000-000000000005", "+15550000005", "Sam")
ALEX_SIGNAL = make_contact("+15550000002", "Alex")


def signal_config(api: FakeSignalApi, folder: Path, account: str) -> Config:
    contact = "" if account == SAM_SIGNAL.number else f"""
    [contacts.alex.signal]
    number = "{ALEX_SIGNAL.number}"
    """
    extra = contact + f"""
    [connectors.signal]
    url = "{api.base_url}"
    number = "{account}"
    mode = "normal"
    poll_interval = "1s"

    [people.sam.signal]
    uuid = "{SAM_SIGNAL.uuid}"
    number = "{SAM_SIGNAL.number}"
    """ + CODES_TOML
    return load(write_config(folder, extra=extra), environ={})


def envelope(body: dict[str, Any], ts: int) -> dict[str, Any]:
    return {"source": SAM_SIGNAL.number, "sourceNumber": SAM_SIGNAL.number,
            "sourceUuid": SAM_SIGNAL.uuid, "sourceName": "Sam", "sourceDevice": 1,
            "timestamp": ts, **body}


def data_of(row: Field, ts: int) -> dict[str, Any]:
    data: JSON = kinds.item(row, kinds.SIGNAL).get("dataMessage", {})
    return {"timestamp": ts, "expiresInSeconds": 0, "viewOnce": False} | data


# How each content arrives: as the survivor's own message or edit (received by any account),
# or as what their phone sent (a sync message: only when the linked account is theirs).
JSON = dict[str, Any]


def data_wrappers(own: bool) -> dict[str, Callable[[JSON, int], JSON]]:
    if not own:
        return {"new": lambda d, ts: {"dataMessage": d},
                "edit": lambda d, ts: {"editMessage": {"targetSentTimestamp": ts - 1000,
                                                       "dataMessage": d}}}
    return {"sent": lambda d, ts: {"syncMessage": {"sentMessage": d}},
            "sent edit": lambda d, ts: {"syncMessage": {"sentMessage": {
                "timestamp": ts, "editMessage": {"targetSentTimestamp": ts - 1000,
                                                 "dataMessage": d}}}}}


def story_wrappers(own: bool) -> dict[str, Callable[[JSON], JSON]]:
    if not own:
        return {"story": lambda s: {"storyMessage": s}}
    return {"sent story": lambda s: {"syncMessage": {"sentStoryMessage": s}}}


def blobs_of(body: dict[str, Any]) -> list[Blob]:
    """The attachments an envelope names, stored on the stand-in as the service would."""
    paths = ("dataMessage", "editMessage.dataMessage", "syncMessage.sentMessage",
             "syncMessage.sentMessage.editMessage.dataMessage")
    found = [a for p in paths for a in walk(body, f"{p}.attachments[]")]
    return [Blob(a["id"], b"%PDF", a["contentType"], a.get("filename")) for a in found]


def signal_items(api: FakeSignalApi, own: bool) -> list[Expected]:
    author = SAM_SIGNAL.uuid
    expected: list[Expected] = []
    for row in kinds.read_rows(SIGNAL):
        if row.path.startswith("storyMessage."):
            story = kinds.item(row, kinds.SIGNAL)["storyMessage"]
            for how, put in story_wrappers(own).items():
                ts = next_ts()
                api.inject(envelope(put(story), ts))
                expected.append(Expected(row, how, f"signal:{author}/story/{ts}"))
            continue
        for how, wrap in data_wrappers(own).items():
            ts = next_ts()
            body = wrap(data_of(row, ts), ts)
            api.inject(envelope(body, ts), blobs=blobs_of(body))
            key = f"{ts - 1000}/edit/{ts}" if "edit" in how else str(ts)
            expected.append(Expected(row, how, f"signal:{author}/{key}"))
    return expected


@pytest.mark.parametrize("own", [False, True], ids=["contact-account", "own-account"])
async def test_every_signal_kind_read_alerts(tmp_path: Path, own: bool) -> None:
    account = SAM_SIGNAL.number if own else ACCOUNT
    assert account is not None
    async with FakeSignalApi(account, mode="normal") as api:
        watch = Running(signal_config(api, tmp_path, account), tmp_path)
        try:
            expected = signal_items(api, own)
            await all_alerted(expected, watch.incidents, lambda: alert_texts(watch, api),
                              SIGNAL)
            assert SAM_SIGNAL.number not in api.sent_to() or own
            assert api.attachments == {}  # every attachment deleted once its event stored
        finally:
            await watch.close()


def alert_texts(watch: Running, api: FakeSignalApi) -> list[str]:
    """What reached Alex: over Signal, or the console when the account is Sam's own (the
    watcher never alerts from the survivor's own account)."""
    sent = [c.body["message"] for c in api.sends() if c.status == 201]
    return sent or re.findall(r"Sam used .*", watch.out.getvalue())


async def test_a_long_signal_text_alerts_in_a_short_message(tmp_path: Path) -> None:
    """signal-cli puts a long text (sent as a text attachment) back in `message`."""
    async with FakeSignalApi(ACCOUNT, mode="normal") as api:
        watch = Running(signal_config(api, tmp_path, ACCOUNT), tmp_path)
        try:
            ts = next_ts()
            api.inject(envelope({"dataMessage": {"timestamp": ts, "message": LONG * 5}}, ts))
            [alert] = await eventually(lambda: alert_texts(watch, api), "the alert")
            assert len(alert) < 300 and f"[{kinds.PHRASE}]" in alert
        finally:
            await watch.close()


async def test_signal_mentions_are_put_back_as_the_survivor_saw_them(tmp_path: Path) -> None:
    """"ask @Alex about the network" arrives as "ask \ufffc about the network" plus a list of
    who was mentioned: without putting the name back, the code would be missed."""
    async with FakeSignalApi(ACCOUNT, mode="normal") as api:
        watch = Running(signal_config(api, tmp_path, ACCOUNT), tmp_path)
        try:
            ts = next_ts()
            mention = {"name": ALEX_SIGNAL.number, "number": ALEX_SIGNAL.number,
                       "uuid": ALEX_SIGNAL.uuid, "start": 4, "length": 1}
            api.inject(envelope({"dataMessage": {
                "timestamp": ts, "message": "ask \ufffc about the network",
                "mentions": [mention]}}, ts))
            [incident] = await eventually(watch.incidents, "the mention code")
            assert incident.code == "ask-alex"
        finally:
            await watch.close()
