"""Image codes: recognise an agreed photo after the platform and the survivor changed it.

Pure apart from reading the reference files at construction. Incoming images are
refused, never decoded, when they exceed the byte or pixel caps.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageRefused(Exception):
    """An image that cannot be checked: too large, corrupt or not an image."""


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 25_000_000
    max_pixels: int = 60_000_000


@dataclass(frozen=True)
class ImageHit:
    reference: str
    method: str
    distance: float
    details: dict[str, Any] = field(default_factory=dict)


def _open(data: bytes, limits: ImageLimits) -> Image.Image:
    if len(data) > limits.max_bytes:
        raise ImageRefused(f"image of {len(data)} bytes exceeds the cap of {limits.max_bytes}")
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > limits.max_pixels:
            raise ImageRefused(f"image of {img.width}x{img.height} pixels exceeds the cap")
        img.draft("RGB", (512, 512))
        img = ImageOps.exif_transpose(img)
        img.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(f"not a readable image ({type(exc).__name__})") from exc
    img.thumbnail((512, 512))
    return img.convert("RGB")


class ImageMatcher:
    """Matches incoming images against reference photos (first version: pHash)."""

    max_distance = 8

    def __init__(self, references: Sequence[Path], limits: ImageLimits | None = None) -> None:
        self.limits = limits or ImageLimits()
        self.warnings: list[str] = []
        self._refs: list[tuple[str, imagehash.ImageHash]] = []
        for path in references:
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise ImageRefused(f"cannot read {path}: {exc.strerror}") from exc
            self._refs.append((path.name, imagehash.phash(_open(data, self.limits))))

    def find(self, data: bytes) -> ImageHit | None:
        incoming = imagehash.phash(_open(data, self.limits))
        best: tuple[int, str] | None = None
        for name, ref in self._refs:
            distance = int(incoming - ref)
            if best is None or distance < best[0]:
                best = (distance, name)
        if best is not None and best[0] <= self.max_distance:
            return ImageHit(best[1], "phash", float(best[0]))
        return None
