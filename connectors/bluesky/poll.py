"""Polling a person's PDS with com.atproto.repo.listRecords: the path that never misses.

Each collection has a cursor, f"bluesky:{did}:{collection}" = the last rkey handled; the
next read asks for records after it, oldest first (reverse=True), and each record's event
moves the cursor in the same transaction, so a crash redoes at most the record in hand.
rkeys are TIDs (time-ordered ids the PDS gives at creation), so "after the last rkey" is
"created since".

The first read of a collection records the newest rkey and fires nothing: the survivor's
old posts, likes and follows are history, from before the codes were agreed. The profile
record works the same way with its CID as the cursor: a change fires, the first sight not.
"""

from __future__ import annotations

import logging
from typing import Protocol

from atproto_client.exceptions import BadRequestError, RequestErrorBase

from connectors.bluesky.identity import Identity, IdentityError, Resolver, xrpc_error
from connectors.bluesky.translate import (
    FOLLOW,
    LIKE,
    PLATFORM,
    POST,
    PROFILE,
    REPOST,
    BlobUnavailable,
    EventBuilder,
    unreadable_record,
    web_link,
)
from connectors.common import MALFORMED
from watcher.core.errors import WatcherError
from watcher.core.models import Event

log = logging.getLogger("watcher.bluesky")

PAGE = 100
# Posts first: if a later collection fails (a like whose target cannot be resolved yet),
# the posts of this round are already in.
ORDER = (POST, PROFILE, LIKE, REPOST, FOLLOW)
GONE = {"RepoNotFound", "RepoDeactivated", "RepoTakendown", "RepoSuspended"}
# getRepoStatus statuses that pass by themselves (the PDS is catching up or slowing us).
PASSING = {"desynchronized", "throttled"}
ACCOUNT_GONE = {
    "deactivated": "was deactivated (by its owner, or on the old PDS after a move to "
                   "another one; a move is followed by itself within a poll)",
    "takendown": "was taken down by its PDS's moderators",
    "suspended": "was suspended (for a time) by its PDS's moderators",
    "deleted": "was deleted",
}


def inactive_problem(status: str | None) -> PollError:
    """What an inactive account means for the watch, and what to do (getRepoStatus, or an
    #account event on the stream)."""
    name = status or "inactive"
    if name in PASSING:
        return PollError(f"the PDS reports the account as {name}; retrying")
    what = ACCOUNT_GONE.get(name, f"is inactive ({name})")
    return PollError(f"the survivor's Bluesky account {what}: nothing it posts, likes or "
                     "follows can be seen. What to do: check with the survivor, safely, "
                     "whether they did this; if they moved to a new account, put its handle "
                     "or DID in people.*.bluesky. The watch is restored by itself if the "
                     "account comes back", permanent=True)
NO_PROFILE = ""  # the profile cursor while the account has no profile record


class Records(Protocol):
    """The part of the Sink polling uses (the connector serialises it with the stream)."""

    async def event(self, event: Event, cursor: tuple[str, str] | None = None) -> None: ...

    def cursor(self, feed: str) -> str | None: ...

    def save_cursor(self, feed: str, value: str) -> None: ...

    def unreadable(self, platform: str, item: str, problem: str, person: str | None = None,
                   link: str | None = None) -> None: ...


class PollError(WatcherError):
    """A collection cannot be read now; `permanent` when retrying cannot help."""


def cursor_name(did: str, collection: str) -> str:
    return f"bluesky:{did}:{collection}"


