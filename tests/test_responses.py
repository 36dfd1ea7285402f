"""Contacts acknowledge, stand down and ask for status; strangers are never answered."""

from __future__ import annotations

import asyncio
import io
import tempfile
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.codes import build_detectors
from playbooks.channels import ConsoleChannel
from playbooks.responses import Responder, is_ack_text
from playbooks.runner import PlaybookRunner
from tests.conftest import Clock, write_config
from watcher.core.channel import Channel
from watcher.core.config import Config, load
from watcher.core.models import DeliveryError, Event, IncidentState, Response
from watcher.core.store import Store
from watcher.engine.engine import Engine

AT = datetime(2026, 11, 22, 14, 2, tzinfo=UTC)


class PlatformStandIn:
    """Stands in for a messaging service behind the apprise channel: records what was sent
    and returns message ids, as Telegram or Signal would."""

    name = "apprise"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int | None]] = []
        self.refuse: set[str] = set()

    async def send(self, contact: str, address: str, text: str,
                   incident: int | None = None) -> str | None:
        if contact in self.refuse:
            raise DeliveryError("chat not found", permanent=True)
        self.sent.append((contact, text, incident))
        return f"msg-{len(self.sent)}"

    def to(self, contact: str) -> list[str]:
        return [t for c, t, _ in self.sent if c == contact]


class Rig:
    def __init__(self, config: Config, db: Path, clock: Clock) -> None:
        self.clock = clock
        self.store = Store(db)
        self.engine = Engine(config, self.store, build_detectors(config)[0], clock)
        self.chat = PlatformStandIn()
        self.out = io.StringIO()
        channels: dict[str, Channel] = {"console": ConsoleChannel(config, self.out),
                                        "apprise": self.chat}
        self.runner = PlaybookRunner(config, self.store, channels, clock)
        self.responder = Responder(config, self.store, clock)

    async def use(self, n: int, text: str = "the network went down at work") -> int:
        outcome = await self.engine.ingest(Event(platform="telegram", person="sam",
                                                 kind="message", id=f"c/{n}", at=AT, text=text))
        await self.settle()
        return outcome.incidents[0] if outcome.incidents else 0

    async def settle(self) -> None:
        while await self.runner.tick():
            pass

    def say(self, contact: str, text: str = "", **kw: object) -> str | None:
        return self.responder.handle(Response(channel="apprise", contact=contact, text=text,
                                              **kw))  # type: ignore[arg-type]


def rig(tmp_path: Path, extra: str = "", edit: tuple[str, str] | None = None,
        platform: bool = False) -> Rig:
    """`platform`: reach Alex and Jo through the stand-in platform instead of the console."""
    path = write_config(tmp_path, extra=extra)
    text = path.read_text()
    if edit:
        text = text.replace(*edit)
    if platform:
        for name in ("Alex", "Jo"):
            text = text.replace(f'name = "{name}"\nconsole = true',
                                f'name = "{name}"\napprise = ["json://127.0.0.1:9/{name}"]')
    path.write_text(text)
    return Rig(load(path, environ={}), tmp_path / "w.db", Clock())


def test_ack_words() -> None:
    for text in ("OK", "ok!", "On it.", "I'm on it", "👍", "👍🏽", "/ack", "  yes  "):
        assert is_ack_text(text), text
    for text in ("what happened?", "not ok", "okra", "call me", "okay, calling now", "k"):
        assert not is_ack_text(text), text


async def test_plain_ok_acknowledges_and_stops_escalation(tmp_path: Path) -> None:
    r = rig(tmp_path)
    incident = await r.use(1)
    assert r.say("jo", "On it!") == "Thank you. You are handling alert #1; Alex was told."
    state = r.store.incident(incident)
    assert state is not None and state.state == IncidentState.ACKNOWLEDGED
    await r.settle()
    assert "Jo is handling Sam's alert (#1, 'network-down' at 14:02 GMT)." in r.out.getvalue()
    r.clock.advance(hours=1)
    await r.settle()
    assert r.out.getvalue().count("Nobody has confirmed") == 0
    assert r.say("alex", "ok") == "Alert #1 is already being handled by Jo."


async def test_on_ack_template_is_used(tmp_path: Path) -> None:
    extra = ""
    r = rig(tmp_path, extra, ("[playbooks.check-on-me]",
                              "on_ack = { notify = [\"alex\"], message = \"{acker} took it.\" }"
                              "\n\n[playbooks.check-on-me]"))
    await r.use(1)
    r.say("alex", "ok")
    await r.settle()
    assert "Alex took it." in r.out.getvalue()


async def test_reply_picks_the_incident_when_several_are_open(tmp_path: Path) -> None:
    r = rig(tmp_path, platform=True)
    first = await r.use(1)
    second = await r.use(2)
    assert r.say("alex", "ok").startswith("Several alerts are open (#1, #2)")  # type: ignore[union-attr]
    rows = r.store.deliveries(second)
    row = next(row for row in rows if row["contact"] == "alex")
    ref, chat = row["platform_ref"], row["address"]
    assert r.say("alex", "ok", reply_to=ref, chat=chat) is not None
    assert r.store.incident(second).state == IncidentState.ACKNOWLEDGED  # type: ignore[union-attr]
    assert r.store.incident(first).state == IncidentState.OPEN  # type: ignore[union-attr]
    assert r.say("alex", emoji="👍", reply_to="not-an-alert") is None
    # Without the chat it was said in, a message id names nothing: no guessing.
    assert r.store.incident_by_ref("apprise", None, ref) is None


