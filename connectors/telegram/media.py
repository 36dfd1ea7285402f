"""Images of a watched person's posts and profile, fetched before the event reaches the sink.

Images are downloaded here, on the event loop, and handed over as BytesImage: detectors
read them from worker threads, so a lazy source touching PTB's client there would be wrong.
Every download is refused up front when Telegram says the file is bigger than the cap, so a
decompression bomb is never even fetched.

A file Telegram cannot give us (too big, gone) becomes an image whose read fails: the engine
records a failed detection instead of a silent "no match". A network error is raised instead,
so the whole update is fetched again later and nothing is lost.

Files come from downloads only. PTB reads a file from this machine's disk instead of
downloading it when getFile answers with a path that exists here (meant for a local Bot API
server): a malicious or misconfigured server could make us read /etc/shadow or the watcher's
own database and feed it to the detectors. Unless `connectors.telegram.local_mode` is on,
any file_path that is not a download URL under the server's file endpoint is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import Bot, Message, PhotoSize
from telegram.error import BadRequest, EndPointNotFound, Forbidden, InvalidToken

from connectors.telegram.frames import moving_images
from watcher.core.models import BytesImage, ImageSource, ImageTooLarge

log = logging.getLogger("watcher.telegram")

NO_PHOTO = "none"  # the profile cursor when the person has no (visible) profile photo


@dataclass(frozen=True)
class RefusedImage:
    """An image we chose not to fetch, or Telegram would not give: reading it fails."""

    name: str
    reason: str
    too_large: bool = False

    def read(self, max_bytes: int) -> bytes:
        if self.too_large:
            raise ImageTooLarge(f"{self.name}: {self.reason}")
        raise OSError(f"{self.name}: {self.reason}")


def largest(sizes: Sequence[PhotoSize]) -> PhotoSize:
    """The biggest rendition of a photo (Telegram lists several; the order is not promised)."""
    return max(sizes, key=lambda s: (s.width * s.height, s.file_size or 0))


def is_image_document(message: Message) -> bool:
    document = message.document
    return document is not None and (document.mime_type or "").startswith("image/")


def downloadable(bot: Bot, file_path: str | None, local_mode: bool) -> bool:
    """A file_path PTB will fetch over HTTP from the Bot API server (and not read from
    this machine's disk), or any path when a local Bot API server is configured."""
    if not file_path:
        return False
    return local_mode or file_path.startswith(bot.base_file_url + "/")


class MediaFetcher:
    def __init__(self, bot: Bot, max_bytes: int, local_mode: bool = False) -> None:
        self.bot = bot
        self.max_bytes = max_bytes
        self.local_mode = local_mode

    async def images(self, message: Message, name: str) -> tuple[ImageSource, ...]:
        """The photo, or the image sent as a file, of a message (at most one each), and the
        stills of its sticker, animation or video (connectors/telegram/frames.py)."""
        found: list[ImageSource] = []
        if message.photo:
            best = largest(message.photo)
            found.append(await self.fetch(best.file_id, best.file_size, f"{name}/photo"))
        if message.document is not None and is_image_document(message):
            doc = message.document
            found.append(await self.fetch(doc.file_id, doc.file_size, f"{name}/document"))
        found.extend(await moving_images(self, message, name))  # i16-frames
        return tuple(found)

    async def fetch(self, file_id: str, size: int | None, name: str) -> ImageSource:
        """Download one file within the cap. A network error or a refused token propagates:
        the caller does not store the update, so it is fetched and tried again."""
        if size is not None and size > self.max_bytes:
            return self._too_large(name, size)
        try:
            file = await self.bot.get_file(file_id)
        except BadRequest as exc:  # "file is too big" (over 20 MB), "invalid file_id"
            return RefusedImage(name, f"Telegram would not give the file ({exc.message})")
        if not downloadable(self.bot, file.file_path, self.local_mode):
            # Never the path itself in the log: it is the server's choice, maybe hostile.
            log.warning("refused a file the Bot API server named by a local path (set "
                        "connectors.telegram.local_mode only for a local Bot API server)")
            return RefusedImage(name, "the Bot API server gave a local file path instead of "
                                      "a download; refused (connectors.telegram.local_mode "
                                      "is off)")
        if file.file_size is not None and file.file_size > self.max_bytes:
            return self._too_large(name, file.file_size)
        try:
            data = await file.download_as_bytearray()
        except (BadRequest, Forbidden, InvalidToken, EndPointNotFound) as exc:
            # PTB reports a missing file (404) as InvalidToken: the token was just accepted
            # by getFile, so this is about the file. Refused, not retried forever.
            return RefusedImage(name, f"the download was refused ({type(exc).__name__})")
        if len(data) > self.max_bytes:
            return self._too_large(name, len(data))
        return BytesImage(bytes(data), name)

    def _too_large(self, name: str, size: int) -> RefusedImage:
        return RefusedImage(name, f"{size} bytes > {self.max_bytes} (watcher.max_image_bytes); "
                                  "not downloaded", too_large=True)

    async def current_profile_photo(self, user_id: int) -> PhotoSize | None:
        """The person's current profile photo (largest size), None when none is visible."""
        photos = await self.bot.get_user_profile_photos(user_id, limit=1)
        if not photos.photos or not photos.photos[0]:
            return None
        return largest(photos.photos[0])
