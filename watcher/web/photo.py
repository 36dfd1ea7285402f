"""Meeting the survivor, the photo half: try a candidate reference photo before it becomes
an image code.

The page answers the three questions that decide whether a photo will work as a code:
is it detailed enough for the image detector to trust (PDQ quality and keypoints, the
bars detectors/image.py warns on), would it be taken for another code's photo, and is it
still found after what platforms and people do to a photo (recompressed, cropped, shown
in a screenshot)? The photo is the survivor's secret: it is decoded in memory, through
the bounded decoder only, and dropped with the answer; nothing of it is written to disk,
to the database or to a log.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from PIL import Image, ImageDraw

from detectors import image_features as feats
from detectors.image import (
    FEW_KEYPOINTS,
    PDQ_MIN_QUALITY,
    ImageLimits,
    ImageMatcher,
    ImageRefused,
    Probe,
)
from detectors.image_decode import decode
from watcher.core.config import Config
from watcher.web.enrol import toml_string

CANDIDATE = "candidate"
SUFFIXES = {".jpg": ".jpg", ".jpeg": ".jpg", ".png": ".png", ".webp": ".webp",
            ".gif": ".gif"}


@dataclass(frozen=True)
class Altered:
    name: str
    found: bool


@dataclass(frozen=True)
class PhotoTrial:
    person: str
    quality: int
    keypoints: int
    plain: bool
    clashes: list[str]  # names of the configured codes whose photo it matches
    altered: list[Altered]
    verdict: str
    good: bool
    toml: str
    file: str  # where the photo goes, relative to the config


class _InMemory(ImageMatcher):
    """An ImageMatcher over one reference held in memory: the same hashes, keypoints and
    decision as a configured code's, without the file a reference normally comes from."""

    def __init__(self, features: feats.Features, limits: ImageLimits) -> None:
        self._given = features
        super().__init__([Path(CANDIDATE)], limits)

    def _load_reference(self, path: Path, cache: MutableMapping[str, str] | None
                        ) -> feats.Features:
        return self._given


def limits_of(config: Config) -> ImageLimits:
    return ImageLimits(config.watcher.max_image_bytes, config.watcher.max_image_pixels)


def code_matchers(config: Config) -> tuple[dict[str, ImageMatcher], list[str]]:
    """The configured image codes' matchers (read once, off the loop), and the codes whose
    photos could not be read (the watcher's own check reports why)."""
    found: dict[str, ImageMatcher] = {}
    problems: list[str] = []
    for name, code in config.codes.items():
        if not code.image:
            continue
        try:
            found[name] = ImageMatcher(config.image_paths(name), limits_of(config))
        except ImageRefused:
            problems.append(f"the photo of code {name!r} could not be read: run `watcher "
                            "check` to see why")
    return found, problems


# -- what happens to a photo on its way to a feed (after benchmarks/corpora/
#    image_transforms.py, which the installed package must not import) --------------------

