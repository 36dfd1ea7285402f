"""The contacts' page, served by aiohttp inside the watcher's own event loop.

Started and stopped by `App.run`; the page reads and writes the same store on the same loop,
so an action is one transaction between two awaits, like a contact's reply. Who gets in is
decided in one place, the `_guard` middleware: nothing without a session opened by a valid
secret link (watcher/core/secret_links.py) gets anything but a bare 404. Connectors may mount their
own routes (a webhook) with `add_routes`; those do their own authentication.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import BodyPartReader, web
from jinja2 import ChoiceLoader, Environment, PackageLoader, select_autoescape

from detectors.image import FEW_KEYPOINTS, PDQ_MIN_QUALITY, ImageMatcher, ImageRefused
from playbooks import actions, outbox
from playbooks.drills import start_drill
from watcher.core import evidence
from watcher.core import secret_links as auth
from watcher.core.config import Config
from watcher.core.models import Event
from watcher.core.store import Store
from watcher.supervision.supervisor import Supervisor
from watcher.web import enrol, photo
from watcher.web.views import Views

log = logging.getLogger("watcher.web")
COOKIE = "watcher_session"
SESSION_SECONDS = 12 * 3600
MAX_SESSIONS = 500  # a leaked link opened in a loop must not grow memory without end
TEST_TEXT = ("[TEST] This is a test of your alert channel, sent from the watcher's page at "
             "{who}'s request. Nothing has happened; there is nothing to do.")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    # Never cross-site (the link carries a token); same-origin, so that a POST from our own
    # page carries its real Origin (with no-referrer Chromium sends "Origin: null").
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def bare_404() -> web.Response:
    """The same answer for every way in that is not allowed: it reveals nothing."""
    return web.Response(status=404, text="Not Found", headers={"Cache-Control": "no-store"})


@dataclass
class Session:
    grant: auth.Grant
    csrf: str
    expires: float
    flash: str = ""  # the outcome of the last action, shown once


SESSION = web.RequestKey("session", Session)
MAX_FIELD = 4096  # a text field of a multipart form (the CSRF token, a person's key)


@dataclass
class Upload:
    """A multipart form read into memory: aiohttp's `request.post()` would spool a file
    field to a temporary file on disk, and a candidate code photo must never touch the
    disk."""

    fields: dict[str, str]
    files: dict[str, tuple[str, bytes]]  # field -> (file name, bytes), under the cap
    oversized: int = 0  # the size of a file refused for being over the cap


UPLOAD = web.RequestKey("upload", Upload)


async def read_multipart(request: web.Request, cap: int) -> Upload:
    """Every part in memory; a file over `cap` is counted, not kept, and a body far over
    it (twice the cap and a MiB) is cut off: a session cannot make the watcher read for
    ever."""
    upload = Upload({}, {})
    reader = await request.multipart()
    total, limit = 0, 2 * cap + 2**20
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise web.HTTPBadRequest(text="Nested multipart forms are not accepted.")
        chunks: list[bytes] = []
        size = 0
        while chunk := await part.read_chunk(2**16):
            size += len(chunk)
            total += len(chunk)
            if total > limit:
                raise web.HTTPRequestEntityTooLarge(max_size=cap, actual_size=total)
            if part.filename is None and size > MAX_FIELD:
                raise web.HTTPBadRequest(text="A form field is too long.")
            if part.filename is None or size <= cap:  # a field is bounded by MAX_FIELD
                chunks.append(chunk)
        name = part.name or ""
        if part.filename is None:
            upload.fields[name] = b"".join(chunks).decode("utf-8", "replace")
        elif size > cap:
            upload.oversized = size
        else:
            upload.files[name] = (part.filename, b"".join(chunks))
    return upload


class WebServer:
    def __init__(self, config: Config, store: Store, supervisor: Supervisor,
                 clock: Callable[[], datetime], wake: Callable[[], None]) -> None:
        assert config.web is not None
        self.config = config
        self.web = config.web
        self.store = store
        self.clock = clock
        self.wake = wake
        self.sessions: dict[str, Session] = {}
        self.views = Views(config, store, supervisor, clock)
        self.templates = Environment(
            loader=ChoiceLoader([PackageLoader("watcher.web", "templates"),
                                 PackageLoader("watcher.web", "static")]),
            autoescape=select_autoescape(default=True, default_for_string=True))
        self.app = web.Application(middlewares=[self._guard])
        self.app.on_response_prepare.append(self._headers)
        self._open: set[str] = set()  # route names mounted by connectors (own auth)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self._history: tuple[list[Event], list[str]] | None = None  # read on first use
        self._matchers: tuple[dict[str, ImageMatcher], list[str]] | None = None  # likewise
        self.app.router.add_get("/c/{token}", self.open_link, name="link")
        self.app.router.add_get("/", self.overview)
        self.app.router.add_get("/incident/{n:\\d{1,12}}", self.incident)
        self.app.router.add_post("/incident/{n:\\d{1,12}}/ack", self.ack)
        self.app.router.add_post("/incident/{n:\\d{1,12}}/standdown", self.standdown)
        self.app.router.add_post("/test", self.send_test)
        self.app.router.add_post("/drill", self.drill)
        self.app.router.add_get("/enrol", self.enrol_page)
        self.app.router.add_post("/enrol", self.enrol_try)
        self.app.router.add_post("/enrol/photo", self.enrol_photo)
        self.app.router.add_get("/evidence", self.evidence_page)
        self.app.router.add_get("/evidence/export.html", self.evidence_export)

    def add_routes(self, routes: Iterable[web.RouteDef]) -> None:
        """Mount a connector's routes (e.g. an SMS gateway's webhook) on this listener,
        before `start`. They bypass the link check: the connector authenticates its caller."""
        for route in routes:
            added = self.app.router.add_route(route.method, route.path, route.handler,
                                              **route.kwargs)
            self._open.add(str(id(added.resource)))

    async def start(self) -> None:
        # No access log: request paths carry the secret links.
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.web.host, self.web.port)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.web.port
        log.info("the contacts' page is served on %s:%s", self.web.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- who gets in -------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route
        if route.resource is not None and str(id(route.resource)) in self._open:
            return await handler(request)
        if route.name == "link":
            return await handler(request)
        session = self._session(request)
        if session is None:
            return bare_404()
        if request.method == "POST" and not await self._same_site(request, session):
            return web.Response(status=403, text="Forbidden")
        request[SESSION] = session
        try:
            return await handler(request)
        except web.HTTPNotFound:
            return bare_404()

    def _session(self, request: web.Request) -> Session | None:
        sid = request.cookies.get(COOKIE, "")
        session = self.sessions.get(sid)
        if session is None:
            return None
        if session.expires < time.monotonic() or not auth.still_valid(self.store,
                                                                       session.grant):
            del self.sessions[sid]  # revoked or expired: the session ends with its link
            return None
        return session

    def _prune(self) -> None:
        """Forget expired sessions; past the cap, the oldest go first (they open again
        with their link)."""
        now = time.monotonic()
        for sid in [k for k, v in self.sessions.items() if v.expires < now]:
            del self.sessions[sid]
        while len(self.sessions) >= MAX_SESSIONS:
            del self.sessions[next(iter(self.sessions))]

    async def _same_site(self, request: web.Request, session: Session) -> bool:
        """A POST must come from our own page: its Origin (when sent) is ours, and it
        carries this session's CSRF token. (The cookie is SameSite=Strict as well.)"""
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self._origins(request):
            return False
        if request.content_type == "multipart/form-data":
            upload = await read_multipart(request, self.config.watcher.max_image_bytes)
            request[UPLOAD] = upload
            token: object = upload.fields.get("csrf")
        else:
            token = (await request.post()).get("csrf")
        return isinstance(token, str) and secrets.compare_digest(token, session.csrf)

    def _origins(self, request: web.Request) -> set[str]:
        found = {f"{request.scheme}://{request.host}"}
        if self.web.public_url:
            parts = urlsplit(self.web.public_url)
            found.add(f"{parts.scheme}://{parts.netloc}")
        return found

    async def _headers(self, request: web.Request, response: web.StreamResponse) -> None:
        response.headers.pop("Server", None)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)

    def _secure(self) -> bool:
        return bool(self.web.public_url and self.web.public_url.startswith("https://"))

    # -- pages -------------------------------------------------------------------------

    def _page(self, name: str, session: Session, **context: Any) -> web.Response:
        template = self.templates.get_template(name)
        text = template.render(csrf=session.csrf, me=self._name(session.grant.contact),
                               scoped=session.grant.incident is not None, **context)
        return web.Response(text=text, content_type="text/html", charset="utf-8")

    def _name(self, contact: str) -> str:
        return self.views.name(contact)

    async def open_link(self, request: web.Request) -> web.StreamResponse:
        grant = auth.check(self.store, request.match_info["token"])
        if grant is None:
            return bare_404()
        self._prune()
        sid = secrets.token_urlsafe(32)
        self.sessions[sid] = Session(grant, secrets.token_urlsafe(32),
                                     time.monotonic() + SESSION_SECONDS)
        target = "/" if grant.incident is None else f"/incident/{grant.incident}#act"
        # A page that moves on by itself, not a redirect: a SameSite=Strict cookie is not
        # sent on a redirect that follows a click in a mail client (a cross-site start).
        text = self.templates.get_template("open.html").render(target=target)
        response = web.Response(text=text, content_type="text/html", charset="utf-8")
        response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict",
                            secure=self._secure(), path="/", max_age=SESSION_SECONDS)
        return response

    def _full(self, request: web.Request) -> Session:
        """Pages for a contact's own link only; an alert's link opens its alert alone."""
        session = request[SESSION]
        if session.grant.incident is not None:
            raise web.HTTPNotFound()
        return session

    def _for_incident(self, request: web.Request) -> tuple[Session, int]:
        session = request[SESSION]
        number = int(request.match_info["n"])
        if session.grant.incident not in (None, number) or self.store.incident(number) is None:
            raise web.HTTPNotFound()
        return session, number

    async def overview(self, request: web.Request) -> web.StreamResponse:
        session = self._full(request)
        return self._page("overview.html", session, **self.views.overview())

    async def incident(self, request: web.Request) -> web.StreamResponse:
        session, number = self._for_incident(request)
        flash, session.flash = session.flash, ""
        return self._page("incident.html", session, flash=flash,
                          **self.views.incident(number))

    async def ack(self, request: web.Request) -> web.StreamResponse:
        session, number = self._for_incident(request)
        outcome = actions.acknowledge(self.store, number, session.grant.contact, "web",
                                      self.clock(), self.views.names())
        return self._after(session, number, outcome.text)

    async def standdown(self, request: web.Request) -> web.StreamResponse:
        session, number = self._for_incident(request)
        outcome = actions.stand_down(self.store, number, session.grant.contact, self.clock())
        return self._after(session, number, outcome.text)

    def _after(self, session: Session, number: int, text: str) -> web.StreamResponse:
        session.flash = text
        self.wake()  # the runner tells the others now, not at its next tick
        raise web.HTTPSeeOther(f"/incident/{number}")

    async def send_test(self, request: web.Request) -> web.StreamResponse:
        session = self._full(request)
        form = await request.post()
        contact, channel, address = (str(form.get(k, "")) for k in ("contact", "channel",
                                                                     "address"))
        if contact not in self.config.contacts or \
                (channel, address) not in self.views.addresses(contact):
            raise web.HTTPNotFound()
        text = TEST_TEXT.format(who=self._name(session.grant.contact))
        with self.store.transaction():
            # Through the outbox, so the runner's guard and retries apply as to any alert.
            outbox.tell(self.config, self.store, [contact], text, "test", self.clock(),
                        only=(channel, address))
        self.wake()
        raise web.HTTPSeeOther("/#contacts")

    async def drill(self, request: web.Request) -> web.StreamResponse:
        self._full(request)
        form = await request.post()
        code = str(form.get("code", ""))
        if code not in self.config.codes or self.config.codes[code].playbook is None:
            raise web.HTTPNotFound()
        number = start_drill(self.config, self.store, code, self.clock())
        self.wake()
        raise web.HTTPSeeOther(f"/incident/{number}")

    async def _loaded(self) -> tuple[list[Event], list[str]]:
        if self._history is None:  # read once, off the loop: the watch must not wait
            self._history = await asyncio.to_thread(enrol.load_history, self.config)
        return self._history

    def _enrol(self, session: Session, result: enrol.Trial | None = None,
               problem: str = "", shot: photo.PhotoTrial | None = None,
               shot_problem: str = "") -> web.Response:
        events, problems = self._history or ([], [])
        return self._page("enrol.html", session, people=self.views.people(), result=result,
                          files=enrol.history_names(self.config), messages=len(events),
                          problems=problems, problem=problem, shot=shot,
                          shot_problem=shot_problem,
                          max_mb=self.config.watcher.max_image_bytes / 1e6,
                          bars=(PDQ_MIN_QUALITY, FEW_KEYPOINTS))

    async def enrol_page(self, request: web.Request) -> web.StreamResponse:
        session = self._full(request)
        await self._loaded()
        return self._enrol(session)

    async def enrol_try(self, request: web.Request) -> web.StreamResponse:
        session = self._full(request)
        form = await request.post()
        phrase = str(form.get("phrase", "")).strip()
        person = str(form.get("person", ""))
        if person not in self.config.people:
            raise web.HTTPNotFound()
        if not phrase or len(phrase) > enrol.MAX_PHRASE:
            return self._enrol(session, problem=f"Type a phrase of 1 to {enrol.MAX_PHRASE} "
                                                "characters.")
        events, _ = await self._loaded()
        result = await asyncio.to_thread(enrol.trial, self.config, events, phrase, person,
                                         str(form.get("tolerance", "typos")))
        return self._enrol(session, result)

    async def _code_matchers(self) -> tuple[dict[str, ImageMatcher], list[str]]:
        if self._matchers is None:  # the codes' photos, read once and off the loop
            self._matchers = await asyncio.to_thread(photo.code_matchers, self.config)
        return self._matchers

    async def enrol_photo(self, request: web.Request) -> web.StreamResponse:
        session = self._full(request)
        await self._loaded()
        upload = request.get(UPLOAD) or Upload({}, {})
        person = upload.fields.get("person", "")
        if person not in self.config.people:
            raise web.HTTPNotFound()
        cap = self.config.watcher.max_image_bytes
        if upload.oversized:
            return self._enrol(session, shot_problem=(
                f"Refused: this photo is {upload.oversized:,} bytes, over the page's limit "
                f"of {cap:,} bytes (watcher.max_image_bytes). Choose a smaller copy."))
        name, data = upload.files.get("photo", ("", b""))
        if not data:
            return self._enrol(session, shot_problem="Choose a photo file to try.")
        others, _ = await self._code_matchers()
        try:
            shot = await asyncio.to_thread(photo.trial, self.config, others, data, person,
                                           name)
        except ImageRefused as exc:
            return self._enrol(session, shot_problem=photo.refusal(exc))
        return self._enrol(session, shot=shot)

    async def evidence_page(self, request: web.Request) -> web.StreamResponse:
        session = self._full(request)
        checked, problem = self.store.evidence_verify()
        return self._page("evidence.html", session, checked=checked, problem=problem)

    async def evidence_export(self, request: web.Request) -> web.StreamResponse:
        self._full(request)
        chain = self.store.evidence_verify()
        names = ", ".join(p.name for p in self.config.people.values())
        text = evidence.to_html(self.store.evidence_entries(), f"Evidence log: {names}",
                                chain)
        return web.Response(text=text, content_type="text/html", charset="utf-8", headers={
            "Content-Disposition": 'attachment; filename="evidence.html"'})

