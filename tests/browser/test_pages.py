"""The contacts' page in a real Chromium (Debian's `chromium`, driven by Playwright; no
browser download): an alert fires from a replay file, the contact opens the link the alert
carried (captured at a loopback Apprise json:// sink), acknowledges, and the others are told.

Needs /usr/bin/chromium: `bash scripts/install-chromium.sh` (as root) installs it. Set
WATCHER_SCREENSHOTS=docs/web to refresh the screenshots docs/web.md shows.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, StorageState, ViewportSize, async_playwright

from tests.conftest import ROOT, eventually
from tests.web_rig import running

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
DESKTOP = ViewportSize(width=1280, height=900)
PHONE = ViewportSize(width=390, height=844)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM.exists(), "no /usr/bin/chromium: run `bash scripts/install-chromium.sh`"
    async with async_playwright() as playwright:
        found = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield found
        finally:
            await found.close()


def shots(tmp_path: Path) -> Path:
    wanted = os.environ.get("WATCHER_SCREENSHOTS")
    folder = (ROOT / wanted) if wanted else tmp_path / "shots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def both_widths(browser: Browser, url_or_page: str, folder: Path, name: str,
                      storage: StorageState) -> None:
    """Screenshots at desktop and phone widths, with the session of `storage`."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        context = await browser.new_context(viewport=size, storage_state=storage,
                                            is_mobile=label == "phone")
        page = await context.new_page()
        response = await page.goto(url_or_page)
        assert response is not None and response.status == 200
        await page.screenshot(path=str(folder / f"{name}-{label}.png"), full_page=True)
        await context.close()


async def status_of(page: Page, url: str) -> int:
    response = await page.goto(url)
    assert response is not None
    return response.status


async def test_contact_acknowledges_from_the_alerts_link(browser: Browser,
                                                          tmp_path: Path) -> None:
    folder = shots(tmp_path)
    async with running(tmp_path) as rig:
        rig.fire()  # a line appended to the replay file the watcher follows
        link = await rig.alert_link()  # what Alex's Apprise alert ended with
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(rig.here(link))
        button = page.get_by_role("button", name="Acknowledge: I am dealing with it")
        await button.wait_for()
        assert page.url.endswith("/incident/1#act")
        assert "the network went down at work" in await page.inner_text("#act")
        assert "home late" not in await page.content()  # the snippet, never the message
        await both_widths(browser, page.url, folder, "incident", await context.storage_state())
        await button.click()
        await page.wait_for_load_state()
        await page.get_by_text("Acknowledged by Alex (via web)").wait_for()
        assert await page.inner_text("#state") == "acknowledged by Alex"
        assert rig.state() == "acknowledged"
        assert not rig.app.store.run_active(1)  # the escalation stopped
        await eventually(lambda: "Alex is handling Sam's alert" in rig.out.getvalue(),
                         "Jo to be told")
        await both_widths(browser, page.url, folder, "acknowledged",
                          await context.storage_state())
        # The alert's link opens that alert only.
        assert await status_of(page, rig.base + "/") == 404
        await context.close()


async def test_overview_test_message_and_evidence(browser: Browser, tmp_path: Path) -> None:
    folder = shots(tmp_path)
    async with running(tmp_path) as rig:
        rig.fire()
        await eventually(lambda: "ALERT to Jo" in rig.out.getvalue(), "the alert")
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(rig.link("jo"))
        await page.get_by_role("heading", name="Open alerts").wait_for()
        row = page.locator("tr", has_text="apprise #1")
        await row.get_by_role("button", name="Send a test").click()
        message = await eventually(
            lambda: next((m for m in rig.sink.messages() if m.startswith("[TEST]")), None),
            "the test at the Apprise sink")
        assert "at Jo's request" in message

        def sent() -> bool:
            last = rig.app.store.last_delivery("alex", "apprise", "0")
            return last is not None and last["kind"] == "test" and last["status"] == "sent"

        await eventually(sent, "the test's result to be stored")
        await page.reload()
        assert "Test message delivered" in await row.inner_text()
        storage = await context.storage_state()
        await both_widths(browser, rig.base + "/", folder, "overview", storage)
        await both_widths(browser, rig.base + "/evidence", folder, "evidence", storage)
        await context.close()