async def test_strangers_and_untold_contacts_get_nothing(tmp_path: Path) -> None:
    r = rig(tmp_path, '[contacts.nan]\nname = "Nan"\nconsole = true\n')
    await r.use(1)
    assert r.say("mallory", "ok") is None
    assert r.say("mallory", "/status") is None
    assert r.say("mallory", "/standdown") is None
    # Nan is a contact, but was not told about alert #1: she cannot act on it, or see it.
    assert r.say("nan", "ok") == "There is no open alert for you to acknowledge."
    assert r.say("nan", "/ack 1") == "No alert #1 was sent to you."
    assert r.say("nan", "/standdown 1") == "No alert #1 was sent to you."
    assert r.say("nan", "/status") == "No open alerts."
    assert r.store.incident(1).state == IncidentState.OPEN  # type: ignore[union-attr]


async def test_standdown_command_tells_everyone(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await r.use(1)
    assert r.say("alex", "/standdown") == "Stood down: #1. Everyone alerted is told."
    await r.settle()
    text = r.out.getvalue()
    assert text.count("Stand down: Sam's alert (#1, 'network-down') was ended by Alex.") == 2
    r.clock.advance(hours=1)
    await r.settle()
    assert "Nobody has confirmed" not in r.out.getvalue()
    assert "#1 network-down" not in (r.say("alex", "/status") or "")


async def test_stand_down_code(tmp_path: Path) -> None:
    r = rig(tmp_path, '[codes.all-good]\nperson = "sam"\nphrase = ["the tomatoes are ripe"]\n'
                      'stand_down = true\n')
    await r.use(1)
    await r.use(2, "Look, the tomatoes are ripe!")
    assert r.store.incident(1).state == IncidentState.STOOD_DOWN  # type: ignore[union-attr]
    assert "was ended by the stand-down code" in r.out.getvalue()


async def test_false_all_clear_keeps_incident_open(tmp_path: Path) -> None:
    extra = """
    [codes.coerced]
    person = "sam"
    phrase = ["all fine ignore me"]
    false_all_clear = true
    playbook = "check-on-me"
    """
    r = rig(tmp_path, extra)
    await r.use(1)
    await r.use(2, "All fine, ignore me!!")
    assert r.store.incident(1).state == IncidentState.OPEN  # type: ignore[union-attr]
    text = r.out.getvalue()
    assert text.count("posted the agreed FALSE all-clear: they are NOT safe") == 2
    r.clock.advance(minutes=5)
    await r.settle()
    assert "Nobody has confirmed yet for Sam." in r.out.getvalue()  # still escalates


async def test_permanent_failure_is_reported_to_the_others(tmp_path: Path) -> None:
    r = rig(tmp_path, platform=True)
    r.chat.refuse = {"jo", "alex"}
    await r.use(1)
    rows = r.store.deliveries(1)
    assert {row["status"] for row in rows} == {"failed"}
    # Each failure produced one notice to the other contact, whose own failure stops there.
    kinds = sorted(row["kind"] for row in rows)
    assert kinds == ["alert", "alert", "failure", "failure"]
    r.chat.refuse = {"alex"}
    await r.use(2)
    assert any("Could not deliver alert #2 about Sam to Alex (apprise: chat not found)" in t
               for t in r.chat.to("jo"))


NEVER_ACK = st.one_of(
    st.tuples(st.text(max_size=30), st.sampled_from(["?", "¿", "？"]), st.text(max_size=30))
    .map("".join),
    st.tuples(st.sampled_from(["ok", "yes", "on it", "got it", "👍"]),
              st.sampled_from(["not", "no", "can't", "cannot", "won't", "someone else"]),
              st.booleans()).map(lambda t: f"{t[1]} {t[0]}" if t[2] else f"{t[0]}, {t[1]}"),
    st.lists(st.sampled_from(["ok", "yes", "on", "it", "I", "am", "got", "go", "👍"]),
             min_size=5, max_size=9).map(" ".join),
)


@cache
def shared_rig() -> Rig:
    return rig(Path(tempfile.mkdtemp(prefix="responses-")), platform=True)


@settings(max_examples=200, deadline=None)
@given(NEVER_ACK, st.booleans())
def test_no_question_negation_or_long_text_ever_acknowledges(text: str, quoted: bool) -> None:
    """Through the whole responder (commands included), quoted or not, with one alert open:
    it stays open, and the contact is never told they are handling it."""
    r = shared_rig()
    incident = asyncio.run(r.use(len(r.store.incidents()) + 1))
    row = next(row for row in r.store.deliveries(incident) if row["contact"] == "jo")
    extra = {"reply_to": row["platform_ref"], "chat": row["address"]} if quoted else {}
    said = r.say("jo", text, **extra)
    state = r.store.incident(incident).state  # type: ignore[union-attr]
    r.say("alex", f"/standdown {incident}")  # the next example starts with one alert open
    assert state == IncidentState.OPEN
    assert said is None or "You are handling" not in said
