"""The Bluesky connector end to end: the real App, the atproto SDK and HTTP/websockets against
a real local PDS + PLC (tests/fakes/pds.py), and a Jetstream stand-in fed by that PDS's
firehose. Nothing of our own is mocked. Deselect with -m "not pds"."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from atproto import models

from tests.conftest import EXAMPLES, write_config
from tests.conftest import eventually as until
from tests.fakes.jetstream import FakeJetstream
from tests.fakes.pds import LocalPds, pds, pds_session  # noqa: F401
from watcher.app import App
from watcher.core.config import load

pytestmark = [pytest.mark.pds, pytest.mark.timeout(60)]

PHRASE = "Ugh, the network went down at work again"
FLOWER = (EXAMPLES / "photos" / "flower-as-posted.jpg").read_bytes()
PROFILE = "app.bsky.actor.profile"



def rkey(uri: str) -> str:
    return uri.rsplit("/", 1)[1]


@dataclass
class People:
    """A survivor and a contact, each with a logged-in SDK client (driven off the loop)."""

    pds: LocalPds
    sam: Any
    sam_did: str
    sam_handle: str
    contact: Any
    contact_did: str
    contact_handle: str
    contact_post: Any

    @property
    def contact_url(self) -> str:
        return f"https://bsky.app/profile/{self.contact_handle}/post/{rkey(self.contact_post.uri)}"

    async def post(self, text: str) -> Any:
        return await asyncio.to_thread(self.sam.send_post, text)

    async def image(self, text: str, alt: str = "my garden") -> Any:
        return await asyncio.to_thread(self.sam.send_image, text, image=FLOWER, image_alt=alt)

    async def profile(self, description: str, avatar: bytes | None = None) -> None:
        def put() -> None:
            blob = self.sam.upload_blob(avatar).blob if avatar else None
            self.sam.com.atproto.repo.put_record(models.ComAtprotoRepoPutRecord.Data(
                repo=self.sam_did, collection=PROFILE, rkey="self",
                record=models.AppBskyActorProfile.Record(display_name="Sam",
                                                         description=description,
                                                         avatar=blob)))
        await asyncio.to_thread(put)


def make_people(server: LocalPds) -> People:
    sam, sam_did, sam_handle = server.new_account("sam")
    contact, contact_did, contact_handle = server.new_account("alex")
    contact_post = contact.send_post("How are you doing?")
    return People(server, sam, sam_did, sam_handle, contact, contact_did, contact_handle,
                  contact_post)


def bluesky_config(people: People, stream: str = "off", poll: str = "1s",
                   jetstream: str | None = None, handle: str | None = None) -> str:
    extra = f'jetstream = "{jetstream}"' if jetstream else ""
    return f"""
    [connectors.bluesky]
    service = "{people.pds.pds_url}"
    plc = "{people.pds.plc_url}"
    poll_interval = "{poll}"
    stream = "{stream}"
    {extra}

    [people.sam.bluesky]
    handle = "{handle or people.sam_handle}"

    [codes.liked-alex]
    person = "sam"
    reaction = {{ on = "{people.contact_url}" }}
    playbook = "check-on-me"
    """


class Rig:
    """An App on its own database, running as in `watcher run`."""

    def __init__(self, folder: Path, config_text: str, db: Path | None = None) -> None:
        self.config = load(write_config(folder, extra=config_text), environ={})
        self.db = db or folder / "w.db"
        self.out = io.StringIO()
        self.stop_event = asyncio.Event()
        self.app = App(self.config, database=self.db, stdout=self.out)
        self.task = asyncio.create_task(self.app.run(stop=self.stop_event))

    async def stop(self) -> None:
        self.stop_event.set()
        await asyncio.wait_for(self.task, 15)
        await self.app.aclose()

    def codes(self) -> list[str]:
        return sorted(i.code for i in self.app.store.incidents())

    def event_keys(self) -> set[str]:
        rows = self.app.store.conn.execute(
            "SELECT key FROM seen_events WHERE key LIKE 'bluesky:%'").fetchall()
        return {str(r[0]) for r in rows}

    def health(self) -> dict[str, Any]:
        return next((h for h in self.app.store.health() if h["feed"] == "sam/bluesky"), {})

    def cursor(self, name: str) -> str | None:
        return self.app.store.cursor(name)

    async def watching(self, did: str) -> None:
        """Wait for the first look at every collection (history recorded, not fired)."""
        names = [f"bluesky:{did}:{c}" for c in ("app.bsky.feed.post", PROFILE,
                 "app.bsky.feed.like", "app.bsky.feed.repost", "app.bsky.graph.follow")]
        await until(lambda: all(self.cursor(n) is not None for n in names))


def at(did: str, collection: str, key: str) -> str:
    return f"bluesky:at://{did}/{collection}/{key}"


# ----------------------------------------------------------------------------- polling


async def test_poll_codes_fire_once_and_resume_after_restart(
        tmp_path: Path, pds: LocalPds, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level(logging.DEBUG)
    people = await asyncio.to_thread(make_people, pds)
    # History from before the watch: a code, a like on the contact's post, a profile.
    await people.post(PHRASE)
    await asyncio.to_thread(people.sam.like, people.contact_post.uri, people.contact_post.cid)
    await people.profile("gardening and tea")

    rig = Rig(tmp_path, bluesky_config(people))
    try:
        await rig.watching(people.sam_did)
        await asyncio.sleep(1.2)  # a full poll round after the first look: still nothing
        assert rig.codes() == [] and rig.event_keys() == set()

        text = await people.post(PHRASE)
        photo = await people.image("the garden today")
        like = await asyncio.to_thread(people.sam.like, people.contact_post.uri,
                                       people.contact_post.cid)
        repost = await asyncio.to_thread(people.sam.repost, people.contact_post.uri,
                                         people.contact_post.cid)
        follow = await asyncio.to_thread(people.sam.follow, people.contact_did)
        await people.profile("gardening and tea", avatar=FLOWER)
        await until(lambda: len(rig.codes()) == 4)
        assert rig.codes() == ["flower", "flower", "liked-alex", "network-down"]

        did = people.sam_did
        wanted = {f"bluesky:{r.uri}" for r in (text, photo, like, repost, follow)}
        await until(lambda: wanted <= rig.event_keys())  # reposts, follows fire no code
        keys = rig.event_keys()
        profile_cid = rig.cursor(f"bluesky:{did}:{PROFILE}")
        assert at(did, PROFILE, f"self#{profile_cid}") in keys
        assert len(keys) == 6
        await until(lambda: "Sam used the 'network-down' code" in rig.out.getvalue())
        assert rig.health()["failures"] == 0
    finally:
        await rig.stop()

    # Posted while the watcher is down: read on the restart, and nothing fires twice.
    later = await people.post(PHRASE + "!")
    rig = Rig(tmp_path, bluesky_config(people))
    try:
        await until(lambda: len(rig.codes()) == 5)
        await asyncio.sleep(1.5)  # another poll round
        assert rig.codes() == ["flower", "flower", "liked-alex", "network-down", "network-down"]
        assert f"bluesky:{later.uri}" in rig.event_keys()
    finally:
        await rig.stop()
    assert "network went down" not in caplog.text  # NO LEAK: no post text in any log


async def test_outage_is_reported_once_and_nothing_is_lost(
        tmp_path: Path, pds: LocalPds, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    people = await asyncio.to_thread(make_people, pds)
    rig = Rig(tmp_path, bluesky_config(people))
    try:
        await rig.watching(people.sam_did)
        before = await people.post(PHRASE)
        await asyncio.to_thread(pds.stop)
        await until(lambda: rig.health().get("failures", 0) >= 1)
        blind_since = rig.health()["blind_since"]
        # Several failed polls: each one counted, the outage kept from its start, and
        # logged once (not once a second).
        await until(lambda: rig.health().get("failures", 0) >= 3)
        health = rig.health()
        assert health["blind_since"] == blind_since is not None
        assert "retrying" in health["detail"] and "network" not in health["detail"]
        reports = [r for r in caplog.records
                   if r.levelno >= logging.WARNING and "sam/bluesky" in r.getMessage()]
        assert len(reports) == 1
        await asyncio.to_thread(pds.start)
        after = await people.image("back online")
        await until(lambda: rig.codes() == ["flower", "network-down"])
        await until(lambda: rig.health().get("failures") == 0)
        assert {f"bluesky:{before.uri}", f"bluesky:{after.uri}"} <= rig.event_keys()
    finally:
        await rig.stop()


async def test_unresolvable_handle_is_a_blind_spot_not_a_crash(
        tmp_path: Path, pds: LocalPds) -> None:  # noqa: F811
    people = await asyncio.to_thread(make_people, pds)
    rig = Rig(tmp_path, bluesky_config(people, handle="nobody-here.test"))
    try:
        await until(lambda: bool(rig.health().get("detail")))
        assert "does not resolve" in rig.health()["detail"]
        assert "people.KEY.bluesky.did" in rig.health()["detail"]
        assert not rig.task.done()
    finally:
        await rig.stop()


# ----------------------------------------------------------------------------- streams


async def _same_events_as_polling(tmp_path: Path, people: People, stream: str,
                                  subscribed: Callable[[Rig], bool],
                                  jetstream: str | None = None) -> None:
    """A stream App (its polling slowed to once an hour) and a polling App watch the same
    survivor: the stream alone fires, and both end with the very same event ids."""
    streamed = Rig(tmp_path / "stream", bluesky_config(people, stream, "1h", jetstream))
    polled = Rig(tmp_path / "poll", bluesky_config(people))
    try:
        await streamed.watching(people.sam_did)
        await polled.watching(people.sam_did)
        await until(lambda: subscribed(streamed))  # posts from now on reach the stream
        await people.post(PHRASE)
        await people.image("petals", alt="a flower")
        await asyncio.to_thread(people.sam.like, people.contact_post.uri,
                                people.contact_post.cid)
        await asyncio.to_thread(people.sam.repost, people.contact_post.uri,
                                people.contact_post.cid)
        await people.profile("new me", avatar=FLOWER)
        expected = ["flower", "flower", "liked-alex", "network-down"]
        await until(lambda: streamed.codes() == expected)
        await until(lambda: polled.codes() == expected)
        await until(lambda: streamed.event_keys() == polled.event_keys())
        assert len(streamed.event_keys()) == 5
        # The safety-net poll of the stream App reads the same records: nothing fires twice.
        keys = streamed.event_keys()
        assert await streamed.app.connectors[0].poll_once() == 5
        assert streamed.codes() == expected and streamed.event_keys() == keys
    finally:
        await streamed.stop()
        await polled.stop()


async def test_firehose_and_polling_agree(tmp_path: Path, pds: LocalPds) -> None:  # noqa: F811
    people = await asyncio.to_thread(make_people, pds)
    cursor = f"bluesky:firehose:localhost:{pds.pds_port}"

    def subscribed(rig: Rig) -> bool:
        # A stranger's commit moves the firehose cursor once the subscription is open.
        people.contact.send_post("anyone there?")
        return rig.cursor(cursor) is not None

    await _same_events_as_polling(tmp_path, people, "firehose", subscribed)


async def test_jetstream_and_polling_agree(tmp_path: Path, pds: LocalPds) -> None:  # noqa: F811
    people = await asyncio.to_thread(make_people, pds)
    async with FakeJetstream(pds.ws_url) as jet:
        await _same_events_as_polling(tmp_path, people, "jetstream",
                                      lambda _rig: bool(jet.clients), jet.url)
        query = jet.connections[0]
        assert query["wantedDids"] == [people.sam_did]
        assert "app.bsky.feed.post" in query["wantedCollections"]


async def test_jetstream_resumes_from_its_cursor(tmp_path: Path,
                                                 pds: LocalPds) -> None:  # noqa: F811
    people = await asyncio.to_thread(make_people, pds)
    async with FakeJetstream(pds.ws_url) as jet:
        config = bluesky_config(people, "jetstream", "1h", jet.url)
        rig = Rig(tmp_path, config)
        try:
            await rig.watching(people.sam_did)
            await until(lambda: bool(jet.clients))
            await people.post("just a normal day")
            await until(lambda: rig.cursor("bluesky:jetstream") is not None)
        finally:
            await rig.stop()
        missed = await people.post(PHRASE)  # while the watcher is stopped
        rig = Rig(tmp_path, config)
        try:
            await until(lambda: rig.codes() == ["network-down"])
            assert f"bluesky:{missed.uri}" in rig.event_keys()
            # The first poll on start may read it first; the stream resumed from its cursor
            # either way (and a repeat would be dropped by the store's dedupe).
            await until(lambda: len(jet.connections) == 2)
            assert "cursor" in jet.connections[-1]
        finally:
            await rig.stop()


async def test_a_connection_dropped_mid_request_is_an_outage_not_a_crash() -> None:
    """A PDS that restarts closes kept-alive connections without answering; httpx raises
    RemoteProtocolError there, which atproto does not wrap. It must reach the poller as a
    retryable network failure (found by the stop/start reliability run)."""
    from atproto_client.exceptions import NetworkError

    from connectors.bluesky.identity import IdentityError, Resolver

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the whole request: then no answer at all
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    resolver = Resolver(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}")
    try:
        with pytest.raises(NetworkError):
            await resolver.client(f"http://127.0.0.1:{port}").com.atproto.repo.list_records(
                {"repo": "did:plc:abc", "collection": "app.bsky.feed.post"})
        with pytest.raises(IdentityError) as raised:
            await resolver.resolve_handle("sam.test", None)
        assert not raised.value.permanent and "will retry" in raised.value.message
    finally:
        await resolver.aclose()
        server.close()
        await server.wait_closed()


# ----------------------------------------------------------------------------- lost access


def told(rig: Rig, kind: str, words: str = "") -> list[dict[str, Any]]:
    return [d for d in rig.app.store.deliveries() if d["kind"] == kind and words in d["text"]]


async def test_a_deactivated_account_is_blind_within_one_poll_then_restored(
        tmp_path: Path, pds: LocalPds) -> None:  # noqa: F811
    """The real PDS answers listRecords of a deactivated account with a bare InvalidRequest;
    getRepoStatus says what happened: the contacts hear at once (no stale_after grace),
    and when the survivor reactivates, the watch is restored and a code is seen."""
    people = await asyncio.to_thread(make_people, pds)
    rig = Rig(tmp_path, bluesky_config(people))
    try:
        await rig.watching(people.sam_did)
        await asyncio.to_thread(people.sam.com.atproto.server.deactivate_account, {})
        blind = await until(lambda: told(rig, "blind", "account was deactivated"))
        assert {d["contact"] for d in blind} == {"alex", "jo"}
        assert rig.health()["permanent"] == 1 and people.sam_did not in blind[0]["text"]
        await asyncio.to_thread(people.sam.com.atproto.server.activate_account)
        await until(lambda: told(rig, "recovered"), "the watch restored")
        await people.post(PHRASE)
        await until(rig.codes)
    finally:
        await rig.stop()


@pytest.mark.parametrize("stream", ["jetstream", "firehose"])
async def test_a_takedown_reaches_the_contacts_through_the_account_event(
        tmp_path: Path, pds: LocalPds, stream: str) -> None:  # noqa: F811
    """Polling hourly, the #account event on the stream (Jetstream kind "account", firehose
    #account) brings the check forward: a takedown is told at once, specifically."""
    people = await asyncio.to_thread(make_people, pds)
    async with FakeJetstream(pds.ws_url) as jet:
        rig = Rig(tmp_path, bluesky_config(people, stream, "1h", jet.url))
        try:
            await rig.watching(people.sam_did)
            await people.post("hello")  # polling hourly: only the stream can bring it
            await until(rig.event_keys, "the stream connected")
            await asyncio.to_thread(pds.takedown, people.sam_did)
            await until(lambda: told(rig, "blind", "taken down by its PDS's moderators"))
            await asyncio.to_thread(pds.takedown, people.sam_did, False)
            await until(lambda: told(rig, "recovered"), "the watch restored")
        finally:
            await rig.stop()
