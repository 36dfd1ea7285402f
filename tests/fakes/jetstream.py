"""A small Jetstream stand-in: the local PDS's firehose, re-emitted as Jetstream JSON.

    async with FakeJetstream(pds.ws_url) as jet:
        jet.url  # ws://127.0.0.1:PORT/subscribe

It reads subscribeRepos from the start (cursor 0), keeps every commit in memory, and
serves each websocket client Jetstream's shape:
{"did", "time_us", "kind": "commit", "commit": {"rev", "operation", "collection", "rkey",
"record", "cid"}} (no record/cid for deletes), honouring wantedDids, wantedCollections and
cursor (events with time_us >= cursor are replayed first; without a cursor, live only).
`pause()`/`resume()` drop every client and refuse new ones meanwhile, like an outage.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from atproto import CAR, AsyncFirehoseSubscribeReposClient, models, parse_subscribe_repos_message
from atproto_core.cid import CID
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

IDLE = 0.3  # the history replay is over once the firehose is quiet this long


def to_json(value: Any) -> Any:
    """A DAG-CBOR value in atproto's JSON form (links as $link, bytes as $bytes)."""
    if isinstance(value, CID):
        return {"$link": str(value)}
    if isinstance(value, bytes):
        try:
            return {"$link": str(CID.decode(value))}
        except Exception:
            return {"$bytes": base64.b64encode(value).decode().rstrip("=")}
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_json(v) for v in value]
    return value


class FakeJetstream:
    def __init__(self, pds_ws_url: str) -> None:
        self.pds_ws_url = pds_ws_url
        self.events: list[dict[str, Any]] = []
        self.clients: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.connections: list[dict[str, list[str]]] = []  # query of every client, in order
        self.paused = False
        self._last_us = 0
        self._last_frame = 0.0
        self._firehose: AsyncFirehoseSubscribeReposClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._server: Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/subscribe"

    async def __aenter__(self) -> FakeJetstream:
        self._firehose = AsyncFirehoseSubscribeReposClient(
            params={"cursor": 0}, base_uri=self.pds_ws_url, recv_timeout=None)
        self._task = asyncio.create_task(self._firehose.start(self._on_frame))
        self._last_frame = time.monotonic()
        while time.monotonic() - self._last_frame < IDLE:  # let the history replay finish
            await asyncio.sleep(0.05)
        self._server = await serve(self._serve, "127.0.0.1", 0, max_size=None)
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        self.pause()  # ends every client's handler, so the server can close
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._firehose is not None:
            await self._firehose.stop()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)

    def pause(self) -> None:
        self.paused = True
        for queue in list(self.clients):
            queue.put_nowait(None)

    def resume(self) -> None:
        self.paused = False

    def _time_us(self) -> int:
        self._last_us = max(self._last_us + 1, time.time_ns() // 1000)
        return self._last_us

    async def _on_frame(self, frame: Any) -> None:
        self._last_frame = time.monotonic()
        message = parse_subscribe_repos_message(frame)
        repos = models.ComAtprotoSyncSubscribeRepos
        if isinstance(message, repos.Account | repos.Identity):
            self._publish(self._status_event(message))
            return
        if not isinstance(message, repos.Commit):
            return
        blocks = CAR.from_bytes(message.blocks).blocks
        for op in message.ops:
            collection, _, rkey = op.path.partition("/")
            commit: dict[str, Any] = {"rev": message.rev, "operation": op.action,
                                      "collection": collection, "rkey": rkey}
            if op.cid is not None:
                commit["record"] = to_json(blocks.get(op.cid))
                commit["cid"] = str(op.cid)
            event = {"did": message.repo, "time_us": self._time_us(), "kind": "commit",
                     "commit": commit}
            self._publish(event)

    def _status_event(self, message: Any) -> dict[str, Any]:
        """#account / #identity as Jetstream publishes them: kind "account" with
        {active, did, seq, status?, time}, kind "identity" with {did, handle?, seq, time}."""
        if isinstance(message, models.ComAtprotoSyncSubscribeRepos.Account):
            body = {"active": message.active, "did": message.did, "seq": message.seq,
                    "time": message.time}
            if message.status is not None:
                body["status"] = message.status
            return {"did": message.did, "time_us": self._time_us(), "kind": "account",
                    "account": body}
        body = {"did": message.did, "seq": message.seq, "time": message.time}
        if message.handle is not None:
            body["handle"] = message.handle
        return {"did": message.did, "time_us": self._time_us(), "kind": "identity",
                "identity": body}

    def _publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        for queue in list(self.clients):
            queue.put_nowait(event)

    async def _serve(self, socket: ServerConnection) -> None:
        if self.paused:
            await socket.close(1013, "paused")
            return
        query = parse_qs(urlsplit(socket.request.path if socket.request else "").query)
        self.connections.append(query)
        dids = set(query.get("wantedDids", []))
        collections = set(query.get("wantedCollections", []))

        def wanted(event: dict[str, Any]) -> bool:
            # Account and identity events ignore wantedCollections, as on Jetstream.
            return (not dids or event["did"] in dids) and (
                not collections or event["kind"] != "commit"
                or event["commit"]["collection"] in collections)

        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.clients.add(queue)  # before the backlog, so nothing falls between the two
        try:
            sent = 0
            if cursor := query.get("cursor"):
                for old in [e for e in self.events if e["time_us"] >= int(cursor[0])]:
                    if wanted(old):
                        await socket.send(json.dumps(old))
                    sent = old["time_us"]
            while (new := await queue.get()) is not None:
                if new["time_us"] > sent and wanted(new):
                    await socket.send(json.dumps(new))
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(queue)
        await socket.close()
