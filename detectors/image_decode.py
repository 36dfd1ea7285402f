"""Safe decoding of untrusted image bytes into a small working array.

Everything that arrives from a feed is hostile until proven otherwise: the size
caps are checked on the header before a single pixel is decoded, only a short
list of common formats is accepted (every extra parser is extra attack
surface), and any failure of the decoder becomes ImageRefused so that a
malformed post can never crash a worker thread with some other exception.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

# Longest side of the working image.  Hashes and keypoints are computed at this
# size for references and incoming images alike, so both go through the same
# resampling; 512 px keeps a 12 MP photo well inside the time budget.
WORK_SIDE = 512
# Below this the picture carries too little to compare and the hashes degenerate.
MIN_SIDE = 16
# What phones, browsers and the platforms actually post (the JPEG plugin
# also opens MPO, the multi-picture JPEG many cameras write).
FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")

# The most one decoded frame may take (a 60 MP palette image: 60 MB; an RGB one is
# four bytes a pixel, so RGB(A) above ~25 MP is refused unless it is a JPEG, which
# decodes at reduced size).  Keeps one image under 300 MB above idle
# (benchmarks/image_memory.py, docs/benchmarks.md).
DECODE_BUDGET = 100 * 2**20

RGB = npt.NDArray[np.uint8]


class ImageRefused(Exception):
    """An image that cannot be checked: too large, corrupt or not an image."""


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 25_000_000
    max_pixels: int = 60_000_000


def decode(data: bytes, limits: ImageLimits, side: int = WORK_SIDE, *,
           upscale: bool = True) -> RGB:
    """Decode to an RGB array whose longest side is `side`, or refuse.

    OCR asks for a larger side than the hashes (letters need pixels) and no
    upscaling (the OCR engine sizes small images itself); the caps are the same.
    """
    if len(data) > limits.max_bytes:
        raise ImageRefused(f"image of {len(data)} bytes exceeds the cap of {limits.max_bytes}")
    try:
        img = _decode(data, limits, side, upscale)
    except ImageRefused:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own check fired first (far beyond any sane cap): same answer.
        raise ImageRefused(f"image pixels exceed the cap ({exc})") from exc
    except MemoryError as exc:
        raise ImageRefused("image too large to decode") from exc
    except Exception as exc:
        # Pillow's decoders raise a zoo of exception types on crafted input
        # (OSError, SyntaxError, struct.error, IndexError, ...): none of them may
        # escape as anything but a refusal.
        raise ImageRefused(f"not a readable image ({type(exc).__name__}: {exc})") from exc
    return img


def _decode(data: bytes, limits: ImageLimits, side: int, upscale: bool) -> RGB:
    img: Image.Image = Image.open(io.BytesIO(data), formats=FORMATS)
    # Image.open has parsed the header only: refuse here, before decoding, so a
    # decompression bomb costs nothing.  Pillow's own bomb check is global
    # process state and its threshold is not ours, so we do not rely on it.
    width, height = img.size
    if width * height > limits.max_pixels:
        raise ImageRefused(
            f"image of {width}x{height} pixels exceeds the cap of {limits.max_pixels}"
        )
    if min(width, height) < MIN_SIDE:
        raise ImageRefused(f"image of {width}x{height} pixels is too small to check")
    if min(width, height) * WORK_SIDE < MIN_SIDE * max(width, height):
        # At the working size its short side would be under MIN_SIDE (16x8000 becomes
        # 512x1): nothing to compare, and the keypoint detector fails on it.
        raise ImageRefused(f"image of {width}x{height} pixels is too narrow to check")
    # Animated GIF/WebP/PNG/TIFF: Image.open leaves the first frame current, the one the
    # platforms show as the still preview, and load() decodes that frame only.
    # JPEG can decode straight at 1/2, 1/4 or 1/8 scale: a 12 MP photo then
    # costs a fraction of a full decode.  draft never goes below the size
    # asked; asking for 90 % of the working size lets a 4000 px photo use 1/8
    # (500 px, upscaled by 2 %) instead of 1/4, which halves the decode time.
    shrink = 0.9 * side / max(width, height)
    if shrink < 1:
        img.draft("RGB", (math.ceil(width * shrink), math.ceil(height * shrink)))
    # Other formats decode whole: what that costs is known from the header, so an
    # image whose decoded frame would not fit the budget is refused, not decoded.
    cost = img.width * img.height * _bytes_per_pixel(img.mode)
    if cost > DECODE_BUDGET:
        raise ImageRefused(
            f"image of {width}x{height} pixels ({img.format} {img.mode}) would take "
            f"{cost // 2**20} MB to decode, over the {DECODE_BUDGET // 2**20} MB budget"
        )
    img.load()
    # Shrink first, in the decoded mode, before any copy at full size (transposing,
    # flattening and converting each copy the whole frame, four bytes a pixel).
    img = _reduce(img)
    img = ImageOps.exif_transpose(img)
    img = _flatten(img)
    scale = side / max(img.size)
    if not upscale:
        scale = min(scale, 1.0)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.asarray(img, dtype=np.uint8)


def _bytes_per_pixel(mode: str) -> int:
    """What Pillow allocates per pixel for a decoded frame of this mode."""
    if mode in ("1", "L", "P"):
        return 1
    if mode.startswith("I;16"):
        return 2
    return 4


def _reduce(img: Image.Image) -> Image.Image:
    """Down to about twice the working size, cheaply, so later copies are small.

    Box reduction (an integer factor) keeps the detail LANCZOS needs afterwards; palette
    and bilevel frames cannot be box-reduced without a full-size conversion, so they are
    sampled (what is left after that is still reduced by LANCZOS)."""
    factor = max(img.size) // (2 * WORK_SIDE)
    if factor < 2:
        return img
    if img.mode in ("L", "LA", "RGB", "RGBA", "RGBa", "La", "I", "F", "CMYK"):
        return img.reduce(factor)
    size = (max(1, img.width // factor), max(1, img.height // factor))
    return img.resize(size, Image.Resampling.NEAREST)


def _flatten(img: Image.Image) -> Image.Image:
    """RGB on white: transparent areas must not turn into arbitrary colours."""
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")
