"""The Bluesky clients: one HTTP client for the survivor's PDS (records, blobs) and the
identity resolver (handle -> DID -> PDS), built the way the connector needs them.

The connector takes them (a test may hand it ones pointed at a local PDS); without them it
builds these. atproto's firehose client and Jetstream's websocket are made per stream.
"""

from __future__ import annotations

import httpx

from connectors.bluesky.identity import Resolver


def make_http() -> httpx.AsyncClient:
    """Redirects followed: a PDS may answer getBlob with one to its CDN."""
    return httpx.AsyncClient(follow_redirects=True)


def make_resolver(service: str, plc: str) -> Resolver:
    return Resolver(service, plc)
