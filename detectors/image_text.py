"""Text inside images: image bytes -> the lines an OCR engine reads in them.

The engine is RapidOCR (PP-OCRv4 detection and recognition as ONNX models shipped inside the
rapidocr-onnxruntime wheel: nothing is downloaded at run time). Why this engine and not
Tesseract: docs/architecture.md ("OCR engine") and docs/benchmarks.md ("OCR").

Bounded like every other detector: the bytes go through detectors/image_decode.py (same byte and
pixel caps, same refusal of anything odd) and are reduced to at most OCR_SIDE pixels on the long
side before the engine sees them, so one image costs at most a fixed amount of time and memory
whatever was posted. The engine is loaded once, lazily, on first use (loading costs about a
second and 30 MB, which a watcher with no `in_images` code never pays) and is used by one
thread at a time: the ONNX sessions are thread-safe, but RapidOCR keeps per-call settings on
the object, and running two 12 MP photos at once would only double the peak memory on a
two-core machine without finishing either sooner.

The lines read from one image are cached by the SHA-256 of its bytes, so the phrase codes that
look at the same event share one OCR pass, and so does the same picture posted again.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from detectors.image_decode import ImageLimits, ImageRefused, decode
from detectors.ocr_match import find_ocr
from detectors.phrase import PhraseMatcher
from watcher.core.models import DetectionFailed, ImageSource, ImageTooLarge

__all__ = ["OCR_SIDE", "ImageRefused", "ImageText", "TextReader", "find_in_images",
           "read_text", "reader"]

# Longest side the engine sees. A 12 MP photo (4000 px) is reduced by 3.1, so text whose
# x-height is 12 px here was about 38 px in the photo: a note held up to the camera or a
# caption drawn on a story. Larger sides read smaller text but cost time roughly with the
# pixel count (figures in docs/benchmarks.md).
OCR_SIDE = 1280
# Lines the recogniser is less sure of than this are dropped: below it PP-OCR's output on
# textures (gravel, foliage, brick) is letter soup, which is how false alarms are made.
MIN_SCORE = 0.5
# A photo of a full page can hold hundreds of lines; the recogniser's time grows with them.
# Past this many boxes the image is "could not be checked" rather than a stall.
MAX_BOXES = 300
# How many images' lines are remembered (the text of one image is a few hundred bytes).
CACHE_SIZE = 64


class ImageText(tuple[str, ...]):
    """The recognised lines of one image, top to bottom, left to right."""

    __slots__ = ()

    def joined(self) -> str:
        # One space between lines: a phrase may run over a line break on a hand-written note,
        # and phrase matching ignores spaces anyway.
        return " ".join(self)


class _Engine(Protocol):
    def __call__(self, img: Any, **kwargs: Any) -> tuple[Any, Any]: ...


def _load_engine() -> _Engine:
    # Imported here: onnxruntime and the models cost a second and tens of MB, paid only by a
    # watcher that has an `in_images` code and meets an image.
    from rapidocr_onnxruntime import RapidOCR

    engine: _Engine = RapidOCR(
        det_limit_side_len=OCR_SIDE,
        det_limit_type="max",
        # Upside-down text is not a case we measured or need; the classifier costs time.
        use_cls=False,
        max_side_len=OCR_SIDE,
        det_max_candidates=MAX_BOXES,
    )
    return engine


class TextReader:
    """Reads text in images; one instance per process is enough (see `reader()`)."""

    def __init__(self, limits: ImageLimits | None = None, side: int = OCR_SIDE) -> None:
        self.limits = limits or ImageLimits()
        self.side = side
        self._engine: _Engine | None = None
        self._engine_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[str, ImageText | ImageRefused] = OrderedDict()

    def read(self, data: bytes) -> ImageText:
        """The lines in the image, or ImageRefused when it cannot be read."""
        key = hashlib.sha256(data).hexdigest()
        with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
        if cached is None:
            try:
                cached = self._recognise(data)
            except ImageRefused as exc:
                cached = exc
            with self._cache_lock:
                self._cache[key] = cached
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        if isinstance(cached, ImageRefused):
            # A fresh exception each time: a cached one would carry an old traceback.
            raise ImageRefused(str(cached))
        return cached

    def _recognise(self, data: bytes) -> ImageText:
        rgb = decode(data, self.limits, self.side, upscale=False)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        with self._engine_lock:
            if self._engine is None:
                self._engine = _load_engine()
            try:
                found, _ = self._engine(bgr)
            except Exception as exc:
                # The engine is third-party code fed hostile pixels: any failure of it is a
                # picture that could not be checked, never a crashed worker.
                raise ImageRefused(f"text recognition failed ({type(exc).__name__})") from exc
            finally:
                _release_memory()
        return ImageText(_lines(found))


def _glibc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None  # not glibc (musl, macOS): nothing to give back this way
    return trim


_TRIM = _glibc_trim()


def _release_memory() -> None:
    """Give the engine's freed working memory back to the system.

    The text detector's activations for one photo take about 250 MB at OCR_SIDE; freed, they
    stay in glibc's per-thread heaps, so a watcher that read one photo kept about 130 MB more
    for good (benchmarks/ocr_memory.py: RSS 289 MB after a 12 MP photo, 164 MB after a trim,
    with the engine loaded). The trim costs a few milliseconds per image.
    """
    if _TRIM is not None:
        _TRIM(0)


def _lines(found: Sequence[Any] | None) -> list[str]:
    if not found:
        return []
    if len(found) > MAX_BOXES:
        raise ImageRefused(f"more than {MAX_BOXES} text boxes")
    kept = [item for item in found
            if isinstance(item[1], str) and float(item[2]) >= MIN_SCORE and item[1].strip()]
    return [item[1].strip() for item in _reading_order(kept)]


def _reading_order(items: list[Any]) -> list[Any]:
    """Rows top to bottom, boxes left to right within a row.

    The engine sorts boxes by their top edge, so a short word whose box starts a few pixels
    lower ("my" before "bicycle tyre", italic or tilted) came after the rest of its line and
    the phrase was read out of order (measured: benchmarks/ocr_accuracy.py). A box belongs to
    the current row when its vertical centre lies inside the row's first box.
    """
    def span(item: Any) -> tuple[float, float, float]:
        ys = [float(point[1]) for point in item[0]]
        return min(ys), max(ys), min(float(point[0]) for point in item[0])

    rows: list[list[Any]] = []
    row_span = (0.0, 0.0)
    for item in sorted(items, key=lambda it: sum(span(it)[:2])):
        top, bottom, _ = span(item)
        centre = (top + bottom) / 2
        if rows and row_span[0] <= centre <= row_span[1]:
            rows[-1].append(item)
        else:
            rows.append([item])
            row_span = (top, bottom)
    return [item for row in rows for item in sorted(row, key=lambda it: span(it)[2])]


_reader: TextReader | None = None
_reader_lock = threading.Lock()


def reader(limits: ImageLimits | None = None) -> TextReader:
    """The process's shared reader (one engine, one cache), created on first use.

    The limits of the first caller win: every code of one configuration shares the
    watcher's image caps.
    """
    global _reader
    with _reader_lock:
        if _reader is None:
            _reader = TextReader(limits)
        return _reader


def read_text(data: bytes, limits: ImageLimits | None = None) -> ImageText:
    return reader(limits).read(data)


def find_in_images(matcher: PhraseMatcher, images: Sequence[ImageSource],
                   limits: ImageLimits) -> Mapping[str, Any] | None:
    """The evidence of `matcher`'s phrase written in one of `images`, or None.

    Raises DetectionFailed when no image matched and at least one could not be read: the
    phrase may have been in it, so the engine must hear "could not be checked", not "no".
    """
    failures = []
    for index, image in enumerate(images):
        try:
            text = read_text(image.read(limits.max_bytes), limits).joined()
        except (ImageRefused, ImageTooLarge, OSError) as exc:
            failures.append(f"image {index}: text not readable: {exc}")
            continue
        # OCR-aware: the engine's known letter confusions are forgiven (detectors/ocr_match.py).
        found = find_ocr(matcher, text) if text else None
        if found is not None:
            hit = found.hit
            return {"detector": "phrase", "phrase": hit.phrase, "matched": hit.matched,
                    "span": [hit.start, hit.end], "distance": hit.distance,
                    "ocr_confusions": found.confusions,
                    "in": "image_text", "source": "image_text", "image": index}
    if failures:
        raise DetectionFailed("; ".join(failures))
    return None
