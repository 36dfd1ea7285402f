"""A photo delivered the ways a platform carries moving pictures (#16): as a sticker, as a
GIF that Telegram turned into an MP4, and inside a short video.

Used by benchmarks/image_accuracy.py (--moving) and by the tests of connectors/video_frames.py.
Encoding uses the ffmpeg binary inside the imageio-ffmpeg wheel, the one the watcher decodes
with; files live in a temporary directory only while ffmpeg runs.
"""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg  # type: ignore[import-untyped]
from PIL import Image

STICKER_SIDE = 512  # Telegram: one side exactly 512 px, the other at most 512
VIDEO_SIZE = (1280, 720)
EVEN = "scale=trunc(iw/2)*2:trunc(ih/2)*2"


def _ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-hide_banner",
                    "-loglevel", "error", "-y", *args], check=True, timeout=120)


def sticker(photo: Image.Image) -> bytes:
    """A static sticker: WebP, the longest side 512 px."""
    img = photo.convert("RGB")
    scale = STICKER_SIDE / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                     Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "WEBP", quality=80)
    return out.getvalue()


def gif_mp4(photo: Image.Image, frames: int = 12, side: int = 480) -> bytes:
    """A GIF of the photo (256 colours, as GIF makers shrink it, a slight zoom over the
    frames so it is animated), converted as Telegram does: H.264 MP4, yuv420p, even
    dimensions, no sound."""
    img = photo.convert("RGB")
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    stills = []
    for i in range(frames):
        crop = i * 2
        frame = img.crop((crop, crop, img.width - crop, img.height - crop)).resize(img.size)
        stills.append(frame.quantize(256))
    with tempfile.TemporaryDirectory() as folder:
        gif, mp4 = Path(folder) / "in.gif", Path(folder) / "out.mp4"
        stills[0].save(gif, save_all=True, append_images=stills[1:], duration=100, loop=0)
        _ffmpeg("-i", str(gif), "-movflags", "+faststart", "-pix_fmt", "yuv420p",
                "-vf", EVEN, "-c:v", "libx264", "-an", str(mp4))
        return mp4.read_bytes()


def clip(photo: Image.Image, filler: Image.Image, seconds: float = 5.0,
         shown: tuple[float, float] = (1.0, 3.0), fps: int = 25, *,
         size: tuple[int, int] = VIDEO_SIZE, webm: bool = False) -> bytes:
    """A video of `seconds`, the photo on screen from shown[0] to shown[1] and `filler`
    before and after; both letterboxed to `size`, H.264 in MP4 with the index at the end (as
    a phone writes it; no faststart), or with `webm` VP9 in WebM (a video sticker)."""
    width, height = size
    # veryfast: what a phone's hardware encoder trades for speed (and the benchmark's time).
    codec = (["-c:v", "libvpx-vp9", "-b:v", "0", "-crf", "40"] if webm
             else ["-c:v", "libx264", "-preset", "veryfast"])
    fit = (f"scale={width}:{height}:force_original_aspect_ratio=decrease,"
           f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2,setsar=1")
    with tempfile.TemporaryDirectory() as folder:
        a, b, mp4 = (Path(folder) / n for n in ("filler.png", "photo.png",
                                                 "out.webm" if webm else "out.mp4"))
        filler.convert("RGB").save(a)
        photo.convert("RGB").save(b)
        start, end = shown
        _ffmpeg("-loop", "1", "-framerate", str(fps), "-t", f"{seconds}", "-i", str(a),
                "-loop", "1", "-framerate", str(fps), "-t", f"{seconds}", "-i", str(b),
                "-filter_complex",
                f"[0]{fit}[f];[1]{fit}[p];[f][p]overlay=enable='between(t,{start},{end})',"
                "format=yuv420p",
                *codec, "-an", "-r", str(fps), "-t", f"{seconds}", str(mp4))
        return mp4.read_bytes()


def thumbnail(photo: Image.Image, side: int = 320) -> bytes:
    """What Telegram sends as a video's thumbnail: a small JPEG."""
    img = photo.convert("RGB")
    img.thumbnail((side, side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()
