"""What is remembered about an image: perceptual hashes and ORB keypoints.

A reference is described generously (8 orientations x 3 centre crops), an
incoming image cheaply (one orientation, up to 3 framings), because references
are hashed once and cached while every incoming post is hashed on the hot path.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import cv2
import imagehash
import numpy as np
import numpy.typing as npt
import pdqhash
from PIL import Image

from detectors.image_decode import RGB, WORK_SIDE

# Bump whenever anything below changes what gets stored: cached references are
# keyed by content hash plus this tag, so stale entries are simply not found.
FEATURES_VERSION = "img-v3"

CROPS = (1.0, 0.9, 0.8)
ORB_FEATURES = 500
# Longest side of the grey thumbnail kept next to the keypoints: enough to see
# whether a homography carries the reference's picture, not just a few
# corners, onto the incoming image (image_orb.agreement).
THUMB_SIDE = 128
U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]

# The 8 dihedral transforms, numbered as pdqhash.compute_dihedral numbers them
# (identity, rot90, rot180, rot270, flipX, flipY, transpose, transverse).
_ORIENTATIONS: tuple[tuple[Image.Transpose, ...], ...] = (
    (),
    (Image.Transpose.ROTATE_90,),
    (Image.Transpose.ROTATE_180,),
    (Image.Transpose.ROTATE_270,),
    (Image.Transpose.FLIP_TOP_BOTTOM,),
    (Image.Transpose.FLIP_LEFT_RIGHT,),
    (Image.Transpose.TRANSPOSE,),
    (Image.Transpose.TRANSVERSE,),
)


@dataclass(frozen=True)
class Hashes:
    """Packed hash rows: row i of each array belongs to the same variant."""

    pdq: U8  # (n, 32)
    phash: U8  # (n, 8)
    dhash: U8  # (n, 8)
    quality: npt.NDArray[np.int16]  # (n,) PDQ quality of the framing or crop hashed
    framings: tuple[str, ...] = ()  # for probes: what each row shows


@dataclass(frozen=True)
class Keypoints:
    points: F32  # (n, 2) pixel coordinates in the working image
    descriptors: U8  # (n, 32) ORB descriptors
    size: tuple[int, int]  # (width, height) of the working image
    # Grey thumbnail of the same image, THUMB_SIDE on its longest side.
    thumb: U8 = field(default_factory=lambda: np.zeros((0, 0), np.uint8))


@dataclass(frozen=True)
class Features:
    hashes: Hashes
    keypoints: Keypoints


def _pack(bits: npt.NDArray[np.generic]) -> U8:
    return np.packbits(np.asarray(bits, dtype=bool).reshape(-1))


def _small_hashes(gray: Image.Image) -> tuple[U8, U8]:
    return _pack(imagehash.phash(gray).hash), _pack(imagehash.dhash(gray).hash)


def _centre_crop(arr: RGB, share: float) -> RGB:
    if share >= 1.0:
        return arr
    height, width = arr.shape[:2]
    dy, dx = round(height * (1 - share) / 2), round(width * (1 - share) / 2)
    return arr[dy : height - dy, dx : width - dx]


def reference_hashes(arr: RGB) -> Hashes:
    """Hashes of every orientation of every centre crop of a reference.

    Each orientation is hashed from actually turned pixels rather than with
    pdqhash.compute_dihedral: PDQ's downsampling is not symmetric on
    non-square images, so derived hashes sat up to 34 bits away from the hash
    of a really flipped photo.  References are hashed once and cached.
    """
    pdq_rows: list[U8] = []
    ph_rows: list[U8] = []
    dh_rows: list[U8] = []
    quality: list[int] = []
    for share in CROPS:
        crop = Image.fromarray(np.ascontiguousarray(_centre_crop(arr, share)))
        for transposes in _ORIENTATIONS:
            turned = crop
            for op in transposes:
                turned = turned.transpose(op)
            vector, crop_quality = pdqhash.compute(np.asarray(turned, dtype=np.uint8))
            ph, dh = _small_hashes(turned.convert("L"))
            pdq_rows.append(_pack(vector))
            ph_rows.append(ph)
            dh_rows.append(dh)
            quality.append(int(crop_quality))
    return Hashes(np.stack(pdq_rows), np.stack(ph_rows), np.stack(dh_rows),
                  np.array(quality, dtype=np.int16))


def probe_hashes(frames: list[tuple[str, RGB]]) -> Hashes:
    """Hashes of an incoming image in its framings (upright only)."""
    pdq_rows: list[U8] = []
    ph_rows: list[U8] = []
    dh_rows: list[U8] = []
    qualities: list[int] = []
    labels: list[str] = []
    for label, frame in frames:
        labels.append(label)
        vector, quality = pdqhash.compute(np.ascontiguousarray(frame))
        ph, dh = _small_hashes(Image.fromarray(frame).convert("L"))
        pdq_rows.append(_pack(vector))
        ph_rows.append(ph)
        dh_rows.append(dh)
        qualities.append(int(quality))
    return Hashes(np.stack(pdq_rows), np.stack(ph_rows), np.stack(dh_rows),
                  np.array(qualities, dtype=np.int16), tuple(labels))


def keypoints(arr: RGB) -> Keypoints:
    # A part cut out of the working image (the photo inside a screenshot) is
    # brought back to the working size: ORB ignores a 31 px margin and its
    # pyramid spans only about 3.6x in scale, so a small cut-out would yield few
    # keypoints, at scales the reference never had.
    if max(arr.shape[:2]) < WORK_SIDE:
        scale = WORK_SIDE / max(arr.shape[:2])
        arr = np.asarray(cv2.resize(arr, (round(arr.shape[1] * scale), round(arr.shape[0] * scale)),
                                    interpolation=cv2.INTER_LINEAR), dtype=np.uint8)
    # A fresh detector per call: OpenCV objects are not documented thread-safe
    # and creating one costs microseconds.
    orb = cv2.ORB.create(nfeatures=ORB_FEATURES)
    gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    size = (arr.shape[1], arr.shape[0])
    found, descriptors = orb.detectAndCompute(gray, None)
    thumb = _thumb(np.asarray(gray, np.uint8))
    if descriptors is None or not found:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), size, thumb)
    points = np.array([k.pt for k in found], dtype=np.float32)
    return Keypoints(points, np.asarray(descriptors, dtype=np.uint8), size, thumb)


def _thumb(gray: U8) -> U8:
    scale = THUMB_SIDE / max(gray.shape)
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def _b64(arr: npt.NDArray[np.generic]) -> str:
    return base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")


def dump(features: Features) -> str:
    h, k = features.hashes, features.keypoints
    return json.dumps({
        "version": FEATURES_VERSION,
        "pdq": _b64(h.pdq), "phash": _b64(h.phash), "dhash": _b64(h.dhash),
        "quality": [int(q) for q in h.quality],
        "points": _b64(k.points), "descriptors": _b64(k.descriptors), "size": list(k.size),
        "thumb": _b64(k.thumb), "thumb_width": int(k.thumb.shape[1]),
    })


def _un64(text: str, dtype: type[np.generic], width: int) -> npt.NDArray[np.generic]:
    return np.frombuffer(base64.b64decode(text), dtype=dtype).reshape(-1, width).copy()


def load(text: str) -> Features:
    """Inverse of dump; raises ValueError (or KeyError/TypeError) on anything odd."""
    raw = json.loads(text)
    if raw.get("version") != FEATURES_VERSION:
        raise ValueError("stale cache entry")
    pdq = _un64(raw["pdq"], np.uint8, 32)
    phash = _un64(raw["phash"], np.uint8, 8)
    dhash = _un64(raw["dhash"], np.uint8, 8)
    quality = np.array([int(q) for q in raw["quality"]], dtype=np.int16)
    rows = len(CROPS) * len(_ORIENTATIONS)
    if not (len(pdq) == len(phash) == len(dhash) == len(quality) == rows):
        raise ValueError("cache entry has the wrong number of hashes")
    points = _un64(raw["points"], np.float32, 2)
    descriptors = _un64(raw["descriptors"], np.uint8, 32)
    if len(points) != len(descriptors):
        raise ValueError("cache entry has mismatched keypoints")
    width, height = (int(v) for v in raw["size"])
    thumb = _un64(raw["thumb"], np.uint8, int(raw["thumb_width"]))
    if thumb.size == 0 or THUMB_SIDE not in thumb.shape:
        raise ValueError("cache entry has a malformed thumbnail")
    return Features(
        Hashes(pdq.astype(np.uint8), phash.astype(np.uint8), dhash.astype(np.uint8),
               quality),
        Keypoints(points.astype(np.float32), descriptors.astype(np.uint8), (width, height),
                  thumb.astype(np.uint8)),
    )
