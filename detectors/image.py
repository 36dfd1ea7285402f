"""Image codes: recognise an agreed photo after the platform and the survivor changed it.

Three stages, cheapest first, each with margins measured on real photos
(docs/benchmarks-image.md):

1. PDQ over the 8 orientations and 3 centre crops of every reference, against
   the incoming image as posted, with uniform borders trimmed and cut to its
   largest non-interface region (screenshots).  Decides recompression,
   resizing, colour changes, flips, turns, borders and centre crops.
2. ORB keypoints with a RANSAC similarity or homography for what PDQ cannot
   see: off-centre crops, rotations of a few degrees, text across the picture.
3. Below the keypoint bar, two confirmations can each lower it: the reference,
   carried by the fitted transform, reproducing the incoming picture's detail
   tile by tile (another photo of the same landmark shares corners, not
   pixels), or pHash and dHash both close at the same alignment (they catch
   small rotations well but, alone, also pair unrelated photos).

A missed code can cost a life and a false alarm sends police to the door, so
no single weak signal decides.  Pure apart from reading the reference files
at construction; find() is safe to call from several threads at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from detectors import image_features as feats
from detectors.image_decode import WORK_SIDE, ImageLimits, ImageRefused, decode
from detectors.image_framing import framings
from detectors.image_orb import Verdict, agreement, verify

__all__ = ["ImageHit", "ImageLimits", "ImageMatcher", "ImageRefused", "Probe", "cross_matches"]

# Meta's operating point for PDQ; unrelated photos sat at >= 86 in the pilot.
PDQ_MAX = 31
PDQ_MIN_QUALITY = 50
# Two different photos of one landmark reached 19 inliers in the benchmark;
# re-posts that only keypoints find had 28 or more, failures 13 or fewer.
ORB_MIN_INLIERS = 25
# With pHash and dHash both within this many bits at one alignment...
PAIR_MAX = 10
# ...this many keypoint inliers suffice.
ORB_GATED_INLIERS = 10
# Fewer inliers than ORB_MIN_INLIERS, but at least this many, decide when the
# reference carried by the transform also reproduces the incoming picture's
# detail (image_orb.agreement) over enough of it.
# Re-posts found this way had 7-19 inliers and a median tile correlation of
# 0.56-0.97; other photos of the same landmark or scene reached 0.42 with
# 5-19 inliers (docs/benchmarks-image.md).
ORB_CHECKED_INLIERS = 7
AGREEMENT_MIN = 0.5
# A re-post, cropped or not, fills most of what was posted with the reference.
OVERLAP_MIN = 0.6
# A reference with fewer keypoints cannot be found once cropped or overlaid.
FEW_KEYPOINTS = 150

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint16)
_ROWS = len(feats.CROPS) * 8


@dataclass(frozen=True)
class ImageHit:
    """A match.  distance is in the method's unit, lower is closer: PDQ bits
    for "pdq", ORB_MIN_INLIERS / inliers for the keypoint methods."""

    reference: str
    method: str
    distance: float
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Probe:
    """An incoming image reduced to what matching needs; reusable across matchers."""

    hashes: feats.Hashes
    keypoints: feats.Keypoints
    # Keypoints of the photo cut out of app chrome, when there was chrome: in
    # a phone screenshot the photo is a small part of the frame.
    inner_keypoints: feats.Keypoints | None = None

    @classmethod
    def from_bytes(cls, data: bytes, limits: ImageLimits | None = None) -> Probe:
        arr = decode(data, limits or ImageLimits())
        frames = list(framings(arr))
        inner = dict(frames).get("interface removed")
        return cls(feats.probe_hashes(frames), feats.keypoints(arr),
                   None if inner is None else feats.keypoints(inner))


@dataclass(frozen=True)
class Score:
    """Everything measured between one probe and one reference."""

    reference: str
    pdq: int  # closest PDQ distance where both sides have enough quality
    pair: int  # closest max(pHash, dHash) at one alignment
    orb: Verdict | None  # None when PDQ already decided
    where: dict[str, Any]
    # Detail correlation and overlap of the warped reference, measured only
    # when the inliers alone do not decide.
    agreement: tuple[float, float] | None = None


def _hamming(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """All-pairs bit distances between packed rows of a and b."""
    counts: npt.NDArray[np.int64] = _POPCOUNT[np.bitwise_xor(a[:, None, :], b[None, :, :])].sum(
        axis=2, dtype=np.int64
    )
    return counts


class ImageMatcher:
    """Matches incoming images against reference photos."""

    def __init__(
        self,
        references: Sequence[Path],
        limits: ImageLimits | None = None,
        cache: MutableMapping[str, str] | None = None,
    ) -> None:
        self.limits = limits or ImageLimits()
        self.warnings: list[str] = []
        self.names: list[str] = []
        self._features: list[feats.Features] = []
        for path in references:
            features = self._load_reference(Path(path), cache)
            self.names.append(path.name)
            self._features.append(features)
            self._warn_if_plain(path.name, features)
        # One matrix per hash family so a probe is compared with all references
        # in a single vectorised step; row r belongs to reference r // _ROWS.
        empty = np.zeros((0, 32), np.uint8)
        self._pdq = np.concatenate([f.hashes.pdq for f in self._features] or [empty])
        small = np.zeros((0, 8), np.uint8)
        self._phash = np.concatenate([f.hashes.phash for f in self._features] or [small])
        self._dhash = np.concatenate([f.hashes.dhash for f in self._features] or [small])
        self._quality = np.concatenate(
            [f.hashes.quality for f in self._features] or [np.zeros(0, np.int16)]
        )

    def _load_reference(self, path: Path, cache: MutableMapping[str, str] | None) -> feats.Features:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageRefused(f"cannot read reference {path.name}: {exc.strerror}") from exc
        key = f"{hashlib.sha256(data).hexdigest()}:{feats.FEATURES_VERSION}:{WORK_SIDE}"
        if cache is not None and key in cache:
            try:
                return feats.load(cache[key])
            except (ValueError, KeyError, TypeError):
                pass  # a damaged entry is recomputed, never trusted
        try:
            arr = decode(data, self.limits)
        except ImageRefused as exc:
            raise ImageRefused(f"reference {path.name}: {exc}") from exc
        features = feats.Features(feats.reference_hashes(arr), feats.keypoints(arr))
        if cache is not None:
            cache[key] = feats.dump(features)
        return features

    def _warn_if_plain(self, name: str, features: feats.Features) -> None:
        quality = int(features.hashes.quality[0])
        if quality < PDQ_MIN_QUALITY:
            self.warnings.append(
                f"{name}: too plain to match reliably (PDQ quality {quality} < "
                f"{PDQ_MIN_QUALITY}); only keypoint matching can find it"
            )
        count = len(features.keypoints.descriptors)
        if count < FEW_KEYPOINTS:
            self.warnings.append(
                f"{name}: only {count} keypoints; crops, tilts and text overlays of it "
                "may go unrecognised"
            )

    def scores(self, probe: Probe) -> list[Score]:
        """Measure the probe against every reference (keypoints only when needed)."""
        if not self._features:
            return []
        ph = probe.hashes
        pdq = _hamming(ph.pdq, self._pdq)
        trusted = (ph.quality[:, None] >= PDQ_MIN_QUALITY) & (self._quality[None, :]
                                                              >= PDQ_MIN_QUALITY)
        pdq = np.where(trusted, pdq, 256)
        pair = np.maximum(_hamming(ph.phash, self._phash), _hamming(ph.dhash, self._dhash))
        out: list[Score] = []
        for index, name in enumerate(self.names):
            cols = slice(index * _ROWS, (index + 1) * _ROWS)
            ref_pdq, ref_pair = pdq[:, cols], pair[:, cols]
            frame, row = np.unravel_index(int(np.argmin(ref_pdq)), ref_pdq.shape)
            best_pdq = int(ref_pdq[frame, row])
            best_pair = int(ref_pair.min())
            where = {
                "framing": ph.framings[int(frame)] if ph.framings else "as posted",
                "orientation": int(row) % 8,
                "crop": feats.CROPS[int(row) // 8],
            }
            orb = None
            agree = None
            if best_pdq > PDQ_MAX:
                orb, agree = self._keypoint_check(probe, self._features[index].keypoints)
            out.append(Score(name, best_pdq, best_pair, orb, where, agree))
        return out

    @staticmethod
    def _keypoint_check(probe: Probe, ref: feats.Keypoints
                        ) -> tuple[Verdict, tuple[float, float] | None]:
        """The best keypoint verdict over the probe as posted and, for
        screenshots, the photo cut out of it; with its pixel agreement when
        the inliers alone do not decide."""
        best: tuple[Verdict, tuple[float, float] | None] = (Verdict(0, 0, 0.0), None)
        for keypoints in (probe.keypoints, probe.inner_keypoints):
            if keypoints is None:
                continue
            orb = verify(keypoints, ref)
            agree = None
            if orb.homography is not None and ORB_CHECKED_INLIERS <= orb.inliers < ORB_MIN_INLIERS:
                agree = agreement(keypoints, ref, orb.homography)
            if _strength(orb, agree) > _strength(*best):
                best = (orb, agree)
            if orb.inliers >= ORB_MIN_INLIERS:
                break
        return best

    def match_all(self, probe: Probe) -> list[ImageHit]:
        """Every reference the probe matches, best first."""
        hits = [hit for hit in map(decide, self.scores(probe)) if hit is not None]
        return sorted(hits, key=lambda h: (h.method != "pdq", h.distance))

    def find(self, data: bytes) -> ImageHit | None:
        hits = self.match_all(Probe.from_bytes(data, self.limits))
        return hits[0] if hits else None

    def reference_probe(self, index: int) -> Probe:
        """A reference as it would arrive untouched, for cross-checking codes."""
        features = self._features[index]
        h = features.hashes
        # Row 0 is the upright, uncropped variant.
        return Probe(feats.Hashes(h.pdq[:1], h.phash[:1], h.dhash[:1], h.quality[:1]),
                     features.keypoints)


def decide(score: Score) -> ImageHit | None:
    details: dict[str, Any] = {"pdq": score.pdq, "hash_pair": score.pair, **score.where}
    if score.pdq <= PDQ_MAX:
        return ImageHit(score.reference, "pdq", float(score.pdq), details)
    if score.orb is None:
        return None
    details.update(inliers=score.orb.inliers, good_matches=score.orb.good,
                   scale=round(score.orb.scale, 3))
    inliers = score.orb.inliers
    if inliers >= ORB_MIN_INLIERS:
        return ImageHit(score.reference, "orb", ORB_MIN_INLIERS / inliers, details)
    if score.agreement is not None:
        details.update(agreement=round(score.agreement[0], 3),
                       overlap=round(score.agreement[1], 3))
        if _agrees(inliers, score.agreement):
            return ImageHit(score.reference, "orb+pixels", ORB_MIN_INLIERS / inliers, details)
    if score.pair <= PAIR_MAX and inliers >= ORB_GATED_INLIERS:
        return ImageHit(score.reference, "hashes+orb", ORB_MIN_INLIERS / inliers, details)
    return None


def _agrees(inliers: int, agree: tuple[float, float] | None) -> bool:
    return (agree is not None and inliers >= ORB_CHECKED_INLIERS
            and agree[0] >= AGREEMENT_MIN and agree[1] >= OVERLAP_MIN)


def _strength(orb: Verdict, agree: tuple[float, float] | None) -> tuple[bool, bool, int]:
    """Order keypoint verdicts: decisive on inliers, then confirmed by pixels."""
    return orb.inliers >= ORB_MIN_INLIERS, _agrees(orb.inliers, agree), orb.inliers


def cross_matches(matchers: Mapping[str, ImageMatcher]) -> list[str]:
    """Warnings for references of different codes that would be taken for each other."""
    found: list[str] = []
    for (code_a, a), (code_b, b) in combinations(matchers.items(), 2):
        seen: set[tuple[str, str]] = set()
        for this_code, this, other_code, other in ((code_a, a, code_b, b), (code_b, b, code_a, a)):
            for index, name in enumerate(this.names):
                for hit in other.match_all(this.reference_probe(index)):
                    pair = (name, hit.reference) if this is a else (hit.reference, name)
                    if pair in seen:
                        continue
                    seen.add(pair)
                    found.append(
                        f"reference {name} of code {this_code!r} matches reference "
                        f"{hit.reference} of code {other_code!r} ({hit.method}); "
                        "an alert could name the wrong code"
                    )
    return found
