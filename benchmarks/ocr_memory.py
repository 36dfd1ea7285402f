"""Peak memory of reading text in images (detectors/image_text.py), step by step.

In a fresh subprocess: the watcher's modules imported (idle), then the OCR engine loaded,
then one photo after another read through the real path (`TextReader.read`: decode within
the caps, reduce to OCR_SIDE, detect, recognise). After each step the process's RSS and its
peak (VmHWM) are printed, so the figures say what the engine costs once loaded and what the
worst photo adds on top. Compared with issue #12's bound: one image adds < 300 MB above idle
(docs/benchmarks.md, "Image memory"). Not a timed test.

    nice -n 19 .venv/bin/python -m benchmarks.ocr_memory
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

TARGET_MB = 300
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

CHILD = """
import json, sys
import watcher.engine, detectors.codes, detectors.image  # the watcher, idle
from detectors import image_text
def mem():
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    return out
steps = [("idle, watcher imported", mem())]
reader = image_text.TextReader()
reader.read(open(sys.argv[1], "rb").read())  # a tiny image: loads the engine
steps.append(("engine loaded (one small image read)", mem()))
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    try:
        lines = len(reader.read(data))
    except image_text.ImageRefused as exc:
        lines = "refused: " + str(exc)[:60]
    steps.append((path.rsplit("/", 1)[-1] + f" ({lines} lines)", mem()))
print(json.dumps(steps))
"""


def _photo(width: int, height: int, progressive: bool = False) -> bytes:
    """A noisy photo (the costliest for the decoder and the text detector) with a caption."""
    rng = np.random.default_rng(width)
    small = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    noise = rng.integers(0, 40, (height, width, 3), dtype=np.uint8)
    img = Image.fromarray(np.asarray(img) // 2 + noise)
    font = ImageFont.truetype(FONT, height // 25)
    ImageDraw.Draw(img).text((width // 10, height // 2), "ordinary words on a photo",
                             font=font, fill=(255, 255, 255), stroke_width=3,
                             stroke_fill=(0, 0, 0))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=90, progressive=progressive)
    return out.getvalue()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            "tiny.png": _tiny(),
            "12mp.jpg": _photo(4000, 3000),
            "40mp.jpg": _photo(7300, 5480),
            "40mp-progressive.jpg": _photo(7300, 5480, progressive=True),
        }
        paths = []
        for name, data in files.items():
            path = Path(tmp) / name
            path.write_bytes(data)
            paths.append(str(path))
        out = subprocess.run([sys.executable, "-c", CHILD, *paths], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).resolve().parents[1])
    steps = json.loads(out.stdout)
    idle = steps[0][1]["VmRSS"]
    for label, mem in steps:
        print(f"{label:45} RSS {mem['VmRSS']:7.1f} MB  peak {mem['VmHWM']:7.1f} MB  "
              f"peak above idle {mem['VmHWM'] - idle:+7.1f} MB")
    worst = max(mem["VmHWM"] for _, mem in steps) - idle
    print(f"worst peak above idle: {worst:+.1f} MB (bound: < {TARGET_MB} MB)")


def _tiny() -> bytes:
    img = Image.new("RGB", (200, 60), (255, 255, 255))
    ImageDraw.Draw(img).text((10, 20), "hello", fill=(0, 0, 0))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


if __name__ == "__main__":
    main()
