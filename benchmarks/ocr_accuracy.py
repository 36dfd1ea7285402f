"""Recall, false positives and speed of text-in-image phrase matching (detectors/image_text.py).

    nice -n 19 .venv/bin/python benchmarks/ocr_accuracy.py [--positives 240] [--negatives 400]
        [--engines rapidocr,tesseract] [--speed 20] [--slice tests/data/ocr]

Cases come from benchmarks/corpora/ocr_corpus.py (code phrases and ordinary text rendered on
real photos, distorted). Each engine's lines for each case are cached in
.cache/ocr-corpus/<engine>.jsonl, so a run that was stopped goes on where it was.

* Recall: the rendered phrase found by PhraseMatcher (tolerance "typos", the default) in the
  recognised lines; printed fonts and handwriting-like fonts apart, by x-height at the OCR scale.
* False positives: any of the 16 code phrases found in a negative (ordinary text on a photo, or
  an image-benchmark photo as it is), or a phrase other than the rendered one in a positive.
* Speed: wall and CPU seconds per 12 MP JPEG (4000x3000, text on it), the engine loaded.
* tesseract: Debian's tesseract-ocr 5 with tesseract-ocr-eng (pytesseract), on the same
  decoded, reduced pixels.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks" / "corpora")]

import ocr_corpus as corpus  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from detectors import image_text  # noqa: E402
from detectors.image_decode import ImageLimits, ImageRefused, decode  # noqa: E402
from detectors.phrase import PhraseMatcher  # noqa: E402

CACHE = ROOT / ".cache" / "ocr-corpus"
Reader = Callable[[bytes], list[str]]


def rapidocr_reader() -> Reader:
    reader = image_text.TextReader()
    return lambda data: list(reader.read(data))


def tesseract_reader() -> Reader:
    import pytesseract

    def read(data: bytes) -> list[str]:
        rgb = decode(data, ImageLimits(), image_text.OCR_SIDE, upscale=False)
        text = pytesseract.image_to_string(Image.fromarray(rgb), lang="eng")
        return [line.strip() for line in text.splitlines() if line.strip()]

    return read


ENGINES = {"rapidocr": rapidocr_reader, "tesseract": tesseract_reader}


def _cached(engine: str) -> dict[str, dict[str, Any]]:
    path = CACHE / f"{engine}.jsonl"
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a line cut by a stopped run
        out[row["name"]] = row
    return out


def _run(engine: str, read: Reader, cases: list[corpus.Case]) -> dict[str, dict[str, Any]]:
    done = _cached(engine)
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{engine}.jsonl").open("a") as out:
        for case in cases:
            if case.name in done:
                continue
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                lines, error = read(case.data), None
            except ImageRefused as exc:
                lines, error = [], str(exc)
            row = {"name": case.name, "lines": lines, "error": error,
                   "wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}
            out.write(json.dumps(row) + "\n")
            out.flush()
            done[case.name] = row
    return done


def _photo_cases(photos: list[Path], count: int) -> list[corpus.Case]:
    cases = []
    for path in photos[:count]:
        img = Image.open(path).convert("RGB")
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        cases.append(corpus.Case(f"photo-{path.parent.name}-{path.stem}", buf.getvalue(), None,
                                 "", False, 0, "none"))
    return cases


def _score(cases: list[corpus.Case], rows: dict[str, dict[str, Any]]) -> dict[str, Any]:
    everyone = PhraseMatcher(corpus.PHRASES)
    own = {p: PhraseMatcher([p]) for p in corpus.PHRASES}
    recall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    misses: list[str] = []
    false_pos: list[str] = []
    errors = 0
    for case in cases:
        row = rows[case.name]
        errors += row["error"] is not None
        text = " ".join(row["lines"])
        if case.phrase is None:
            hit = everyone.find(text)
            if hit is not None:
                false_pos.append(f"{case.name}: {hit.phrase!r} in {text!r}")
            continue
        found = own[case.phrase].find(text) is not None
        kind = "handwriting" if case.handwriting else "printed"
        size = "x-height >= 12 px" if case.seen_x_height >= 12 else "x-height < 12 px"
        for key in (kind, f"{kind} {size}", f"{kind} x{case.x_height} as rendered",
                    f"{kind} {case.distortion}"):
            recall[key][0] += found
            recall[key][1] += 1
        if not found:
            misses.append(f"{case.name}: {text!r}")
        others = PhraseMatcher([p for p in corpus.PHRASES if p != case.phrase]).find(text)
        if others is not None:
            false_pos.append(f"{case.name}: {others.phrase!r}")
    negatives = sum(c.phrase is None for c in cases)
    return {"recall": {k: f"{v[0]}/{v[1]} ({100 * v[0] / v[1]:.1f} %)"
                       for k, v in sorted(recall.items())},
            "false_positives": len(false_pos), "images_checked_for_fp": len(cases),
            "negatives": negatives, "errors": errors, "fp_detail": false_pos,
            "misses": misses}


def _speed(read: Reader, count: int, photos: list[Path]) -> dict[str, float]:
    walls, cpus = [], []
    for index in range(count):
        img = Image.open(photos[index % len(photos)]).convert("RGB").resize((4000, 3000))
        ImageDraw.Draw(img).text((300, 900), "ordinary words on a photo", fill=(255, 255, 255),
                                 font=corpus._font_for(corpus.PRINTED["dejavu-sans"], 16))
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=88)
        data = buf.getvalue() + index.to_bytes(4, "big")  # defeat the content cache
        wall, cpu = time.perf_counter(), time.process_time()
        read(data)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    walls.sort()
    cpus.sort()

    def pct(values: list[float], q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))], 2)

    return {"p50_wall": pct(walls, 0.5), "p99_wall": pct(walls, 0.99),
            "p50_cpu": pct(cpus, 0.5), "p99_cpu": pct(cpus, 0.99), "n": count}


def _write_slice(cases: list[corpus.Case], target: Path, count: int) -> None:
    """A few cases per distortion, committed for the tests (< 3 MB)."""
    target.mkdir(parents=True, exist_ok=True)
    taken: dict[str, int] = defaultdict(int)
    for case in cases:
        key = f"{case.phrase is None}-{case.distortion}"
        if taken[key] >= count:
            continue
        taken[key] += 1
        suffix = ".png" if case.data[:4] == b"\x89PNG" else ".jpg"
        (target / f"{case.name}{suffix}").write_bytes(case.data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--positives", type=int, default=240)
    parser.add_argument("--negatives", type=int, default=400)
    parser.add_argument("--photos", type=int, default=0, help="corpus photos as they are")
    parser.add_argument("--engines", default="rapidocr,tesseract")
    parser.add_argument("--speed", type=int, default=10)
    parser.add_argument("--slice", type=Path)
    args = parser.parse_args()
    photos = corpus.real_photos()
    # Interleaved, so that a run stopped early still has every kind of case.
    as_is = _photo_cases(photos, args.photos)
    cases = []
    for i in range(max(args.positives, args.negatives, len(as_is))):
        if i < args.positives:
            cases.append(corpus.case(i, photos, positive=True))
        if i < args.negatives:
            cases.append(corpus.case(i, photos, positive=False))
        if i < len(as_is):
            cases.append(as_is[i])
    if args.slice:
        _write_slice(cases, args.slice, 1)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}",
        "photos": len(photos)}
    for engine in args.engines.split(","):
        read = ENGINES[engine]()
        rows = _run(engine, read, cases)
        result = _score(cases, rows)
        result["per_image_wall_p50"] = round(statistics.median(
            rows[c.name]["wall"] for c in cases), 2)
        if args.speed:
            result["speed_12mp"] = _speed(read, args.speed, photos)
        report[engine] = result
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
