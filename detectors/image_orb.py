"""Local-feature check: does a plausible geometric mapping carry the reference
onto the incoming image?

Hashes describe the whole frame and fail once the frame changes (off-centre
crops, rotations of a few degrees, text across the picture).  ORB keypoints
survive those, and a RANSAC similarity or homography turns "some descriptors
look alike", which happens between any two photos, into "dozens of them agree
on one geometry", which in the pilot never happened for unrelated pairs (at
most 4 inliers against a median of 190-470 for true matches).  agreement()
then checks the pixels themselves for the few matches with fewer inliers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import numpy.typing as npt

from detectors.image_features import Keypoints

# Lowe's ratio test: a match counts only if clearly better than the runner-up.
RATIO = 0.75
# Fewer ratio-test survivors than this cannot reach the inlier bar anyway;
# skipping RANSAC for them keeps unrelated images (the common case) cheap.
MIN_GOOD = 8
# Reprojection tolerance in pixels of the 512 px working image.
RANSAC_PIXELS = 5.0
# Agreement check on thumbnails of THUMB_SIDE px: detail finer than
# HIGHPASS_SIGMA pixels is compared in TILE x TILE tiles; tiles flatter than
# FLAT grey levels on both sides are skipped, and fewer than MIN_TILES
# compared tiles give no agreement at all.
HIGHPASS_SIGMA = 2.0
TILE = 16
FLAT = 2.0
MIN_TILES = 8


@dataclass(frozen=True)
class Verdict:
    inliers: int  # distinct incoming keypoints consistent with the homography
    good: int  # ratio-test survivors
    scale: float  # linear scale from reference to incoming (0 when rejected)
    # Reference working image -> incoming keypoint frame; None when rejected.
    homography: npt.NDArray[np.float64] | None = field(default=None, compare=False, repr=False)


_NONE = Verdict(0, 0, 0.0)


def verify(probe: Keypoints, ref: Keypoints) -> Verdict:
    if len(probe.descriptors) < 2 or len(ref.descriptors) < 2:
        return _NONE
    # The two nearest reference descriptors of every incoming one, as arrays:
    # the same brute-force search as BFMatcher.knnMatch without building
    # 2 x 500 DMatch objects per reference, which cost as much as the search.
    distances, nearest = cv2.batchDistance(probe.descriptors, ref.descriptors, cv2.CV_32S,
                                           normType=cv2.NORM_HAMMING, K=2)
    good = np.flatnonzero(distances[:, 0] < RATIO * distances[:, 1])
    if len(good) < MIN_GOOD:
        return Verdict(0, len(good), 0.0)
    src = ref.points[nearest[good, 0]].reshape(-1, 1, 2)
    dst = probe.points[good].reshape(-1, 1, 2)
    best = Verdict(0, len(good), 0.0)
    for model in _models(src, dst):
        if model is None:
            continue
        transform, mask = model
        scale = _plausible_scale(transform, ref.size)
        if scale == 0.0:
            continue
        kept = dst.reshape(-1, 2)[mask.reshape(-1).astype(bool)]
        # ORB often reports the same corner at several pyramid levels; counting
        # places rather than keypoints stops one textured spot from voting 5 times.
        distinct = len({(round(float(x) / 3), round(float(y) / 3)) for x, y in kept})
        if distinct > best.inliers:
            best = Verdict(distinct, len(good), scale, transform)
    return best


_Model = tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]] | None


def _models(src: npt.NDArray[np.float32], dst: npt.NDArray[np.float32]) -> list[_Model]:
    """A similarity (turn, scale, shift: what re-posting does) and a full
    homography (photos of a screen).  The similarity also survives matches
    that lie almost on one line, a tower or a horizon, where RANSAC's
    homography degenerates into a fold."""
    models: list[_Model] = []
    affine, mask = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS, maxIters=2000,
        confidence=0.995)
    models.append(None if affine is None or mask is None else
                  (np.vstack([np.asarray(affine, np.float64), [0.0, 0.0, 1.0]]),
                   np.asarray(mask, np.uint8)))
    homography, mask = cv2.findHomography(
        src, dst, cv2.RANSAC, RANSAC_PIXELS, maxIters=2000, confidence=0.995
    )
    models.append(None if homography is None or mask is None else
                  (np.asarray(homography, np.float64), np.asarray(mask, np.uint8)))
    return models


def _plausible_scale(homography: np.ndarray, size: tuple[int, int]) -> float:
    """Linear scale of the mapping, or 0.0 for a degenerate or absurd one.

    A photo re-posted is scaled, cropped or turned, not mirrored (flips are
    the hashes' job), folded or stretched tenfold; RANSAC on a handful of
    chance matches tends to produce exactly such maps.
    """
    width, height = size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    projected = (homography @ np.hstack([corners, np.ones((4, 1))]).T).T
    if np.any(projected[:, 2] <= 1e-6):
        return 0.0  # a corner crossed the horizon: not a view of a flat picture
    quad = projected[:, :2] / projected[:, 2:3]
    # Signed cross products at each corner: all positive means convex with the
    # winding of the original corners, i.e. not mirrored.
    edges = np.roll(quad, -1, axis=0) - quad
    following = np.roll(edges, -1, axis=0)
    turns = edges[:, 0] * following[:, 1] - edges[:, 1] * following[:, 0]
    if not np.all(turns > 0):
        return 0.0
    area = 0.5 * abs(float(np.sum(quad[:, 0] * np.roll(quad[:, 1], -1)
                                  - quad[:, 1] * np.roll(quad[:, 0], -1))))
    scale = float(np.sqrt(area / (width * height)))
    if not 0.2 <= scale <= 5.0:
        return 0.0
    sides = np.linalg.norm(edges, axis=1)
    # Opposite sides of a re-posted picture stay comparable in length.
    for a, b in ((sides[0], sides[2]), (sides[1], sides[3])):
        if max(a, b) > 3 * min(a, b):
            return 0.0
    return scale


def _highpass(gray: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Detail only: lighting, colour grading and sky-above-ground layouts,
    which any two outdoor photos share, are removed."""
    blurred = cv2.GaussianBlur(gray, (0, 0), HIGHPASS_SIGMA)
    out: npt.NDArray[np.float32] = gray - blurred
    return out


def agreement(probe: Keypoints, ref: Keypoints, homography: npt.NDArray[np.float64]
              ) -> tuple[float, float]:
    """(correlation, overlap): how well the reference, carried by the transform,
    reproduces the incoming picture's detail where the two overlap.

    Keypoint inliers count corners that agree.  A second photo of the same
    landmark has such corners on the building but not in the rest of the
    picture, and its off-plane parts do not follow one transform; a re-post
    agrees nearly pixel for pixel.  The thumbnails are compared tile by tile
    and the median tile correlation is returned, so a caption written across
    a few tiles does not sink a true match.  overlap is the share of the
    incoming thumbnail the warped reference covers.
    """
    if probe.thumb.size == 0 or ref.thumb.size == 0:
        return 0.0, 0.0
    ph, pw = probe.thumb.shape
    rh, rw = ref.thumb.shape
    to_probe = np.diag([pw / probe.size[0], ph / probe.size[1], 1.0])
    from_ref = np.diag([ref.size[0] / rw, ref.size[1] / rh, 1.0])
    h = to_probe @ homography @ from_ref
    warped = np.asarray(cv2.warpPerspective(ref.thumb.astype(np.float32), h, (pw, ph),
                                            flags=cv2.INTER_LINEAR,
                                            borderMode=cv2.BORDER_REFLECT), np.float32)
    inside = cv2.warpPerspective(np.ones((rh, rw), np.uint8), h, (pw, ph),
                                 flags=cv2.INTER_NEAREST, borderValue=0)
    # Stay clear of the edges, where the high-pass filter sees the border.
    margin = max(1, round(2 * HIGHPASS_SIGMA))
    mask = cv2.erode(inside, np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)).astype(bool)
    overlap = float(mask.mean())
    a_all = _highpass(warped)
    b_all = _highpass(probe.thumb.astype(np.float32))
    scores: list[float] = []
    for y in range(0, ph - TILE + 1, TILE):
        for x in range(0, pw - TILE + 1, TILE):
            inside_tile = mask[y : y + TILE, x : x + TILE]
            if inside_tile.mean() < 0.8:
                continue
            a = a_all[y : y + TILE, x : x + TILE][inside_tile]
            b = b_all[y : y + TILE, x : x + TILE][inside_tile]
            a, b = a - a.mean(), b - b.mean()
            if a.std() < FLAT and b.std() < FLAT:
                continue  # sky, wall, page: says nothing either way
            denominator = float(np.sqrt(float(np.dot(a, a)) * float(np.dot(b, b))))
            scores.append(float(np.dot(a, b)) / denominator if denominator > 1e-6 else 0.0)
    if len(scores) < MIN_TILES:
        return 0.0, overlap
    return float(np.median(scores)), overlap
