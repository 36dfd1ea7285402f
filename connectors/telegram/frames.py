"""Stickers, GIF animations, videos and video notes of a Telegram message, as images (#16).

- A static sticker is a WebP image: it goes to the image codes like a photo.
- An animated sticker (.tgs, a Lottie vector animation) gives its thumbnail: nothing here
  renders Lottie. A video sticker (.webm) gives its thumbnail and its frames.
- An animation (Telegram turns every GIF into an MPEG-4 animation), a video, a video note,
  and a video sent as a file give their thumbnail, a video's cover (a frame the sender
  chose), and frames at connectors/video_frames.POSITIONS.

Every file is fetched through MediaFetcher: size-capped before the download, local paths
refused. The sticker's emoji reaches the event's text through the item table
(connectors/item_fields.py), not from here.
"""

from __future__ import annotations

from typing import Protocol

from telegram import Message, PhotoSize

from connectors.video_frames import Video, VideoLimits
from watcher.core.models import ImageSource


class Fetcher(Protocol):
    """What this module needs of media.MediaFetcher (which imports this module)."""

    max_bytes: int

    async def fetch(self, file_id: str, size: int | None, name: str) -> ImageSource: ...


async def moving_images(fetcher: Fetcher, message: Message, name: str
                        ) -> tuple[ImageSource, ...]:
    """The stills of a message's sticker, animation, video or video note (none: ())."""
    found: list[ImageSource] = []
    sticker = message.sticker
    if sticker is not None:
        if not sticker.is_animated and not sticker.is_video:
            found.append(await fetcher.fetch(sticker.file_id, sticker.file_size,
                                             f"{name}/sticker"))
        else:
            found.extend(await _thumbnail(fetcher, sticker.thumbnail, f"{name}/sticker"))
            if sticker.is_video:
                found.extend(await _frames(fetcher, sticker.file_id, sticker.file_size,
                                           f"{name}/sticker"))
    for kind, media in (("animation", message.animation), ("video", message.video),
                        ("video_note", message.video_note)):
        if media is None:
            continue
        found.extend(await _thumbnail(fetcher, media.thumbnail, f"{name}/{kind}"))
        cover = getattr(media, "cover", None)
        if cover:
            found.extend(await _thumbnail(fetcher, max(cover, key=_area), f"{name}/cover"))
        found.extend(await _frames(fetcher, media.file_id, media.file_size, f"{name}/{kind}"))
    document = message.document
    if (document is not None and message.animation is None
            and (document.mime_type or "").startswith("video/")):
        found.extend(await _thumbnail(fetcher, document.thumbnail, f"{name}/document"))
        found.extend(await _frames(fetcher, document.file_id, document.file_size,
                                   f"{name}/document"))
    return tuple(found)


def _area(size: PhotoSize) -> int:
    return size.width * size.height


async def _thumbnail(fetcher: Fetcher, thumb: PhotoSize | None, name: str
                     ) -> list[ImageSource]:
    if thumb is None:
        return []
    return [await fetcher.fetch(thumb.file_id, thumb.file_size, f"{name}/thumbnail")]


async def _frames(fetcher: Fetcher, file_id: str, size: int | None, name: str
                  ) -> tuple[ImageSource, ...]:
    """Downloaded now, on the loop (as photos are); decoded later, in the detection thread.
    A video refused (too big, gone) gives frames whose read fails: "could not be checked"."""
    source = await fetcher.fetch(file_id, size, name)
    return Video(source, VideoLimits(max_bytes=fetcher.max_bytes)).frames()
