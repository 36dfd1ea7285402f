"""The one error base.

Every error the project raises on purpose is a `WatcherError`: a message that is safe to show
and to log (it never carries message text, numbers, ids or secrets) and whether it is
`permanent` (a person must act: a bad login, a removed bot, a wrong config) or will pass by
itself (a service unreachable, a full disk freed). Connectors, channels and the store raise
their own subclasses, so a caller can catch the kind it can handle; the CLI turns any of them
into one clear line and an exit code.
"""

from __future__ import annotations


class WatcherError(Exception):
    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent
