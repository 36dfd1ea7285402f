"""Rules on top of detectors: cooldown, armed windows, confirmation by a second code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from detectors.codes import build_detectors
from tests.conftest import Clock, write_config
from watcher.core.config import load
from watcher.core.models import Event
from watcher.core.store import Store
from watcher.engine.engine import Engine

BASE = datetime(2026, 11, 22, 14, 0, tzinfo=UTC)  # 14:00 in London (GMT in November)


def engine(tmp_path: Path, extra: str, edit: tuple[str, str] | None = None) -> Engine:
    path = write_config(tmp_path, extra=extra)
    if edit:
        path.write_text(path.read_text().replace(*edit))
    config = load(path, environ={})
    return Engine(config, Store(tmp_path / "w.db"), build_detectors(config)[0], Clock())


def said(n: int, text: str, minutes: float = 0) -> Event:
    return Event(platform="signal", person="sam", kind="message", id=f"m{n}",
                 at=BASE + timedelta(minutes=minutes), text=text)


async def test_cooldown_joins_the_open_incident(tmp_path: Path) -> None:
    eng = engine(tmp_path, "", ('playbook = "call-police"',
                                'playbook = "call-police"\ncooldown = "6h"'))
    first = await eng.ingest(said(1, "the network went down at work"))
    again = await eng.ingest(said(2, "the network went down at work!!"))
    assert first.incidents == (1,) and again.incidents == ()
    assert [m.code for m in again.matches] == ["network-down"]
    rows = eng.store.conn.execute("SELECT incident_id FROM matches ORDER BY id").fetchall()
    assert [r[0] for r in rows] == [1, 1]
    eng.clock.advance(hours=7)  # type: ignore[attr-defined]
    assert (await eng.ingest(said(3, "the network went down at work"))).incidents == (2,)


async def test_without_cooldown_each_use_alerts(tmp_path: Path) -> None:
    eng = engine(tmp_path, "")
    await eng.ingest(said(1, "the network went down at work"))
    assert (await eng.ingest(said(2, "the network went down at work"))).incidents == (2,)


async def test_armed_window_in_the_persons_time_zone(tmp_path: Path) -> None:
    eng = engine(tmp_path, "", ('playbook = "call-police"',
                                'playbook = "call-police"\narmed = ["22:00-07:00"]'))
    assert not (await eng.ingest(said(1, "the network went down at work"))).incidents
    late = said(2, "the network went down at work", minutes=9 * 60)  # 23:00
    assert (await eng.ingest(late)).incidents == (1,)
    early = said(3, "the network went down at work", minutes=16 * 60 + 59)  # 06:59 next day
    assert (await eng.ingest(early)).incidents == (2,)
    seven = said(4, "the network went down at work", minutes=17 * 60)  # 07:00: disarmed
    assert not (await eng.ingest(seven)).incidents


CONFIRM = """
[codes.blue-umbrella]
person = "sam"
phrase = ["my blue umbrella broke"]
"""


async def test_confirmation_in_either_order_within_the_window(tmp_path: Path) -> None:
    eng = engine(tmp_path, CONFIRM, ('playbook = "call-police"', 'playbook = "call-police"\n'
                                     'confirm = { code = "blue-umbrella", within = "30m" }'))
    alone = await eng.ingest(said(1, "the network went down at work"))
    assert not alone.incidents
    confirmed = await eng.ingest(said(2, "ugh my blue umbrella broke", minutes=20))
    assert confirmed.incidents == (1,)
    incident = eng.store.incident(1)
    assert incident is not None and incident.event_key == "signal:m1"
    # The other order: confirmer first, code second.
    await eng.ingest(said(3, "my blue umbrella broke", minutes=120))
    assert (await eng.ingest(said(4, "the network went down at work", minutes=125))
            ).incidents == (2,)


async def test_confirmation_outside_the_window_does_not_fire(tmp_path: Path) -> None:
    eng = engine(tmp_path, CONFIRM, ('playbook = "call-police"', 'playbook = "call-police"\n'
                                     'confirm = { code = "blue-umbrella", within = "30m" }'))
    await eng.ingest(said(1, "the network went down at work"))
    late = await eng.ingest(said(2, "my blue umbrella broke", minutes=31))
    assert not late.incidents and not eng.store.incidents()


def test_confirm_must_name_a_code(tmp_path: Path) -> None:
    import pytest

    from watcher.core.config import ConfigError

    path = write_config(tmp_path)
    path.write_text(path.read_text().replace(
        'playbook = "call-police"',
        'playbook = "call-police"\nconfirm = { code = "nope", within = "30m" }'))
    with pytest.raises(ConfigError) as info:
        load(path, environ={})
    assert info.value.problems == ['codes.network-down.confirm.code: no code "nope"; '
                                   "known codes: flower, network-down"]
