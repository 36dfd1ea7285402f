"""Local-feature check: does a plausible geometric mapping carry the reference
onto the incoming image?

Hashes describe the whole frame and fail once the frame changes (off-centre
crops, rotations of a few degrees, text across the picture).  ORB keypoints
survive those, and a RANSAC homography turns "some descriptors look alike",
which happens between any two photos, into "dozens of them agree on one
geometry", which in the pilot never happened for unrelated pairs (at most 4
inliers against a median of 190-470 for true matches).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detectors.image_features import Keypoints

# Lowe's ratio test: a match counts only if clearly better than the runner-up.
RATIO = 0.75
# Fewer ratio-test survivors than this cannot reach the inlier bar anyway;
# skipping RANSAC for them keeps unrelated images (the common case) cheap.
MIN_GOOD = 12
# Reprojection tolerance in pixels of the 512 px working image.
RANSAC_PIXELS = 5.0


@dataclass(frozen=True)
class Verdict:
    inliers: int  # distinct incoming keypoints consistent with the homography
    good: int  # ratio-test survivors
    scale: float  # linear scale from reference to incoming (0 when rejected)


_NONE = Verdict(0, 0, 0.0)


def verify(probe: Keypoints, ref: Keypoints) -> Verdict:
    if len(probe.descriptors) < 2 or len(ref.descriptors) < 2:
        return _NONE
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(probe.descriptors, ref.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_GOOD:
        return Verdict(0, len(good), 0.0)
    src = ref.points[[m.trainIdx for m in good]].reshape(-1, 1, 2)
    dst = probe.points[[m.queryIdx for m in good]].reshape(-1, 1, 2)
    homography, mask = cv2.findHomography(
        src, dst, cv2.RANSAC, RANSAC_PIXELS, maxIters=2000, confidence=0.995
    )
    if homography is None or mask is None:
        return Verdict(0, len(good), 0.0)
    scale = _plausible_scale(homography, ref.size)
    if scale == 0.0:
        return Verdict(0, len(good), 0.0)
    kept = dst.reshape(-1, 2)[mask.reshape(-1).astype(bool)]
    # ORB often reports the same corner at several pyramid levels; counting
    # places rather than keypoints stops one textured spot from voting 5 times.
    distinct = len({(round(float(x) / 3), round(float(y) / 3)) for x, y in kept})
    return Verdict(distinct, len(good), scale)


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
