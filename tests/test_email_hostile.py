"""Hostile mail through the whole path (Dovecot, imaplib, the connector, the App): random
bytes never stop the folder, and a forged From does not fire when a pass is required."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import write_config
from tests.servers.dovecot import Dovecot, make_message
from watcher.app import App
from watcher.core.config import Config, load

pytestmark = pytest.mark.timeout(300)
SAM = "sam@example.org"
CODE = "the network went down at work"


def config_for(server: Dovecot, folder: Path, extra: str = "") -> Config:
    text = f"""
    [connectors.email]
    host = "127.0.0.1"
    port = {server.port}
    tls = "none"
    username = "{server.user}"
    password = {{ env = "IMAP_PASSWORD" }}
    {extra}

    [people.sam.email]
    addresses = ["{SAM}"]
    """
    return load(write_config(folder, extra=text), environ={"IMAP_PASSWORD": server.password})


def once(config: Config, db: Path) -> App:
    """`watcher run --once`: start every connector, read what is there, settle."""
    app = App(config, database=db, stdout=io.StringIO())
    asyncio.run(app.run(once=True))
    return app


def matched(app: App) -> int:
    return int(app.store.conn.execute("SELECT count(*) FROM matches").fetchone()[0])


@pytest.fixture(scope="module")
def server() -> Iterator[Dovecot]:
    with Dovecot() as imap:
        yield imap


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(junk=st.binary(max_size=3000), as_sam=st.booleans())
def test_random_mail_never_stops_the_folder(server: Dovecot, tmp_path_factory: pytest.
                                            TempPathFactory, junk: bytes, as_sam: bool) -> None:
    folder = tmp_path_factory.mktemp("hostile")
    config = config_for(server, folder)
    db = folder / "w.db"
    once(config, db).close()  # the baseline: what is already there is not read
    server.deliver((f"From: {SAM}\r\n".encode() if as_sam else b"") + junk)
    server.deliver(make_message(SAM, "hi", CODE))
    app = once(config, db)
    try:
        assert matched(app) == 1  # the good mail behind the hostile one still fires
        health = {h["feed"]: h for h in app.store.health()}
        assert health["sam/email"]["failures"] == 0
    finally:
        app.close()


def test_a_forged_from_does_not_fire_when_a_pass_is_required(server: Dovecot,
                                                              tmp_path: Path) -> None:
    config = config_for(server, tmp_path, 'require_auth = true\n    authserv_id = "mx.test"')
    db = tmp_path / "w.db"
    once(config, db).close()
    server.deliver(make_message(SAM, "forged", CODE, extra_headers={
        "Authentication-Results": "mx.forger.example; dmarc=pass header.from=example.org"}))
    server.deliver(make_message(SAM, "no checks", CODE))
    app = once(config, db)
    try:
        assert matched(app) == 0
    finally:
        app.close()
    server.deliver(make_message(SAM, "signed", CODE, extra_headers={
        "Authentication-Results": "mx.test; dkim=pass header.d=example.org; dmarc=pass"}))
    app = once(config, db)
    try:
        assert matched(app) == 1
    finally:
        app.close()
