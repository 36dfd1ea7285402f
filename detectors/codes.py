"""One detector per configured code, built once at start and then pure.

`match(event)` answers with the evidence of a match or None, and raises DetectionFailed
when it could not look (an unreadable image): the engine must hear about that, not a no.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any, Protocol

from detectors import image_text
from detectors.image import ImageLimits, ImageMatcher, ImageRefused, cross_matches
from detectors.phrase import PhraseMatcher
from detectors.phrase_words import preload, scripts_in
from watcher.core.config import Code, Config
from watcher.core.config_schema import ConfigError
from watcher.core.models import DetectionFailed, Event, ImageTooLarge
from watcher.core.reaction_target import canonical

TEXT_KINDS = ("message", "profile", "repost")


class Detector(Protocol):
    needs_threads: bool

    def match(self, event: Event) -> Mapping[str, Any] | None: ...


class PhraseDetector:
    def __init__(self, code: Code, limits: ImageLimits | None = None) -> None:
        self._matcher = PhraseMatcher(code.phrase or [], code.tolerance, code.negations,
                                      code.whole_words, transliterated=code.transliterated)
        self._limits = limits or ImageLimits()
        # OCR takes seconds: the engine must run it off the event loop.
        self.needs_threads = code.in_images

    def match(self, event: Event) -> Mapping[str, Any] | None:
        if event.kind not in TEXT_KINDS:
            return None
        for source, text in (("text", event.text), *(("alt", a) for a in event.alt)):
            hit = self._matcher.find(text) if text else None
            if hit is not None:
                return {"detector": "phrase", "phrase": hit.phrase, "matched": hit.matched,
                        "span": [hit.start, hit.end], "distance": hit.distance,
                        "in": source}
        if self.needs_threads and event.images:
            return image_text.find_in_images(self._matcher, event.images, self._limits)
        return None


class ImageDetector:
    needs_threads = True

    def __init__(self, matcher: ImageMatcher, limits: ImageLimits) -> None:
        self._matcher = matcher
        self._limits = limits

    def match(self, event: Event) -> Mapping[str, Any] | None:
        failures = []
        for index, image in enumerate(event.images):
            try:
                hit = self._matcher.find(image.read(self._limits.max_bytes))
            except (ImageRefused, ImageTooLarge, OSError) as exc:
                failures.append(f"image {index}: {exc}")
                continue
            if hit is not None:
                return {"detector": "image", "reference": hit.reference, "method": hit.method,
                        "distance": hit.distance, "image": index, **hit.details}
        if failures:
            raise DetectionFailed("; ".join(failures))
        return None


class ReactionDetector:
    needs_threads = False

    def __init__(self, code: Code) -> None:
        assert code.reaction is not None
        on = code.reaction.on
        self._on = canonical(on) or on.strip()  # the config check refuses unknown forms
        self._emoji = code.reaction.emoji

    def match(self, event: Event) -> Mapping[str, Any] | None:
        if event.kind != "reaction" or event.removed:
            return None
        targets = (t for t in (event.target, *event.target_aliases) if t)
        if not any((canonical(t) or t.strip()) == self._on for t in targets):
            return None
        if self._emoji is not None and event.emoji != self._emoji:
            return None
        return {"detector": "reaction", "target": event.target, "emoji": event.emoji}


class Filtered:
    """Applies what every code shares: its person and its platforms."""

    def __init__(self, code: Code, inner: Detector) -> None:
        self.person = code.person
        self.platforms = set(code.platforms) if code.platforms else None
        self.inner = inner
        self.needs_threads = inner.needs_threads

    def applies(self, event: Event) -> bool:
        return event.person == self.person and (
            self.platforms is None or event.platform in self.platforms)

    def match(self, event: Event) -> Mapping[str, Any] | None:
        return self.inner.match(event) if self.applies(event) else None


class CodeLoadError(ConfigError):
    """Reference photos or other code material that cannot be used, each named by its key."""


def build_detectors(config: Config, cache: MutableMapping[str, str] | None = None
                    ) -> tuple[dict[str, Filtered], list[str]]:
    """Build every code's detector; return them with load-time warnings.

    Raises CodeLoadError naming the TOML key of every reference photo that cannot be used.
    """
    limits = ImageLimits(config.watcher.max_image_bytes, config.watcher.max_image_pixels)
    detectors: dict[str, Filtered] = {}
    problems: list[str] = []
    warnings: list[str] = []
    images: dict[str, ImageMatcher] = {}
    for name, code in config.codes.items():
        inner: Detector
        if code.checkin is not None:
            continue  # silence is its signal: watched by the check-in clock, not per event
        if code.phrase is not None:
            inner = PhraseDetector(code, limits)
        elif code.reaction is not None:
            inner = ReactionDetector(code)
        else:
            try:
                matcher = ImageMatcher(config.image_paths(name), limits, cache=cache)
            except ImageRefused as exc:
                problems.append(f"codes.{name}.image: {exc}")
                continue
            warnings.extend(f"codes.{name}.image: {w}" for w in matcher.warnings)
            images[name] = matcher
            inner = ImageDetector(matcher, limits)
        detectors[name] = Filtered(code, inner)
    if problems:
        raise CodeLoadError(problems)
    # The word lists that judge typos take seconds to read: read them now, not on the first
    # alarm (docs/benchmarks-phrase.md).
    preload(scripts_in(p for code in config.codes.values() if code.tolerance == "typos"
                       for p in code.phrase or ()))
    # Two codes whose photos look alike would be taken for each other: say so at load.
    warnings.extend(cross_matches(images))
    return detectors, warnings