def _jpeg(img: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()  # in memory: the altered copies are never written anywhere
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _scaled(img: Image.Image, share: float) -> Image.Image:
    size = (max(1, round(img.width * share)), max(1, round(img.height * share)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _crop(img: Image.Image, share: float, centred: bool) -> bytes:
    w, h = round(img.width * share), round(img.height * share)
    x, y = ((img.width - w) // 2, (img.height - h) // 2) if centred else (0, 0)
    return _jpeg(img.crop((x, y, x + w, y + h)))


def _screenshot(img: Image.Image) -> bytes:
    """The photo inside a phone app: status bar, toolbar, action row, tab bar."""
    width, height = 1080, 2340
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 250), fill=(248, 248, 248))
    draw.polygon([(40, 170), (80, 140), (80, 200)], fill=(20, 20, 20))
    photo = _scaled(img, width / img.width)
    if photo.height > 1500:
        photo = _scaled(img, 1500 / img.height)
    canvas.paste(photo, ((width - photo.width) // 2, 270))
    y = 270 + photo.height + 30
    for i in range(4):
        draw.ellipse((40 + 110 * i, y, 110 + 110 * i, y + 70), outline=(20, 20, 20), width=6)
    draw.rectangle((0, height - 160, width, height), fill=(248, 248, 248))
    return _jpeg(canvas)


ALTERATIONS: Sequence[tuple[str, Callable[[Image.Image], bytes]]] = (
    ("recompressed (JPEG quality 30)", lambda im: _jpeg(im, 30)),
    ("halved and recompressed", lambda im: _jpeg(_scaled(im, 0.5), 70)),
    ("cropped to its centre (80%)", lambda im: _crop(im, 0.8, centred=True)),
    ("cropped to a corner (70%)", lambda im: _crop(im, 0.7, centred=False)),
    ("in a phone screenshot", _screenshot),
)


# -- the trial ---------------------------------------------------------------------------

def trial(config: Config, others: Mapping[str, ImageMatcher], data: bytes, person: str,
          filename: str) -> PhotoTrial:
    """Everything the page says about one candidate photo. Raises ImageRefused (too large,
    corrupt, not an image) before anything else is computed. Blocking: run in a thread."""
    limits = limits_of(config)
    arr = decode(data, limits)
    features = feats.Features(feats.reference_hashes(arr), feats.keypoints(arr))
    mine = _InMemory(features, limits)
    quality = int(features.hashes.quality[0])
    count = len(features.keypoints.descriptors)
    plain = quality < PDQ_MIN_QUALITY or count < FEW_KEYPOINTS
    clashes = [] if plain else _clashes(mine, others)
    picture = Image.fromarray(arr)
    altered = [] if plain else [
        Altered(name, bool(mine.match_all(Probe.from_bytes(make(picture), limits))))
        for name, make in ALTERATIONS]
    verdict, good = _verdict(quality, count, plain, clashes, altered)
    file = "codes/NAME" + SUFFIXES.get(PurePath(filename).suffix.lower(), ".jpg")
    snippet = (f"[codes.NAME]\nperson = {toml_string(person)}\n"
               f"image = [{toml_string(file)}]\nplaybook = \"PLAYBOOK\"\n")
    return PhotoTrial(person, quality, count, plain, clashes, altered, verdict, good,
                      snippet, file)


def _clashes(mine: ImageMatcher, others: Mapping[str, ImageMatcher]) -> list[str]:
    """Codes whose reference photo this one would be taken for, either way round (as
    detectors.image.cross_matches checks the configured codes against each other)."""
    found = []
    own = mine.reference_probe(0)
    for code, other in others.items():
        if other.match_all(own) or any(mine.match_all(other.reference_probe(i))
                                       for i in range(len(other.names))):
            found.append(code)
    return found


def _verdict(quality: int, count: int, plain: bool, clashes: list[str],
             altered: list[Altered]) -> tuple[str, bool]:
    if plain:
        return (f"too plain: choose a photo with more detail (PDQ quality {quality}, at "
                f"least {PDQ_MIN_QUALITY} wanted; {count} keypoints, at least "
                f"{FEW_KEYPOINTS} wanted). The watcher could not tell it from other "
                "pictures once it is recompressed or cropped."), False
    if clashes:
        names = ", ".join(repr(c) for c in clashes)
        return (f"too close to the photo of code {names}: an alert could name the wrong "
                "code. Choose another photo."), False
    kept = sum(a.found for a in altered)
    if kept == len(altered):
        return f"good: found again in {kept} of {len(altered)} altered copies.", True
    return (f"weak: found again in only {kept} of {len(altered)} altered copies; choose a "
            "photo with more detail (objects, edges, texture) across the frame."), False


def refusal(exc: ImageRefused) -> str:
    """A plain line for a refused upload. The decoder's own sentences ("image of WxH pixels
    exceeds the cap ...") name only sizes and are kept; a decoding failure's details
    (Pillow's) mean nothing to a contact, so they are left out."""
    reason = str(exc)
    if reason.startswith("image pixels exceed the cap"):
        reason = "the image has more pixels than watcher.max_image_pixels allows"
    elif not reason.startswith("image of "):
        reason = "it is not a readable photo (JPEG, PNG, WebP, GIF, BMP or TIFF)"
    return f"Refused: {reason}. Nothing of it was kept."
