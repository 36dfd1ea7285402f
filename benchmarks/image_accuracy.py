"""Recall, false positives and speed of detectors/image.py on real photos.

    .venv/bin/python benchmarks/image_accuracy.py [--refs 40] [--group 20]

The corpus (about 420 photos, see benchmarks/corpora/image_corpus.py) is
downloaded and extracted into .cache/image-corpus/ on first run.

* Recall: --refs references, each put through every transformation in
  benchmarks/corpora/image_transforms.py and looked up with find() in a matcher
  of --group references.  A hit on any other reference counts as a false positive.
* False positives: every corpus photo, re-encoded as a JPEG, against every
  other corpus photo as a reference (matchers of --group references).
* Speed: find() on 12 MP JPEGs that match nothing (the common and slowest
  case: every stage runs) against a matcher of --group references.
* Baseline: plain imagehash pHash, match at <= 10 of 64 bits, same pairs.
* --moving (instead of the above): the same references delivered as a sticker, a GIF turned
  into MP4 and a 5-second video, read through the watcher's video decoder; false positives
  on the other corpus photos in the same formats; decode time and peak memory per video
  (benchmarks/corpora/moving_bench.py).
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks" / "corpora")]

import cv2  # noqa: E402
import imagehash  # noqa: E402
import pdqhash  # noqa: E402
import PIL  # noqa: E402
from image_corpus import photos  # noqa: E402
from image_transforms import HARD, TRANSFORMS, jpeg  # noqa: E402
from PIL import Image  # noqa: E402

from detectors import image as det  # noqa: E402

BASELINE_MAX = 10
SOURCE_SIDE = 3000  # transformations start from at most this size (speed)


def _machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{platform.node()} {platform.system()} {platform.machine()}, {cpu}, "
            f"{os.cpu_count()} cores; Python {platform.python_version()}, "
            f"opencv {cv2.__version__}, pillow {PIL.__version__}, "
            f"imagehash {imagehash.__version__}, pdqhash {getattr(pdqhash, '__version__', '?')}")


def _name(path: Path) -> str:
    return f"{path.parent.name}-{path.name}"


def _phash(data: bytes) -> imagehash.ImageHash:
    return imagehash.phash(Image.open(io.BytesIO(data)))


def _groups(items: list[Path], size: int) -> list[list[Path]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _matchers(groups: list[list[Path]], cache: dict[str, str]) -> list[det.ImageMatcher]:
    return [det.ImageMatcher(g, cache=cache) for g in groups]


def _probe_bytes(path: Path) -> bytes:
    data: bytes = jpeg(Image.open(path).convert("RGB"), 90)
    return data


def false_positives(corpus: list[Path], group: int, cache: dict[str, str]) -> dict[str, object]:
    """Every photo against every other photo as a reference."""
    groups = _groups(corpus, group)
    matchers = _matchers(groups, cache)
    ref_phash = {p.name: _phash(p.read_bytes()) for p in corpus}
    fps = base_fps = 0
    # (pdq, hash pair, inliers, agreement, overlap, probe, reference) for every
    # unrelated comparison; agreement and overlap are -1 where not measured.
    records: list[tuple[int, int, int, float, float, str, str]] = []
    fp_pairs: list[str] = []
    for path in corpus:
        data = _probe_bytes(path)
        probe = det.Probe.from_bytes(data)
        own_phash = _phash(data)
        for matcher in matchers:
            for score in matcher.scores(probe):
                if score.reference == path.name:
                    continue
                inliers = score.orb.inliers if score.orb is not None else -1
                agree = score.agreement or (-1.0, -1.0)
                records.append((score.pdq, score.pair, inliers, round(agree[0], 3),
                                round(agree[1], 2), _name(path), score.reference))
                hit = det.decide(score)
                if hit is not None:
                    fps += 1
                    fp_pairs.append(f"{_name(path)} ~ {score.reference} ({hit.method}, "
                                    f"{hit.details})")
                if own_phash - ref_phash[score.reference] <= BASELINE_MAX:
                    base_fps += 1
    return {"comparisons": len(records), "fps": fps, "base_fps": base_fps,
            "records": records, "fp_pairs": fp_pairs}


def _closest(records: list[tuple[int, int, int, float, float, str, str]]) -> None:
    """The unrelated pairs nearest to each decision bar: the safety margins."""
    for title, key, bar in (
        ("PDQ bits", lambda r: r[0], f"match <= {det.PDQ_MAX} with quality >= "
                                     f"{det.PDQ_MIN_QUALITY}"),
        ("pHash/dHash pair bits", lambda r: r[1], f"lowers the ORB bar when <= {det.PAIR_MAX}"),
        ("ORB inliers", lambda r: -r[2], f"match >= {det.ORB_MIN_INLIERS}, or >= "
                                         f"{det.ORB_GATED_INLIERS} with pair <= {det.PAIR_MAX}"),
        ("pixel agreement", lambda r: -r[3], f"match with >= {det.ORB_CHECKED_INLIERS} "
                                             f"inliers, agreement >= {det.AGREEMENT_MIN} and "
                                             f"overlap >= {det.OVERLAP_MIN}"),
    ):
        nearest = sorted(records, key=key)[:5]
        print(f"- closest by {title} ({bar}): " + "; ".join(
            f"{r[5]} ~ {r[6]} (pdq {r[0]}, pair {r[1]}, inliers {r[2]}, agreement {r[3]}, "
            f"overlap {r[4]})" for r in nearest))
    inliers = [r[2] for r in records]
    print("- unrelated pairs with ORB inliers >= k: " + ", ".join(
        f"{k}: {sum(i >= k for i in inliers)}" for k in (5, 7, 8, 10, 12, 15, 20)))
    measured = [r[3] for r in records if r[3] > -1]
    print(f"- unrelated pairs whose pixel agreement was measured: {len(measured)}; "
          "with agreement >= a: " + ", ".join(
              f"{a}: {sum(m >= a for m in measured)}" for a in (0.2, 0.3, 0.4, 0.5)))
    gated = sum(1 for r in records if r[1] <= det.PAIR_MAX)
    print(f"- unrelated pairs with pHash/dHash pair <= {det.PAIR_MAX}: {gated}")


def recall(refs: list[Path], group: int, cache: dict[str, str], only: str = ""
           ) -> dict[str, object]:
    groups = _groups(refs, group)
    matchers = _matchers(groups, cache)
    found: Counter[str] = Counter()
    base_found: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    methods: dict[str, Counter[str]] = defaultdict(Counter)
    misses: list[str] = []
    for members, matcher in zip(groups, matchers, strict=True):
        for seed, path in enumerate(members):
            original = Image.open(path).convert("RGB")
            original.thumbnail((SOURCE_SIDE, SOURCE_SIDE), Image.Resampling.LANCZOS)
            ref_phash = imagehash.phash(original)
            for label, transform in TRANSFORMS.items():
                if only not in label:
                    continue
                data = transform(original, seed)
                hits = matcher.match_all(det.Probe.from_bytes(data))
                if hits and hits[0].reference == path.name:
                    found[label] += 1
                    methods[label][hits[0].method] += 1
                else:
                    misses.append(f"{label}: {_name(path)}")
                wrong[label] += sum(1 for h in hits if h.reference != path.name)
                if _phash(data) - ref_phash <= BASELINE_MAX:
                    base_found[label] += 1
    return {"n": len(refs), "found": found, "base_found": base_found, "wrong": wrong,
            "methods": methods, "misses": misses}


def speed(others: list[Path], matcher: det.ImageMatcher, count: int) -> list[float]:
    timings: list[float] = []
    for path in others[:count]:
        img = Image.open(path).convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC)
        data = jpeg(img, 90)
        matcher.find(data)  # warm-up: first calls pay for lazy imports
        runs = []
        for _ in range(3):
            t = time.perf_counter()
            matcher.find(data)
            runs.append((time.perf_counter() - t) * 1000)
        timings.append(min(runs))
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refs", type=int, default=40)
    parser.add_argument("--group", type=int, default=20)
    parser.add_argument("--skip-fp", action="store_true", help="recall and speed only")
    parser.add_argument("--only", default="", help="transformations whose name contains this")
    parser.add_argument("--moving", action="store_true",
                        help="stickers, GIFs and videos instead (#16)")
    parser.add_argument("--negatives", type=int, default=0,
                        help="with --moving: this many negatives, spread evenly (0: all)")
    parser.add_argument("--skip-recall", action="store_true",
                        help="with --moving: false positives and decoding cost only")
    parser.add_argument("--cost-sample", type=int, default=40,
                        help="with --moving: videos per format for time and memory")
    args = parser.parse_args()
    started = time.perf_counter()
    print(f"# image detector benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {_machine()}")
    print(f"command: .venv/bin/python benchmarks/image_accuracy.py {' '.join(sys.argv[1:])}")
    corpus = photos()
    print(f"corpus: {len(corpus)} photos " + str(dict(Counter(p.parent.name for p in corpus))))
    cache: dict[str, str] = {}
    all_matchers = _matchers(_groups(corpus, args.group), cache)
    warned = [w for m in all_matchers for w in m.warnings]
    plain = {w.split(":")[0] for w in warned}
    print(f"load-time warnings: {len(warned)} on {len(plain)} corpus photos")
    # References: an even spread over the corpus, skipping photos the matcher
    # warns about (the user is told to choose another photo for those).
    usable = [p for p in corpus if p.name not in plain]
    step = max(1, len(usable) // args.refs)
    refs = usable[::step][: args.refs]
    if args.moving:
        import moving_bench  # needs ffmpeg: only for this mode

        negatives = [p for p in corpus if p not in refs]
        if args.negatives:  # an even spread over the corpus's sources
            negatives = negatives[:: max(1, len(negatives) // args.negatives)][: args.negatives]
        moving_bench.report(refs, negatives, args.group, cache, args.cost_sample,
                            skip_recall=args.skip_recall)
        print(f"\ntotal run time {time.perf_counter() - started:.0f} s")
        return
    rec = recall(refs, args.group, cache, args.only)
    n = rec["n"]
    assert isinstance(n, int)
    print(f"\n## recall ({n} references, matchers of {args.group})\n")
    print(f"| transformation | duress-watcher | pHash <= {BASELINE_MAX} | wrong-reference hits "
          "| deciding stage |")
    print("|---|---|---|---|---|")
    for label in (t for t in TRANSFORMS if args.only in t):
        f = rec["found"][label]  # type: ignore[index]
        b = rec["base_found"][label]  # type: ignore[index]
        w = rec["wrong"][label]  # type: ignore[index]
        m = ", ".join(f"{k} {v}" for k, v in rec["methods"][label].most_common())  # type: ignore[index]
        tag = " (target 95 %)" if label in HARD else ""
        print(f"| {label}{tag} | {100 * f / n:.1f} % ({f}/{n}) | {100 * b / n:.1f} % | {w} | {m} |")
    for miss in rec["misses"]:  # type: ignore[attr-defined]
        print(f"  missed: {miss}")
    others = [p for p in corpus if p not in refs and p.name not in plain]
    timings = speed(others[:: max(1, len(others) // 10)], det.ImageMatcher(refs[: args.group],
                                                                         cache=cache), 10)
    print(f"\n## speed: find() on a 12 MP JPEG (4000x3000, q90, no match) vs {args.group} refs\n")
    print(f"median {statistics.median(timings):.1f} ms, max {max(timings):.1f} ms "
          f"over {len(timings)} photos (best of 3 each; cv2 threads {cv2.getNumThreads()})")
    if not args.skip_fp:
        fp = false_positives(corpus, args.group, cache)
        print("\n## false positives (every photo vs every other photo as reference)\n")
        print(f"unrelated comparisons: {fp['comparisons']}")
        print(f"false positives: duress-watcher {fp['fps']}, pHash <= {BASELINE_MAX}: "
              f"{fp['base_fps']}")
        records = fp["records"]
        assert isinstance(records, list)
        _closest(records)
        for line in fp["fp_pairs"]:  # type: ignore[attr-defined]
            print(f"  false positive: {line}")
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
