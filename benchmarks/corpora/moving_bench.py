"""The agreed photos as a sticker, a GIF turned into MP4 and a 5-second video (#16), through
the watcher's own video decoder (connectors/video_frames.py): recall, false positives on the
corpus turned into the same formats, and the decoder's time and peak memory per video.

Called by benchmarks/image_accuracy.py --moving.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from moving_media import clip, gif_mp4, sticker, thumbnail
from PIL import Image

from connectors.video_frames import Video, VideoLimits, bundled_ffmpeg
from detectors import image as det
from watcher.core.models import BytesImage, ImageSource

SOURCE_SIDE = 3000
MAX = 25_000_000
GREY = Image.new("RGB", (1280, 720), (128, 128, 128))


def _video(data: bytes, limits: VideoLimits) -> list[ImageSource]:
    """What the connector hands the codes: the frames, and the platform's thumbnail (made,
    as Telegram does, from the first frame)."""
    frames: list[ImageSource] = list(Video(BytesImage(data, "video"), limits).frames())
    try:
        first = Image.open(io.BytesIO(frames[0].read(MAX)))
    except OSError:
        return frames  # _hits counts the frames as not checked
    return [BytesImage(thumbnail(first), "thumbnail"), *frames]


FORMATS: dict[str, Callable[[Image.Image], bytes]] = {
    "sticker (WebP, 512 px)": sticker,
    "GIF -> H.264 MP4 (as Telegram)": gif_mp4,
    "5 s video, photo on screen 1-3 s": lambda img: clip(img, GREY),
}


def _stills(label: str, data: bytes, limits: VideoLimits) -> list[ImageSource]:
    return [BytesImage(data, "sticker")] if label.startswith("sticker") else _video(data, limits)


def _open(path: Path) -> Image.Image:
    img = Image.open(path).convert("RGB")
    img.thumbnail((SOURCE_SIDE, SOURCE_SIDE), Image.Resampling.LANCZOS)
    return img


UNCHECKED = "(could not be checked)"


def _hits(matchers: list[det.ImageMatcher], stills: list[ImageSource]) -> list[str]:
    """The references hit by any still; UNCHECKED for a still that could not be read (the
    watcher would record the item as "could not be checked": counted apart)."""
    found = []
    for still in stills:
        try:
            probe = det.Probe.from_bytes(still.read(MAX))
        except (OSError, det.ImageRefused):
            found.append(UNCHECKED)
            continue
        for matcher in matchers:
            found.extend(hit.reference for hit in matcher.match_all(probe))
    return found


def recall(refs: list[Path], groups: list[list[Path]], matchers: list[det.ImageMatcher],
           limits: VideoLimits) -> tuple[Counter[str], list[str]]:
    found: Counter[str] = Counter()
    misses: list[str] = []
    for members, matcher in zip(groups, matchers, strict=True):
        for path in members:
            img = _open(path)
            for label, make in FORMATS.items():
                hits = _hits([matcher], _stills(label, make(img), limits))
                if path.name in hits and all(h == path.name for h in hits):
                    found[label] += 1
                else:
                    misses.append(f"{label}: {path.parent.name}-{path.name} -> {hits}")
    return found, misses


def false_positives(negatives: list[Path], matchers: list[det.ImageMatcher],
                    limits: VideoLimits) -> tuple[Counter[str], Counter[str], list[str]]:
    fps: Counter[str] = Counter()
    unchecked: Counter[str] = Counter()
    pairs: list[str] = []
    for done, path in enumerate(negatives):
        if done % 25 == 0:
            print(f"  ... {done}/{len(negatives)} negatives, {sum(fps.values())} false "
                  "positives so far", file=sys.stderr, flush=True)
        img = _open(path)
        for label, make in FORMATS.items():
            hits = _hits(matchers, _stills(label, make(img), limits))
            unchecked[label] += UNCHECKED in hits
            hits = [h for h in hits if h != UNCHECKED]
            fps[label] += len(hits)
            pairs.extend(f"{label}: {path.parent.name}-{path.name} ~ {h}" for h in hits)
    return fps, unchecked, pairs


def decode_cost(photos: list[Path]) -> dict[str, tuple[list[float], list[float]]]:
    """Per video: the wall time to decode every frame (the probe and four ffmpeg runs), and
    the largest peak RSS of those runs (GNU time around the same ffmpeg, same limits)."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        log = Path(folder) / "rss"
        wrapper = Path(folder) / "ffmpeg"
        wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/time -f %M -a -o "{log}" '
                           f'"{bundled_ffmpeg()}" "$@"\n')
        wrapper.chmod(0o755)
        for label, make in list(FORMATS.items())[1:]:
            times: list[float] = []
            peaks: list[float] = []
            for path in photos:
                data = make(_open(path))
                started = time.perf_counter()
                _read_all(Video(BytesImage(data, "v"), VideoLimits()))
                times.append(time.perf_counter() - started)
                log.write_text("")
                _read_all(Video(BytesImage(data, "v"), VideoLimits(ffmpeg=str(wrapper))))
                peaks.append(max(int(x) for x in log.read_text().split() if x.isdigit()) / 1024)
            out[label] = (times, peaks)
    return out