async def test_no_link_revoked_link_and_cross_site_post_fail(browser: Browser,
                                                             tmp_path: Path) -> None:
    async with running(tmp_path) as rig:
        rig.fire()
        await eventually(lambda: rig.app.store.incident(1), "alert #1")
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        assert await status_of(page, rig.base + "/") == 404  # no link
        assert await page.inner_text("body") == "Not Found"
        link = rig.link("jo")
        await page.goto(link)
        await page.get_by_role("heading", name="Open alerts").wait_for()

        # A page on another site that posts to ours, as an abuser's link would.
        async def evil(_: web.Request) -> web.Response:
            return web.Response(content_type="text/html", text=(
                f'<form method="post" action="{rig.base}/incident/1/standdown">'
                '<input name="csrf" value="guess"><button>go</button></form>'))

        other = web.Application()
        other.router.add_get("/", evil)
        runner = web.AppRunner(other, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "localhost", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        try:
            await page.goto(f"http://localhost:{port}/")
            async with page.expect_navigation() as navigation:
                await page.get_by_role("button", name="go").click()
            response = await navigation.value
            assert response is not None and response.status in (403, 404)
        finally:
            await runner.cleanup()
        assert rig.state() == "open"

        with rig.app.store.transaction():
            rig.app.store.revoke_web_tokens("jo", rig.app.clock())
        assert await status_of(page, rig.base + "/") == 404  # the session ended with it
        assert await status_of(page, link) == 404  # and the link opens nothing
        await context.close()


async def test_enrolment_page_says_too_common(browser: Browser, tmp_path: Path) -> None:
    folder = shots(tmp_path)
    async with running(tmp_path) as rig:
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(rig.link("jo"))
        await page.get_by_role("link", name="Try a code").click()
        await page.get_by_label("Phrase").fill("ok")
        await page.get_by_role("button", name="Try it").click()
        verdict = page.locator("#verdict")
        await verdict.wait_for()
        assert "too common: 'ok' occurs 212 times" in await verdict.inner_text()
        # The screenshots show a rare phrase, with the TOML to paste.
        await page.get_by_label("Phrase").fill("the blue kettle is broken")
        await page.get_by_role("button", name="Try it").click()
        await page.get_by_text("a good candidate").wait_for()
        await page.screenshot(path=str(folder / "enrol-desktop.png"), full_page=True)
        await page.set_viewport_size(PHONE)
        await page.screenshot(path=str(folder / "enrol-phone.png"), full_page=True)
        await context.close()


async def test_enrolment_page_checks_a_photo(browser: Browser, tmp_path: Path) -> None:
    """A photo dropped into the form (a real multipart upload by Chromium) gets its
    verdict and the TOML to paste."""
    folder = shots(tmp_path)
    async with running(tmp_path) as rig:
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(rig.link("jo"))
        await page.get_by_role("link", name="Try a code").click()
        await page.get_by_label("Photo").set_input_files(
            str(ROOT / "tests" / "data" / "images" / "ref-astronaut.jpg"))
        await page.get_by_role("button", name="Check the photo").click()
        verdict = page.locator("#photo-verdict")
        await verdict.wait_for()
        text = await verdict.inner_text()
        assert "good: found again in 5 of 5 altered copies" in text
        assert 'image = ["codes/NAME.jpg"]' in text
        await page.screenshot(path=str(folder / "enrol-photo-desktop.png"), full_page=True)
        await page.set_viewport_size(PHONE)
        await page.screenshot(path=str(folder / "enrol-photo-phone.png"), full_page=True)
        await context.close()