class Poller:
    def __init__(self, sink: Records, resolver: Resolver, builder: EventBuilder) -> None:
        self.sink = sink
        self.resolver = resolver
        self.builder = builder

    async def poll(self, who: Identity) -> int:
        """Read everything new of one person; raise PollError on the first failure."""
        await self._check_status(who)
        count = 0
        for collection in ORDER:
            try:
                if collection == PROFILE:
                    count += await self._profile(who)
                else:
                    count += await self._collection(who, collection)
            except BadRequestError as exc:
                raise self._refused(who, exc) from None
            except RequestErrorBase as exc:
                raise PollError(f"cannot read {who.did} from its PDS {who.pds} "
                                f"({xrpc_error(exc)}); retrying. Nothing is lost: what is "
                                "posted meanwhile is read once it answers") from None
            except (BlobUnavailable, IdentityError) as exc:
                raise PollError(f"cannot finish reading {who.did} ({exc}); retrying") from None
        return count

    async def _check_status(self, who: Identity) -> None:
        """getRepoStatus first: a deactivated or taken-down account answers listRecords
        with a bare "Could not find repo" (InvalidRequest), indistinguishable from a
        passing fault; its status says what happened, within one poll."""
        client = self.resolver.client(who.pds)
        try:
            status = await client.com.atproto.sync.get_repo_status({"did": who.did})
        except BadRequestError as exc:
            if xrpc_error(exc) == "RepoNotFound":  # deleted here, or moved away
                raise PollError("the survivor's Bluesky account is not on its PDS any more "
                                "(deleted, or moved and not yet found elsewhere). What to do: "
                                "check with the survivor, safely; if they moved to a new "
                                "account, put its handle or DID in people.*.bluesky",
                                permanent=True) from None
            raise self._refused(who, exc) from None
        except RequestErrorBase as exc:
            if xrpc_error(exc) in ("404", "501", "MethodNotImplemented"):
                return  # an older PDS: listRecords' own errors still tell
            raise PollError(f"cannot read {who.did} from its PDS {who.pds} "
                            f"({xrpc_error(exc)}); retrying") from None
        if not status.active:
            raise inactive_problem(status.status)

    def _refused(self, who: Identity, exc: BadRequestError) -> PollError:
        name = xrpc_error(exc)
        if name in GONE:
            return PollError(f"the PDS {who.pds} refuses the account {who.did} ({name}): it "
                             "may be deactivated, suspended or moved. Check with the survivor"
                             " (safely); the watcher keeps retrying", permanent=True)
        return PollError(f"the PDS {who.pds} refused a read of {who.did} ({name}); retrying")

    async def _collection(self, who: Identity, collection: str) -> int:
        name = cursor_name(who.did, collection)
        last = self.sink.cursor(name)
        if last is None:
            await self._baseline(who, collection, name)
            return 0
        count = 0
        client = self.resolver.client(who.pds)
        while True:
            page = await client.com.atproto.repo.list_records(
                {"repo": who.did, "collection": collection, "reverse": True,
                 "cursor": last or None, "limit": PAGE})
            for record in page.records:
                last = record.uri.rsplit("/", 1)[1]
                count += await self._handle(who, collection, last, record.cid, record.value,
                                            (name, last))
            if len(page.records) < PAGE:
                return count

    async def _handle(self, who: Identity, collection: str, rkey: str, cid: str | None,
                      value: object, cursor: tuple[str, str]) -> int:
        try:
            event = await self.builder.build(who, collection, rkey, cid, value)
        except MALFORMED as exc:
            # A record we cannot read (any app can write odd records) must not stop the
            # watch: logged by its key, never its content, and skipped.
            log.warning("skipped Bluesky record %s/%s: it could not be read (%s)", collection,
                        rkey, type(exc).__name__)
            self.sink.unreadable(PLATFORM, f"{collection}/{rkey}", unreadable_record(exc),
                                 who.person, web_link(who.handle or who.did, collection, rkey))
            event = None
        if event is None:
            self.sink.save_cursor(*cursor)
            return 0
        await self.sink.event(event, cursor=cursor)
        return 1

    async def _baseline(self, who: Identity, collection: str, name: str) -> None:
        """First look: remember where history ends ("" = nothing yet) without firing."""
        page = await self.resolver.client(who.pds).com.atproto.repo.list_records(
            {"repo": who.did, "collection": collection, "limit": 1})
        newest = page.records[0].uri.rsplit("/", 1)[1] if page.records else ""
        self.sink.save_cursor(name, newest)
        log.info("bluesky: first look at %s of %s; earlier records are history and are not "
                 "examined", collection, who.person)

    async def _profile(self, who: Identity) -> int:
        name = cursor_name(who.did, PROFILE)
        client = self.resolver.client(who.pds)
        try:
            found = await client.com.atproto.repo.get_record(
                {"repo": who.did, "collection": PROFILE, "rkey": "self"})
        except BadRequestError as exc:
            if xrpc_error(exc) != "RecordNotFound":
                raise
            found = None
        current = str(found.cid) if found is not None and found.cid else NO_PROFILE
        previous = self.sink.cursor(name)
        if current == previous:
            return 0
        if previous is None or found is None:  # the first sight, or the profile was removed
            self.sink.save_cursor(name, current)
            return 0
        return await self._handle(who, PROFILE, "self", current, found.value, (name, current))
