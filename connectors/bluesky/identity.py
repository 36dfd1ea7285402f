"""Who a watched Bluesky person is: handle -> DID -> PDS, without the AppView.

The DID is the account; the handle is a changeable name and the PDS a changeable host.
Once a person's DID is known it is kept (in the store, so a restart does not depend on
the handle service) and only the DID document is re-read: a renamed or migrated survivor
stays watched. A handle that later points at a *different* account is reported, never
followed silently: someone else may have taken the old name.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx
from atproto import AsyncClient, AsyncIdResolver
from atproto_client.exceptions import BadRequestError, NetworkError, RequestErrorBase
from atproto_client.request import AsyncRequest
from atproto_core.exceptions import AtProtocolError

from watcher.core.errors import WatcherError

log = logging.getLogger("watcher.bluesky")

TIMEOUT = 10.0


class IdentityError(WatcherError):
    """A person's account cannot be located; `permanent` when retrying cannot help."""


@dataclass(frozen=True)
class Identity:
    """Where one watched person's public repository lives."""

    person: str
    did: str
    pds: str
    handle: str | None

    def encode(self) -> str:
        return json.dumps({"did": self.did, "pds": self.pds, "handle": self.handle})

    @classmethod
    def decode(cls, person: str, text: str | None) -> Identity | None:
        try:
            data = json.loads(text or "")
            return cls(person, str(data["did"]), str(data["pds"]), data.get("handle"))
        except (ValueError, KeyError, TypeError):
            return None


def identity_cursor(person: str, configured: str) -> str:
    """Keyed by what the config names too: pointing a person at another handle or DID
    starts afresh instead of reusing the old account's DID."""
    return f"bluesky:identity:{person}:{configured}"


def xrpc_error(exc: RequestErrorBase) -> str:
    """The XRPC error name of a failed call (never a body: it could echo content)."""
    content = getattr(exc.response, "content", None)
    name = getattr(content, "error", None)
    status = getattr(exc.response, "status_code", None)
    return str(name or status or type(exc).__name__)


class Request(AsyncRequest):  # type: ignore[misc]  # atproto is untyped here (pyproject)
    """atproto turns only timeouts and connection failures into its own errors. A PDS that
    closes a kept-alive connection mid-request (it restarts, or a proxy drops it) raises a
    bare httpx.RemoteProtocolError, which would stop the poll instead of being retried."""

    async def _send_request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response: httpx.Response = await super()._send_request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise NetworkError() from exc
        return response


class Resolver:
    """Handle and DID resolution against the configured service and PLC directory."""

    def __init__(self, service: str, plc: str, timeout: float = TIMEOUT) -> None:
        self.service = service.rstrip("/")
        self.plc = plc.rstrip("/")
        self.timeout = timeout
        self._ids = AsyncIdResolver(plc_url=self.plc, timeout=timeout)
        self._clients: dict[str, AsyncClient] = {}
        self._handles: dict[str, str | None] = {}

    def client(self, base: str) -> AsyncClient:
        """An unauthenticated client on a service or PDS (kept: one connection pool each)."""
        base = base.rstrip("/")
        if base not in self._clients:
            request = Request(timeout=self.timeout)
            self._clients[base] = AsyncClient(base_url=f"{base}/xrpc", request=request)
        return self._clients[base]

    async def resolve_handle(self, handle: str, fallback_pds: str | None) -> str:
        """The DID a handle names: asked of `service`, then of the person's last known PDS."""
        places = [self.service] + ([fallback_pds] if fallback_pds else [])
        problems: list[str] = []
        for place in places:
            try:
                answer = await self.client(place).com.atproto.identity.resolve_handle(
                    {"handle": handle})
                return str(answer.did)
            except BadRequestError as exc:
                # The service answered: the handle is not known (a typo, or it was dropped).
                problems.append(f"{place}: {xrpc_error(exc)}")
                if place == places[-1]:
                    raise IdentityError(
                        f'the Bluesky handle "{handle}" does not resolve ({"; ".join(problems)})'
                        ": check the spelling with the survivor, or set the account's DID "
                        "(people.KEY.bluesky.did) instead of the handle", permanent=True
                    ) from None
            except RequestErrorBase as exc:
                problems.append(f"{place}: {xrpc_error(exc)}")
        raise IdentityError(f'cannot resolve the Bluesky handle "{handle}" right now '
                            f'({"; ".join(problems)}); will retry')

    async def describe(self, person: str, did: str) -> Identity:
        """Read the DID document: the account's PDS and current handle."""
        try:
            doc = await self._ids.did.resolve(did, force_refresh=True)
        except (AtProtocolError, OSError) as exc:
            raise IdentityError(f"cannot read the DID document of {did} from {self.plc} "
                                f"({type(exc).__name__}); will retry") from None
        if doc is None:
            raise IdentityError(f"the DID {did} is not in the PLC directory {self.plc}: the "
                                "account may be deleted; check with the survivor",
                                permanent=True)
        pds = doc.get_pds_endpoint()
        if not pds:
            raise IdentityError(f"the DID document of {did} names no PDS: the account may be "
                                "deactivated; check with the survivor", permanent=True)
        handle = doc.get_handle()
        self._handles[did] = handle
        return Identity(person, did, pds.rstrip("/"), handle)

    async def handle_of(self, did: str) -> str | None:
        """Another account's handle (for the bsky.app links a contact copies); cached.

        Raises IdentityError when the PLC cannot be read: a like must not be stored without
        the alias a reaction code may name, so the caller retries it later.
        """
        if did not in self._handles:
            if not did.startswith(("did:plc:", "did:web:")):
                return None
            try:
                self._handles[did] = (await self.describe("", did)).handle
            except IdentityError as exc:
                if not exc.permanent:
                    raise
                self._handles[did] = None  # a deleted account: the DID-form link still works
        return self._handles[did]

    def remember(self, identity: Identity) -> None:
        self._handles[identity.did] = identity.handle

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.request.close()
        self._clients.clear()
