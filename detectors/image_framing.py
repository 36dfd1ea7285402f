"""Find the photo inside what was posted: strip borders and app chrome.

People post codes as screenshots (status bar, toolbars, captions around the
photo) or with borders and letterboxing.  Whole-image hashes see all of that
as content, so the incoming image is also hashed as the box left after
trimming uniform borders and as the largest region that is not interface.
The analysis runs on grey levels: it only needs lines and flat areas, and
the full-colour version costs more than all the hashes together.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import numpy.typing as npt

from detectors.image_decode import MIN_SIDE, RGB

Gray = npt.NDArray[np.int16]
Box = tuple[int, int, int, int]  # top, bottom, left, right


def trim_borders(gray: Gray, tol: int = 14, share: float = 0.97) -> Box:
    """Box left after removing uniform borders.

    Each side is judged against its own outermost line, because letterboxing
    and frames often differ per side (black bars above, white mats beside).
    """
    height, width = gray.shape
    top, bottom, left, right = 0, height, 0, width

    def leading(lines: Gray) -> int:
        # Most photos have no border at all: settle those on the first line.
        limit = int(len(lines) * 0.45)
        if limit < 1 or (np.abs(lines[0] - np.median(lines[0])) <= tol).mean() < share:
            return 0
        near = (np.abs(lines[:limit] - np.median(lines[0])) <= tol).mean(axis=1) >= share
        return limit if near.all() else int(np.argmin(near))

    top += leading(gray[top:bottom, left:right])
    bottom -= leading(gray[top:bottom, left:right][::-1])
    left += leading(gray[top:bottom, left:right].T)
    right -= leading(gray[top:bottom, left:right].T[::-1])
    # JPEG rings along the edge of a border; step one pixel further in.
    return (top + (top > 0), bottom - (bottom < height), left + (left > 0),
            right - (right < width))


def _longest_run(busy: npt.NDArray[np.bool_], gap: int) -> tuple[int, int]:
    """Longest run of busy lines, bridging flat gaps of up to `gap` lines."""
    best = (0, 0)
    start = -1
    last_busy = -gap - 2
    for i in np.flatnonzero(busy).tolist():
        if i - last_busy > gap + 1:
            start = i
        last_busy = i
        if last_busy + 1 - start > best[1] - best[0]:
            best = (start, last_busy + 1)
    return best


def _span(lines: Gray, page: int | None) -> tuple[int, int, int | None]:
    """Extent of the content along the rows of `lines`, and the page shade.

    An app lays its content out as blocks (bars, the photo, action icons,
    caption lines) separated by padding: lines that are blank, to within JPEG
    noise, in the shade of the page.  The photo is the largest block.  The
    page shade is the most common shade among blank lines, so a blank line of
    another shade (a clear sky, a studio backdrop) stays part of the photo.
    """
    shades = np.median(lines, axis=1)
    blank = (np.abs(lines - shades[:, None]) <= 4).mean(axis=1) >= 0.97
    if page is None:
        if not blank.any():
            return 0, len(lines), None
        counts = np.bincount(np.clip(shades[blank], 0, 255).astype(np.int64) // 8)
        page = int(np.argmax(counts)) * 8 + 4
    padding = blank & (np.abs(shades - page) <= 8)
    start, stop = _longest_run(~padding, gap=0)
    if stop - start < MIN_SIDE or (start == 0 and stop == len(lines)):
        return 0, len(lines), page
    # Err inwards: PDQ forgives a slightly tighter crop (references are hashed
    # at 90 and 80 % too) far better than a sliver of page colour.
    margin = max(1, round(0.015 * (stop - start)))
    return start + margin, stop - margin, page


def content_box(gray: Gray) -> Box:
    """Box of the largest region that is not app chrome."""
    top, bottom, page = _span(gray, None)
    left, right, _ = _span(gray[top:bottom].T, page)
    return top, bottom, left, right


def framings(arr: RGB) -> Iterator[tuple[str, RGB]]:
    """The image as posted, without uniform borders, and without app chrome."""
    yield "as posted", arr
    height, width = arr.shape[:2]
    gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY).astype(np.int16)
    t, b, lft, r = trim_borders(gray)
    inner = content_box(gray[t:b, lft:r])
    seen: list[Box] = [(0, height, 0, width)]
    for label, box in (
        ("borders trimmed", (t, b, lft, r)),
        ("interface removed", (t + inner[0], t + inner[1], lft + inner[2], lft + inner[3])),
    ):
        top, bottom, left, right = box
        # Slivers, and boxes within a few pixels of one already hashed, would
        # only add comparisons, hence chances of a false match.
        if min(bottom - top, right - left) < MIN_SIDE or (
            (bottom - top) * (right - left) < 0.1 * height * width
        ):
            continue
        if any(sum(abs(x - y) for x, y in zip(box, old, strict=True)) < 0.02 * (height + width)
               for old in seen):
            continue
        seen.append(box)
        yield label, arr[top:bottom, left:right]
