"""The one backoff: after failures in a row, waits that double from `first` up to `cap`.

Every retry loop uses it (the connectors' reconnects, the outbox's deliveries), so they all
behave alike: `free` failures may be retried at once (a websocket cut is normal), then the
wait doubles; a success starts again from the beginning.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Backoff:
    first: float
    cap: float
    free: int = 0
    failures: int = 0

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` failures in a row (pure: no state changes)."""
        if failures <= self.free:
            return 0.0
        return min(self.cap, self.first * 2.0 ** min(failures - self.free - 1, 62))

    def failed(self) -> float:
        """Count one more failure; the seconds to wait before trying again."""
        self.failures += 1
        return self.delay(self.failures)

    def reset(self) -> None:
        self.failures = 0
