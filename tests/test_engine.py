"""The engine dedupes across restarts and records what fired with the event, atomically."""

from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from detectors.codes import build_detectors
from tests.conftest import Clock
from watcher.core.config import Config, load
from watcher.core.migrations import MIGRATIONS
from watcher.core.models import Event, FileImage
from watcher.core.store import Store, StoreError
from watcher.engine.engine import Engine

AT = datetime(2026, 11, 22, 14, 2, tzinfo=UTC)


def event(n: int, text: str = "hello", **kw: object) -> Event:
    return Event(platform="telegram", person="sam", kind="message", id=f"chat/{n}", at=AT,
                 text=text, **kw)  # type: ignore[arg-type]


def engine(config: Config, db: Path, clock: Clock) -> Engine:
    detectors, _ = build_detectors(config)
    return Engine(config, Store(db), detectors, clock)


async def test_match_opens_incident_with_run(config_path: Path, tmp_path: Path) -> None:
    config = load(config_path, environ={})
    eng = engine(config, tmp_path / "w.db", Clock())
    outcome = await eng.ingest(event(1, "argh the network went down at work"))
    assert [m.code for m in outcome.matches] == ["network-down"]
    assert outcome.incidents == (1,)
    incident = eng.store.incident(1)
    assert incident is not None and incident.code == "network-down"
    assert incident.matched == "the network went down at work"
    assert eng.store.pending_runs() == 1


async def test_dedupe_across_restart(config_path: Path, tmp_path: Path) -> None:
    config = load(config_path, environ={})
    first = engine(config, tmp_path / "w.db", Clock())
    await first.ingest(event(1, "the network went down at work"))
    first.store.close()
    second = engine(config, tmp_path / "w.db", Clock())
    again = await second.ingest(event(1, "the network went down at work"))
    assert again.duplicate and not again.incidents
    assert len(second.store.incidents()) == 1


async def test_other_person_and_no_match(config_path: Path, tmp_path: Path) -> None:
    config = load(config_path, environ={})
    eng = engine(config, tmp_path / "w.db", Clock())
    other = Event(platform="telegram", person="alex", kind="message", id="x/1", at=AT,
                  text="the network went down at work")
    assert not (await eng.ingest(other)).matches
    assert not (await eng.ingest(event(2, "networking event at work today"))).matches


async def test_image_code_and_detection_failure(config_path: Path, tmp_path: Path) -> None:
    config = load(config_path, environ={})
    eng = engine(config, tmp_path / "w.db", Clock())
    examples = Path(__file__).parent.parent / "examples" / "photos"
    hit = await eng.ingest(event(3, images=(FileImage(examples / "flower-as-posted.jpg"),)))
    assert [m.code for m in hit.matches] == ["flower"]
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8\xff\xe0not really a jpeg")
    failed = await eng.ingest(event(4, images=(FileImage(junk),)))
    assert not failed.matches
    # Only the image code looks at images (phrase codes read them only with in_images).
    assert sorted(f.split(":")[0] for f in failed.failures) == ["flower"]


async def test_crash_inside_transaction_leaves_event_unseen(config_path: Path,
                                                           tmp_path: Path) -> None:
    config = load(config_path, environ={})
    eng = engine(config, tmp_path / "w.db", Clock())
    # A read-only database makes the transaction fail after detection: nothing half-written.
    eng.store.conn.execute("PRAGMA query_only = 1")
    with pytest.raises(StoreError):
        await eng.ingest(event(5, "the network went down at work"), ("feed", "5"))
    eng.store.conn.execute("PRAGMA query_only = 0")
    assert not eng.store.seen("telegram:chat/5")
    assert eng.store.cursor("feed") is None
    assert (await eng.ingest(event(5, "the network went down at work"))).incidents == (1,)


def test_database_is_private_wal_and_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state" / "w.db"
    store = Store(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    store.close()
    Store(path).close()  # re-opening runs no migration twice


def test_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(path)
    assert isinstance(StoreError("x"), Exception) and sqlite3.sqlite_version


async def test_retention_purges_old_dedupe_keys_only(config_path: Path, tmp_path: Path) -> None:
    config = load(config_path, environ={})
    clock = Clock()
    eng = engine(config, tmp_path / "w.db", clock)
    await eng.ingest(event(1, "the network went down at work"), ("feed", "1"))
    clock.advance(days=100)
    await eng.ingest(event(2))
    with eng.store.transaction():
        removed = eng.store.purge_seen(clock() - timedelta(days=90))
    assert removed == 1
    assert not eng.store.seen("telegram:chat/1") and eng.store.seen("telegram:chat/2")
    assert eng.store.cursor("feed") == "1" and len(eng.store.incidents()) == 1


def test_reference_hashes_are_cached_in_the_database(config_path: Path, tmp_path: Path) -> None:
    from detectors.codes import build_detectors as build
    from watcher.core.store import ImageCache

    photos = Path(__file__).parent.parent / "examples" / "photos"
    reference = config_path.parent / "flower.jpg"
    flower = reference.read_bytes()
    cache = ImageCache(Store(tmp_path / "w.db"))
    build(load(config_path, environ={}), cache)
    [flower_key] = list(cache)
    reference.write_bytes((photos / "holiday.jpg").read_bytes())
    build(load(config_path, environ={}), cache)
    [holiday_key] = [k for k in cache if k != flower_key]
    # Swap what is stored for the flower: if the next build reads the cache (and does not
    # hash the file again), it recognises the holiday photo instead of the flower.
    reference.write_bytes(flower)
    cache[flower_key] = cache[holiday_key]
    detectors, _ = build(load(config_path, environ={}), cache)
    probe = detectors["flower"]
    holiday = event(7, images=(FileImage(photos / "holiday.jpg"),))
    posted = event(8, images=(FileImage(photos / "flower-as-posted.jpg"),))
    assert probe.match(holiday) is not None and probe.match(posted) is None


def test_codes_whose_photos_look_alike_are_warned_about(tmp_path: Path) -> None:
    from tests.conftest import write_config

    extra = '[codes.flower-again]\nperson = "sam"\nimage = ["flower.jpg"]\n' \
            'playbook = "check-on-me"\n'
    config = load(write_config(tmp_path, extra=extra), environ={})
    _, warnings = build_detectors(config)
    assert any("flower" in w and "flower-again" in w for w in warnings), warnings
