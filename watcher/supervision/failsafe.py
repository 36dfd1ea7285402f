"""When the database cannot be written (a full disk, a read-only file), nothing can be
processed safely: an event acknowledged to its platform but not stored would be lost.
The watcher stops taking events, tells every contact directly on every channel that still
works (the outbox itself lives in the unwritable database), and probes until it can
write again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from playbooks.guard import Guard
from watcher.core.channel import Channel
from watcher.core.config import Config, addresses
from watcher.core.rows import Mark
from watcher.core.store import Store, StoreError

log = logging.getLogger("watcher.failsafe")
PROBE_EVERY = 30.0
STOPPED = ("WATCHER STOPPED: its database cannot be written ({reason}). Nobody is watching "
           "for the codes until this is fixed. What to do: on the watcher's server, free disk "
           "space or fix the database file's permissions; it resumes by itself.")
RESUMED = "Watcher resumed: its database can be written again, and it is watching."


def writable(store: Store, now: datetime) -> bool:
    try:
        with store.transaction():
            store.mark(Mark.PROBE, "", now)
    except StoreError:
        return False
    return True


async def tell_everyone(config: Config, channels: Mapping[str, Channel], text: str,
                        guard: Guard | None = None) -> int:
    """Send straight through the channels, bypassing the outbox (but never the guard, which
    falls back to the places it last read); return how many arrived."""
    guard = guard or Guard(config)
    sent = 0
    for contact in config.contacts:
        for channel_name, address in addresses(config, contact):
            channel = channels.get(channel_name)
            if channel is None or guard.refusal(channel_name, contact, address) is not None:
                continue
            with contextlib.suppress(Exception):  # any channel that still works will do
                async with asyncio.timeout(30):  # not wait_for: it can swallow a cancel
                    await channel.send(contact, address, text)
                sent += 1
    return sent


async def wait_until_writable(store: Store, stop: asyncio.Event,
                              clock: Callable[[], datetime], every: float = PROBE_EVERY) -> bool:
    """Probe until the database can be written (True) or the watcher is stopped (False)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(every):  # not wait_for: it can swallow a cancel
                await stop.wait()
        if not stop.is_set() and writable(store, clock()):
            return True
    return False