def _read_all(video: Video) -> None:
    for frame in video.frames():
        try:
            frame.read(MAX)
        except OSError as exc:  # timed (and counted by its time), not fatal
            print(f"  decoding cost: a frame was not decoded ({exc})", file=sys.stderr)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(refs: list[Path], negatives: list[Path], group: int,
           cache: dict[str, str], cost_sample: int, skip_recall: bool = False) -> None:
    limits = VideoLimits()
    groups = [refs[i:i + group] for i in range(0, len(refs), group)]
    matchers = [det.ImageMatcher(g, cache=cache) for g in groups]
    started = time.perf_counter()
    if not skip_recall:
        _print_recall(refs, groups, matchers, limits, group)
    _print_rest(refs, negatives, matchers, limits, started, cost_sample)


def _print_recall(refs: list[Path], groups: list[list[Path]], matchers: list[det.ImageMatcher],
                  limits: VideoLimits, group: int) -> None:
    found, misses = recall(refs, groups, matchers, limits)
    print(f"\n## moving pictures: recall ({len(refs)} references, matchers of {group})\n")
    print("| delivered as | recall |")
    print("|---|---|")
    for label in FORMATS:
        print(f"| {label} | {100 * found[label] / len(refs):.1f} % "
              f"({found[label]}/{len(refs)}) |")
    for miss in misses:
        print(f"  missed: {miss}")


def _print_rest(refs: list[Path], negatives: list[Path], matchers: list[det.ImageMatcher],
                limits: VideoLimits, started: float, cost_sample: int) -> None:
    fps, unchecked, pairs = false_positives(negatives, matchers, limits)
    print(f"\n## moving pictures: false positives ({len(negatives)} corpus photos that are "
          f"not references, each in every format, against all {len(refs)} references)\n")
    print("| delivered as | stills compared | false positives | could not be checked |")
    print("|---|---|---|---|")
    for label in FORMATS:
        stills = 1 if label.startswith("sticker") else 5
        print(f"| {label} | {len(negatives) * stills} | {fps[label]} | {unchecked[label]} |")
    for pair in pairs:
        print(f"  false positive: {pair}")
    print(f"(recall and false positives: {time.perf_counter() - started:.0f} s)")
    sample = negatives[:: max(1, len(negatives) // cost_sample)][:cost_sample]
    print(f"\n## moving pictures: decoding cost per video ({len(sample)} videos per format; "
          f"ffmpeg {os.path.basename(bundled_ffmpeg())}, one thread, probe + 4 frames)\n")
    print("| video | time p50 | time p99 | peak RSS p50 | peak RSS p99 |")
    print("|---|---|---|---|---|")
    for label, (times, peaks) in decode_cost(sample).items():
        print(f"| {label} | {1000 * statistics.median(times):.0f} ms | "
              f"{1000 * pct(times, 0.99):.0f} ms | {statistics.median(peaks):.0f} MB | "
              f"{pct(peaks, 0.99):.0f} MB |")
