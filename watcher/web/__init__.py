"""The contacts' page: a small web page served inside the watcher's own event loop.

`auth` (secret links) depends only on the store, so the playbook runner can mint the links
that alerts carry; `server` (aiohttp) is imported by the app only when [web] is configured.
"""
