"""The contacts' page through a real HTTP client against a running watcher: who gets in (a
valid link only, bare 404 otherwise), what a link from an alert allows, actions as the
contact, cross-site POSTs refused, tests through the outbox to a real Apprise json:// sink."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import Clock, eventually
from tests.web_rig import Rig, evidence_rows, running
from watcher.cli import main
from watcher.core import secret_links as auth
from watcher.core.config import ConfigError, load
from watcher.core.store import Store

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def client() -> aiohttp.ClientSession:
    # unsafe=True: keep cookies for an IP host (127.0.0.1), as a browser does.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def open_link(http: aiohttp.ClientSession, link: str) -> str:
    async with http.get(link) as response:
        assert response.status == 200
        return await response.text()


async def page(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url, allow_redirects=False) as response:
        return response.status, await response.text()


async def csrf_of(http: aiohttp.ClientSession, url: str) -> str:
    status, text = await page(http, url)
    assert status == 200
    found = CSRF.search(text)
    assert found is not None
    return found.group(1)


async def fired(rig: Rig) -> None:
    rig.fire()
    await eventually(lambda: rig.app.store.incident(1), "alert #1")
    await eventually(lambda: "ALERT to Jo" in rig.out.getvalue(), "Jo's alert")


async def test_nothing_without_a_valid_link(tmp_path: Path) -> None:
    async with running(tmp_path) as rig, client() as http:
        await fired(rig)
        bodies = set()
        for method, path in [("GET", "/"), ("GET", "/incident/1"), ("GET", "/evidence"),
                             ("GET", "/evidence/export.html"), ("GET", "/static/style.css"),
                             ("GET", "/c/" + "A" * 43), ("GET", "/c/short"),
                             ("POST", "/incident/1/ack"), ("POST", "/test"),
                             ("POST", "/drill"), ("GET", "/nope")]:
            async with http.request(method, rig.base + path, allow_redirects=False) as r:
                assert r.status == 404, path
                assert "Server" not in r.headers  # nothing says what answers
                bodies.add(await r.text())
        assert bodies == {"Not Found"}
        assert rig.state() == "open"


async def test_contact_acknowledges_on_the_page(tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path) as rig, client() as http:
        await fired(rig)
        link = rig.link("jo")
        await open_link(http, link)
        cookie = next(c for c in http.cookie_jar if c.key == "watcher_session")
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert not cookie["secure"]  # public_url is http here (see the https test)
        status, overview = await page(http, rig.base + "/")
        assert status == 200 and "Alex" in overview and "Send a test" in overview
        status, text = await page(http, rig.base + "/incident/1")
        # The matched snippet, never the rest of Sam's message.
        assert "the network went down at work" in text and "home late" not in text
        token = CSRF.search(text)
        assert token is not None
        async with http.post(rig.base + "/incident/1/ack", data={"csrf": token.group(1)},
                             headers={"Origin": rig.base}) as r:
            assert r.status == 200 and "Acknowledged by Jo (via web)" in await r.text()
            assert r.headers["Cache-Control"] == "no-store"
        assert rig.state() == "acknowledged"
        assert {"contact": "jo", "channel": "web"}.items() \
            <= evidence_rows(rig.app.store, "ack")[0].items()
        # The other contact (Alex, by Apprise) is told who is handling it.
        await eventually(lambda: any("Jo is handling" in m for m in rig.sink.messages()),
                         "Alex to be told")
        assert not rig.app.store.run_active(1)  # escalation stopped
    # No link, session or CSRF token ever reaches a log, at any level.
    secrets_seen = [link.rsplit("/", 1)[1], cookie.value, token.group(1)]
    assert not [x for x in secrets_seen if x in caplog.text]
    assert "the network went down" not in caplog.text


async def test_cross_site_posts_fail(tmp_path: Path) -> None:
    async with running(tmp_path) as rig, client() as http:
        await fired(rig)
        await open_link(http, rig.link("jo"))
        token = await csrf_of(http, rig.base + "/incident/1")
        url = rig.base + "/incident/1/ack"
        for data, headers in [({"csrf": token}, {"Origin": "https://evil.example"}),
                              ({}, {"Origin": rig.base}),
                              ({"csrf": "x" * 43}, {}),
                              ({"csrf": token}, {"Origin": "null"})]:
            async with http.post(url, data=data, headers=headers,
                                 allow_redirects=False) as r:
                assert r.status == 403
        assert rig.state() == "open"


async def test_secure_cookie_behind_tls(tmp_path: Path) -> None:
    async with running(tmp_path, public_url="https://watcher.example.net") as rig, \
            client() as http:
        async with http.get(rig.link("jo")) as r:
            cookie = r.headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_revoked_link_ends_the_session(tmp_path: Path) -> None:
    async with running(tmp_path) as rig, client() as http:
        link = rig.link("jo")
        await open_link(http, link)
        assert (await page(http, rig.base + "/"))[0] == 200
        with rig.app.store.transaction():
            assert rig.app.store.revoke_web_tokens("jo", rig.app.clock()) == 1
        assert (await page(http, rig.base + "/"))[0] == 404  # the open session ends too
        assert (await page(http, link))[0] == 404


async def test_alert_link_opens_only_its_alert(tmp_path: Path) -> None:
    async with running(tmp_path) as rig, client() as http:
        await fired(rig)
        link = await rig.alert_link()
        assert link.startswith("http://watcher.example.net/c/")
        text = await open_link(http, rig.here(link))
        assert 'url=/incident/1#act' in text
        status, page_text = await page(http, rig.base + "/incident/1")
        assert status == 200 and "Acknowledge: I am dealing with it" in page_text
        from playbooks.drills import start_drill

        other_alert = start_drill(rig.config, rig.app.store, "flower", rig.app.clock())
        for other in ("/", "/evidence", f"/incident/{other_alert}", "/evidence/export.html",
                      "/enrol"):
            assert (await page(http, rig.base + other))[0] == 404, other
        token = await csrf_of(http, rig.base + "/incident/1")
        for action in ("ack", "standdown"):
            async with http.post(f"{rig.base}/incident/{other_alert}/{action}",
                                 data={"csrf": token}, allow_redirects=False) as r:
                assert r.status == 404
        assert rig.state(other_alert) == "open"
        async with http.post(rig.base + "/drill", data={"csrf": token, "code": "flower"},
                             allow_redirects=False) as r:
            assert r.status == 404
        async with http.post(rig.base + "/incident/1/ack", data={"csrf": token}) as r:
            assert "Acknowledged by Alex (via web)" in await r.text()
        await eventually(lambda: "Alex is handling" in rig.out.getvalue(), "Jo told")


async def test_send_a_test_reaches_the_apprise_sink(tmp_path: Path) -> None:
    async with running(tmp_path) as rig, client() as http:
        await open_link(http, rig.link("jo"))
        token = await csrf_of(http, rig.base + "/")
        async with http.post(rig.base + "/test", data={
                "csrf": token, "contact": "alex", "channel": "apprise", "address": "0"}) as r:
            assert r.status == 200
        message = await eventually(
            lambda: next((m for m in rig.sink.messages() if m.startswith("[TEST]")), None),
            "the test message at the sink")
        assert "at Jo's request" in message
        await eventually(lambda: "Test message delivered" in rig.app.web.views.contacts()[0]
                         ["channels"][0]["last"] if rig.app.web else False, "the result")
        status, overview = await page(http, rig.base + "/")
        assert status == 200 and "Test message delivered" in overview
        # An address that is not the contact's is refused (nothing sent anywhere).
        async with http.post(rig.base + "/test", data={
                "csrf": token, "contact": "alex", "channel": "apprise", "address": "5"},
                allow_redirects=False) as r:
            assert r.status == 404


async def test_drill_and_evidence_from_the_page(tmp_path: Path) -> None:
    async with running(tmp_path) as rig, client() as http:
        await open_link(http, rig.link("alex"))
        token = await csrf_of(http, rig.base + "/")
        async with http.post(rig.base + "/drill", data={"csrf": token, "code": "flower"}) as r:
            assert r.status == 200 and "[DRILL]" in await r.text()
        found = rig.app.store.incident(1)
        assert found is not None and found.drill
        status, text = await page(http, rig.base + "/evidence")
        assert status == 200 and "Intact:" in text
        async with http.get(rig.base + "/evidence/export.html") as r:
            assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]


@settings(max_examples=200, deadline=None)
@given(token=st.text(max_size=60))
def test_no_made_up_token_opens_anything(token: str) -> None:
    store = Store(None)
    try:
        real = auth.mint(store, "jo", auth.CONTACT, Clock()())
        assert auth.check(store, token) is None or token == real
        assert auth.check(store, real) is not None
        # Only the hash is stored, never the token.
        assert real not in {r[0] for r in store.conn.execute("SELECT hash FROM web_tokens")}
    finally:
        store.close()


def test_web_link_and_revoke_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    from tests.web_rig import rig_config

    config = rig_config(tmp_path, "json://127.0.0.1:9/hook")
    assert main(["web", "link", "--config", str(config), "jo"]) == 0
    link = capsys.readouterr().out.strip()
    assert re.fullmatch(r"http://watcher\.example\.net/c/[A-Za-z0-9_-]{43}", link)
    store = Store(tmp_path / "watcher.db")
    try:
        assert auth.check(store, link.rsplit("/", 1)[1]) is not None
    finally:
        store.close()
    assert main(["web", "revoke", "--config", str(config), "jo"]) == 0
    assert "Revoked 1 link(s) of Jo" in capsys.readouterr().out
    store = Store(tmp_path / "watcher.db")
    try:
        assert auth.check(store, link.rsplit("/", 1)[1]) is None
    finally:
        store.close()
    assert main(["web", "link", "--config", str(config), "nobody"]) == 2


def test_web_section_is_checked(tmp_path: Path) -> None:
    from tests.conftest import write_config

    for bad in ('listen = "8470"', 'public_url = "watcher.example.net"'):
        with pytest.raises(ConfigError) as raised:
            load(write_config(tmp_path, f"[web]\n{bad}\n"), environ={})
        assert any(p.startswith("web.") for p in raised.value.problems)
    config = load(write_config(tmp_path, "[web]\n"), environ={})
    assert config.web is not None and config.web.listen == "127.0.0.1:8470"


async def test_a_taken_port_does_not_stop_the_watch(tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    import asyncio
    import io
    import json
    import socket

    from tests.web_rig import CODE_USE, rig_config
    from watcher.app import App

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = taken.getsockname()[1]
        config = load(rig_config(tmp_path, "json://127.0.0.1:9/hook", listen=f"127.0.0.1:{port}"),
                      environ={})
        out = io.StringIO()
        app = App(config, stdout=out, connectors=[])
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        try:
            (tmp_path / "feed.jsonl").write_text(json.dumps(CODE_USE) + "\n")
            await eventually(lambda: "ALERT to Jo" in out.getvalue(), "the alert")
        finally:
            stop.set()
            await task
            await app.aclose()
        assert "the contacts' page could not start" in caplog.text
        assert app.web is not None and app.web.port is None
    finally:
        taken.close()


async def test_sessions_are_capped(tmp_path: Path) -> None:
    from watcher.web import server

    async with running(tmp_path) as rig, client() as http:
        link = rig.link("jo")
        for _ in range(server.MAX_SESSIONS + 20):
            async with http.get(link, allow_redirects=False) as r:
                assert r.status == 200
        assert rig.app.web is not None
        assert len(rig.app.web.sessions) <= server.MAX_SESSIONS
        assert (await page(http, rig.base + "/"))[0] == 200  # the newest still works


async def test_enrolment_says_too_common_and_gives_the_toml(tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture
                                                            ) -> None:
    from tests.web_rig import OK_MESSAGES

    async with running(tmp_path) as rig, client() as http:
        await open_link(http, rig.link("jo"))
        token = await csrf_of(http, rig.base + "/enrol")
        async with http.post(rig.base + "/enrol", data={
                "csrf": token, "phrase": "ok", "person": "sam", "tolerance": "typos"}) as r:
            text = await r.text()
        assert f"too common: &#39;ok&#39; occurs {OK_MESSAGES} times in 300 past" in text
        secret = 'the "blue" kettle is broken'
        async with http.post(rig.base + "/enrol", data={
                "csrf": token, "phrase": secret, "person": "sam", "tolerance": "exact"}) as r:
            text = await r.text()
        assert "not found in 300 past messages" in text
        assert "phrase = [&#34;the \\&#34;blue\\&#34; kettle is broken&#34;]" in text
        assert 'tolerance = &#34;exact&#34;' in text
        assert "kettle" not in caplog.text  # the candidate code is never logged
        async with http.post(rig.base + "/enrol", data={"phrase": "ok", "person": "sam"},
                             allow_redirects=False) as r:
            assert r.status == 403  # a POST like any other: CSRF-checked


@settings(max_examples=200, deadline=None)
@given(phrase=st.text(min_size=1, max_size=40).filter(lambda t: t.strip() == t and t))
def test_the_toml_to_paste_gives_back_the_phrase(phrase: str) -> None:
    """Whatever the survivor chose (quotes, backslashes, emoji, control characters), the
    snippet the page shows parses as TOML into exactly that phrase."""
    import tomllib

    from watcher.web import enrol

    config = load(Path(__file__).parent.parent / "config.example.toml", environ={},
                  secrets=False)
    person = next(iter(config.people))
    for tolerance in ("typos", "exact"):
        result = enrol.trial(config, [], phrase, person, tolerance)
        parsed = tomllib.loads(result.toml)["codes"]["NEW-NAME"]
        assert parsed["phrase"] == [phrase] and parsed["person"] == person


async def test_ntfy_alert_has_an_acknowledge_action(tmp_path: Path) -> None:
    """Where the service supports actions (ntfy), the alert's link is also a button on the
    notification: through real Apprise to a loopback ntfy stand-in."""
    import asyncio
    import io
    import json as jsonlib

    from aiohttp import web

    from tests.web_rig import CODE_USE, LINK, rig_config
    from watcher.app import App

    posts: list[tuple[dict[str, str], dict[str, str]]] = []

    async def ntfy(request: web.Request) -> web.Response:
        posts.append((dict(request.headers), jsonlib.loads(await request.text())))
        return web.json_response({"id": "1"})

    stand_in = web.Application()
    stand_in.router.add_post("/", ntfy)
    runner = web.AppRunner(stand_in, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        config = load(rig_config(tmp_path, f"ntfy://127.0.0.1:{port}/alex-alerts?priority=high"),
                      environ={})
        app = App(config, stdout=io.StringIO(), connectors=[])
        stop = asyncio.Event()
        task = asyncio.create_task(app.run(stop=stop))
        try:
            (tmp_path / "feed.jsonl").write_text(jsonlib.dumps(CODE_USE) + "\n")
            headers, body = await eventually(lambda: posts[0] if posts else None, "ntfy post")
        finally:
            stop.set()
            await task
            await app.aclose()
    finally:
        await runner.cleanup()
    link = LINK.search(body["message"])
    assert link is not None
    assert headers["X-Actions"] == f"view, Acknowledge, {link.group(0)}"
    assert headers.get("X-Priority") == "high"  # the contact's own options are kept


# -- the photo half of the enrolment page -----------------------------------------------

IMAGES = Path(__file__).parent / "data" / "images"


def flat_png(colour: tuple[int, int, int] = (90, 140, 200)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (640, 480), colour).save(out, "PNG")
    return out.getvalue()


def recompressed(path: Path, quality: int = 60) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    with Image.open(path) as img:
        img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


async def try_photo(http: aiohttp.ClientSession, base: str, token: str | None, data: bytes,
                    filename: str = "candidate.jpg", headers: dict[str, str] | None = None
                    ) -> tuple[int, str]:
    """The photo form as a browser posts it: multipart, the CSRF token first."""
    form = aiohttp.FormData()
    if token is not None:
        form.add_field("csrf", token)
    form.add_field("person", "sam")
    form.add_field("photo", data, filename=filename, content_type="image/jpeg")
    async with http.post(base + "/enrol/photo", data=form, headers=headers or {},
                         allow_redirects=False) as r:
        return r.status, await r.text()


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size and holds no pixels: a decompression bomb's header."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                                0, 0, 0)) + chunk(b"IEND", b""))


def listing(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


async def test_a_detailed_photo_is_good_and_gives_the_toml(tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture
                                                           ) -> None:
    caplog.set_level(logging.DEBUG)
    async with running(tmp_path) as rig, client() as http:
        await open_link(http, rig.link("jo"))
        token = await csrf_of(http, rig.base + "/enrol")
        before = listing(tmp_path)
        status, text = await try_photo(http, rig.base, token,
                                       (IMAGES / "ref-astronaut.jpg").read_bytes())
        assert status == 200
        assert "good: found again in 5 of 5 altered copies" in text
        assert "in a phone screenshot: found again" in text
        assert "Matches no other code's photo" in text
        assert "image = [&#34;codes/NAME.jpg&#34;]" in text
        assert "Copy the photo file to <code>codes/NAME.jpg</code>" in text
        # Nothing of the photo is kept beside the config or in the database.
        assert listing(tmp_path) - before <= {tmp_path / "watcher.db-wal",
                                              tmp_path / "watcher.db-shm"}
    assert "astronaut" not in caplog.text


async def test_a_flat_colour_is_too_plain(tmp_path: Path) -> None:
    async with running(tmp_path) as rig, client() as http:
        await open_link(http, rig.link("jo"))
        token = await csrf_of(http, rig.base + "/enrol")
        status, text = await try_photo(http, rig.base, token, flat_png(), "flat.png")
        assert status == 200
        assert "too plain: choose a photo with more detail" in text
        assert "codes/NAME" not in text  # no TOML for a photo that would not work


async def test_a_photo_like_another_codes_photo_says_so(tmp_path: Path) -> None:
    """The rig's config has code 'flower' with examples/codes/flower.jpg: a recompressed
    copy of that photo would be taken for it."""
    async with running(tmp_path) as rig, client() as http:
        await open_link(http, rig.link("jo"))
        token = await csrf_of(http, rig.base + "/enrol")
        status, text = await try_photo(http, rig.base, token,
                                       recompressed(tmp_path / "flower.jpg"))
        assert status == 200
        assert "too close to the photo of code &#39;flower&#39;" in text
        assert "Matches the photo of code <strong>flower</strong>" in text
        assert "codes/NAME" not in text


async def test_oversized_and_corrupt_photos_are_refused(tmp_path: Path) -> None:
    import random

    noise = random.Random(14).randbytes
    async with running(tmp_path) as rig, client() as http:
        await open_link(http, rig.link("jo"))
        token = await csrf_of(http, rig.base + "/enrol")
        cap = rig.config.watcher.max_image_bytes
        status, text = await try_photo(http, rig.base, token,
                                       b"\xff\xd8\xff\xe0" + noise(cap - 3))
        assert status == 200
        assert f"Refused: this photo is {cap + 1:,} bytes, over the page&#39;s limit of " \
               f"{cap:,} bytes (watcher.max_image_bytes)" in text
        astronaut = (IMAGES / "ref-astronaut.jpg").read_bytes()
        for corrupt, line in [
                (noise(5000), "Refused: it is not a readable photo"),
                (astronaut[: len(astronaut) // 2], "Refused: it is not a readable photo"),
                (png_header(9000, 9000), "Refused: image of 9000x9000 pixels exceeds the "
                                         "cap of 60000000"),
                (png_header(200_000, 200_000), "Refused: the image has more pixels than "
                                               "watcher.max_image_pixels allows"),
                (b"GIF89a" + noise(200), "Refused: "),
                (b"", "Choose a photo file to try.")]:
            status, text = await try_photo(http, rig.base, token, corrupt)
            assert status == 200
            assert 'id="photo-problem"' in text and line in text
            assert "photo-verdict" not in text and "Traceback" not in text


async def test_cross_site_photo_posts_fail(tmp_path: Path) -> None:
    async with running(tmp_path) as rig, client() as http:
        await open_link(http, rig.link("jo"))
        token = await csrf_of(http, rig.base + "/enrol")
        astronaut = (IMAGES / "ref-astronaut.jpg").read_bytes()
        for csrf, headers in [(token, {"Origin": "https://evil.example"}),
                              (None, {"Origin": rig.base}),
                              ("x" * 43, {}),
                              (token, {"Origin": "null"})]:
            status, text = await try_photo(http, rig.base, csrf, astronaut, headers=headers)
            assert status == 403
            assert "found again" not in text
    async with running(tmp_path / "fresh") as rig, client() as http:
        status, text = await try_photo(http, rig.base, token, astronaut)
        assert status == 404 and text == "Not Found"  # no session: a bare 404


def multipart_request(parts: list[tuple[str, str | None, bytes]]) -> web.Request:
    """A request whose body is `parts` as a browser encodes a multipart form, read by
    aiohttp's own multipart reader (only its transport is a stand-in)."""
    import asyncio
    from unittest import mock

    from aiohttp import streams
    from aiohttp.test_utils import make_mocked_request

    boundary = "----watcher-test-7b1f0e9c5a3d"
    body = b""
    for name, filename, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"'
                                                      if filename is not None else "")
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                 + data + b"\r\n")
    body += f"--{boundary}--\r\n".encode()
    payload = streams.StreamReader(mock.Mock(_reading_paused=False), 2**16,
                                   loop=asyncio.get_running_loop())
    payload.feed_data(body)
    payload.feed_eof()
    return make_mocked_request("POST", "/enrol/photo", payload=payload, headers={
        "Content-Type": f"multipart/form-data; boundary={boundary}"})


@settings(max_examples=60, deadline=None)
@given(cap=st.integers(1, 3000), size=st.integers(0, 9000),
       token=st.text(max_size=60).filter(lambda t: "\r" not in t and "\n" not in t))
def test_a_multipart_form_is_read_in_memory_within_the_cap(cap: int, size: int,
                                                           token: str) -> None:
    """Fields come back as sent; the file is kept only when within the cap, else only its
    size is known (for the plain line), never its bytes."""
    import asyncio

    from watcher.web.server import Upload, read_multipart

    data = bytes(i % 251 for i in range(size))

    async def read() -> Upload:
        return await read_multipart(multipart_request(
            [("csrf", None, token.encode()), ("person", None, b"sam"),
             ("photo", "p.jpg", data)]), cap)

    upload = asyncio.run(read())
    assert upload.fields == {"csrf": token, "person": "sam"}
    if size <= cap:
        assert upload.files == {"photo": ("p.jpg", data)} and upload.oversized == 0
    else:
        assert upload.files == {} and upload.oversized == size


async def test_a_body_far_over_the_cap_is_cut_off() -> None:
    from watcher.web.server import MAX_FIELD, read_multipart

    cap = 1000
    with pytest.raises(web.HTTPRequestEntityTooLarge):
        await read_multipart(multipart_request(
            [("photo", "p.jpg", bytes(2 * cap + 2**20 + 1))]), cap)
    with pytest.raises(web.HTTPBadRequest):  # a text field is never a place for bulk
        await read_multipart(multipart_request([("csrf", None, b"x" * (MAX_FIELD + 1))]),
                             cap)
