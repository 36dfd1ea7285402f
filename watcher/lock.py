"""One watcher per database: a second one would deliver every alert twice."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from watcher.core.store import StoreError, os_reason


class AlreadyRunning(StoreError):
    """Another watcher runs on this database: it cannot be used (exit 1, like any other
    reason the database cannot be used)."""


class ProcessLock:
    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False when another process holds it. StoreError when the lock
        file beside the database cannot be made (the database could not be either)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot use the database {self.database}: "
                             f"{os_reason(exc)}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
