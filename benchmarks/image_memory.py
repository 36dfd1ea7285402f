"""Peak memory of checking one hostile image, per format, within the default caps.

Each file is made here (the largest, most hostile shapes that fit 25 MB and 60 MP), then
checked in a fresh subprocess: the real path an incoming image takes (decode, hashes,
keypoints: `Probe.from_bytes`). The figure is the process's peak RSS minus its RSS once
idle with every library imported, so it is what one image adds. Not a timed test.

    .venv/bin/python -m benchmarks.image_memory            # every case
    .venv/bin/python -m benchmarks.image_memory --only gif
"""

from __future__ import annotations

import argparse
import io
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from detectors.image_decode import ImageLimits

LIMITS = ImageLimits()
SIDE = math.isqrt(LIMITS.max_pixels)  # 7745: the largest square within the pixel cap
TARGET_MB = 300

CHILD = """
import resource, sys, time
from detectors.image import Probe
from detectors.image_decode import ImageLimits, ImageRefused
data = open(sys.argv[1], "rb").read()
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
idle = rss()
started = time.perf_counter()
try:
    Probe.from_bytes(data, ImageLimits())
    verdict = "checked"
except ImageRefused as exc:
    verdict = "refused: " + str(exc)[:70]
print(idle, rss(), time.perf_counter() - started, verdict, sep="\\t")
"""


def _save(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def _noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Detail that compresses poorly, so a file holds as many pixels as the byte cap lets."""
    return Image.effect_noise(size, 64).convert(mode)


def cases() -> dict[str, Callable[[], bytes]]:
    square = (SIDE, SIDE)
    return {
        "png-rgba-60mp": lambda: _save(Image.new("RGBA", square, (9, 9, 9, 128)), "PNG"),
        "png-rgb16-60mp": lambda: _save(Image.new("I;16", square, 7), "PNG"),
        "png-palette-60mp": lambda: _save(Image.new("P", square, 3), "PNG"),
        "png-interlaced-60mp": lambda: _save(Image.new("RGB", square, (1, 2, 3)), "PNG",
                                             interlace=1),
        "png-16x8000": lambda: _save(Image.new("L", (16, 8000), 0), "PNG"),
        "png-32x7000": lambda: _save(Image.new("L", (32, 7000), 0), "PNG"),
        "gif-60mp": lambda: _save(Image.new("P", square, 1), "GIF"),
        "gif-animated-60mp": lambda: _save(
            Image.new("P", square, 1), "GIF", save_all=True,
            append_images=[Image.new("P", square, i) for i in range(2, 5)]),
        "tiff-lzw-60mp": lambda: _save(Image.new("RGB", square, (5, 6, 7)), "TIFF",
                                       compression="tiff_lzw"),
        "tiff-deflate-gray-60mp": lambda: _save(Image.new("L", square, 5), "TIFF",
                                                compression="tiff_adobe_deflate"),
        "webp-16383x3662": lambda: _save(Image.new("RGBA", (16383, 3662), (1, 2, 3, 4)),
                                         "WEBP", lossless=True),
        "webp-animated": lambda: _save(
            Image.new("RGB", (7000, 7000), (1, 2, 3)), "WEBP", save_all=True,
            append_images=[Image.new("RGB", (7000, 7000), (i, 2, 3)) for i in range(3)]),
        "jpeg-progressive-60mp": lambda: _save(_noise((SIDE, SIDE)), "JPEG", quality=40,
                                               progressive=True),
        "jpeg-baseline-60mp": lambda: _save(_noise((SIDE, SIDE)), "JPEG", quality=40),
        "jpeg-cmyk-60mp": lambda: _save(Image.new("CMYK", square, (1, 2, 3, 4)), "JPEG"),
        "bmp-rle8-60mp": lambda: _bmp_rle8(SIDE, SIDE),
        "jpeg-12mp-photo": lambda: _save(_noise((4000, 3000)), "JPEG", quality=85),
        "png-7mp-photo": lambda: _save(_noise((3000, 2400)), "PNG"),
        "png-rgb-25mp": lambda: _save(Image.new("RGB", (5000, 5000), (1, 2, 3)), "PNG"),
    }


def _bmp_rle8(width: int, height: int) -> bytes:
    """An 8-bit RLE BMP: a few bytes a row, millions of pixels (Pillow cannot write it)."""
    row = b""
    left = width
    while left:
        run = min(255, left)
        row += bytes([run, 1])
        left -= run
    body = (row + b"\x00\x00") * height + b"\x00\x01"
    palette = b"".join(bytes([i, i, i, 0]) for i in range(256))
    offset = 14 + 40 + len(palette)
    header = (b"BM" + (offset + len(body)).to_bytes(4, "little") + b"\0\0\0\0"
              + offset.to_bytes(4, "little"))
    info = (b"".join(v.to_bytes(4, "little", signed=True) for v in (40, width, height))
            + (1).to_bytes(2, "little") + (8).to_bytes(2, "little")
            + b"".join(v.to_bytes(4, "little") for v in (1, len(body), 2835, 2835, 256, 0)))
    return header + info + palette + body


def measure(path: Path) -> tuple[float, float, str]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True,
                         text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    idle, peak, seconds, verdict = out.stdout.strip().split("\t")
    return float(peak) - float(idle), float(seconds), verdict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="cases whose name contains this")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, caps {LIMITS.max_bytes} bytes / "
          f"{LIMITS.max_pixels} px, target < {TARGET_MB} MB above idle")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, make in cases().items():
            if args.only and args.only not in name:
                continue
            data = make()
            if len(data) > LIMITS.max_bytes:
                print(f"{name:26} skipped: {len(data)} bytes is over the byte cap")
                continue
            path = Path(folder) / name
            path.write_bytes(data)
            started = time.perf_counter()
            added, seconds, verdict = measure(path)
            results[name] = {"bytes": len(data), "peak_mb": round(added, 1),
                             "seconds": round(seconds, 2), "verdict": verdict}
            flag = "" if added < TARGET_MB else "  OVER TARGET"
            print(f"{name:26} {len(data):>10} B  +{added:7.1f} MB  {seconds:6.2f} s  "
                  f"{verdict}{flag}  ({time.perf_counter() - started:.0f} s with setup)")
    worst: dict[str, tuple[str, float]] = {}
    for name, row in results.items():
        fmt = name.split("-")[0]
        if fmt not in worst or row["peak_mb"] > worst[fmt][1]:
            worst[fmt] = (name, float(row["peak_mb"]))
    print("worst case per format:")
    for fmt, (name, peak) in sorted(worst.items()):
        print(f"  {fmt:5} +{peak:.1f} MB ({name})")
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
