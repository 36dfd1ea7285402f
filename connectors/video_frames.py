"""Still frames of a video, a GIF animation (an MP4 on Telegram) or a video sticker, as images.

A video goes to the image codes as a few of its frames: the first, a quarter, the middle and
three quarters of the way in (`POSITIONS`), beside the platform's own thumbnail, which the
connector adds as an ordinary image. Each frame is an ImageSource whose read() runs the
decoder, so the Event model and the engine stay as they are: decoding happens in the
engine's detection thread, within `watcher.item_timeout`, and a frame that cannot be decoded
raises OSError there, which the image detectors record as "could not be checked".

The decoder is hostile-input code, so it runs in a subprocess (ffmpeg from imageio-ffmpeg's
wheel): a crash is an exit code, a hang is killed at `timeout`, and an address-space rlimit
caps its memory. The bytes are never written to disk: they sit in an anonymous in-memory
file (memfd) the child reads as a seekable file, which an MP4 with its index at the end needs
(from a pipe ffmpeg cannot seek back to the index). Only the demuxers of the formats the
platforms send are allowed and only the `file` protocol, so a "video" that is really a
playlist cannot make ffmpeg open other files or the network.

Connectors use this (connectors must not import detectors): it knows nothing about codes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass

from watcher.core.models import ImageSource, ImageTooLarge

# Where in the video the frames are taken, as fractions of its duration (0: the first).
POSITIONS = (0.0, 0.25, 0.5, 0.75)
# What the platforms send as video: MP4/MOV (Telegram animations, videos and video notes,
# Signal, Bluesky), Matroska/WebM (Telegram video stickers), GIF. Nothing else is parsed.
DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,gif"
# Longest side of a frame handed on: the image codes work at 512 px, OCR wants more.
FRAME_SIDE = 1280
_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")

# Sets the child's address-space limit, then becomes ffmpeg. A launcher rather than
# Popen(preexec_fn=...): preexec_fn may deadlock in a process that runs threads.
_LAUNCHER = ("import os, resource, sys; n = int(sys.argv[1]); "
             "resource.setrlimit(resource.RLIMIT_AS, (n, n)); os.execv(sys.argv[2], sys.argv[2:])")


class VideoUnreadable(OSError):
    """A video (or one frame of it) that could not be decoded: "could not be checked"."""

    def __init__(self, message: str, timed_out: bool = False, past_end: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out
        self.past_end = past_end  # the decoder ended cleanly with no picture after the seek


def bundled_ffmpeg() -> str:
    """The ffmpeg binary inside the imageio-ffmpeg wheel (imported late: only videos need it).

    Where the wheel has no binary (32-bit ARM), imageio-ffmpeg takes $IMAGEIO_FFMPEG_EXE or an
    ffmpeg on the PATH; with none, every video is "could not be checked", never a crash."""
    try:
        import imageio_ffmpeg  # type: ignore[import-untyped]

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError) as exc:
        raise VideoUnreadable(f"no video decoder installed ({type(exc).__name__})") from exc


@dataclass(frozen=True)
class VideoLimits:
    max_bytes: int = 25_000_000  # the download cap (watcher.max_image_bytes)
    # Seconds per ffmpeg run (a probe, then one per frame). All four frames of a 5 s 720p
    # video take 0.9 s (p50) to 1.5 s (p99) on the 2-core benchmark machine at a load of 8,
    # but one run there passed 6 s (docs/benchmarks-image.md); watcher.item_timeout still
    # bounds the whole item.
    timeout: float = 10.0
    memory: int = 1024 * 2**20  # the decoder's address space
    max_pixels: int = 60_000_000  # per decoded frame, as for images
    ffmpeg: str | None = None  # None: the bundled binary


class Video:
    """One video's bytes and what was decoded from them, shared by its frames.

    Several codes read the same frames one after another (one job per code): the first
    read decodes, the others reuse the result or the failure, so a hostile video costs one
    timeout, not one per code."""

    def __init__(self, source: ImageSource, limits: VideoLimits | None = None) -> None:
        self.source = source
        self.limits = limits or VideoLimits()
        self._lock = threading.Lock()
        # position -> PNG or the reason it failed; None -> the probed duration (or failure)
        self._results: dict[float | None, bytes | str] = {}
        self._broken: str | None = None

    @property
    def name(self) -> str:
        return self.source.name

    def frame(self, position: float) -> bytes:
        """The frame at `position` (a fraction of the duration) as PNG bytes, or raise."""
        with self._lock:
            if position not in self._results:
                self._results[position] = self._decode(position)
            found = self._results[position]
        if isinstance(found, str):
            raise VideoUnreadable(f"{self.name}: {found}")
        return found

    def frames(self, positions: tuple[float, ...] = POSITIONS) -> tuple[VideoFrame, ...]:
        return tuple(VideoFrame(self, p) for p in positions)

    def _decode(self, position: float) -> bytes | str:
        """PNG bytes, or why not (kept as text: a stored exception would pin a traceback)."""
        if self._broken is not None:
            return self._broken  # it hung once: every other frame would too
        try:
            data = self.source.read(self.limits.max_bytes)
        except ImageTooLarge as exc:
            return f"too large ({exc})"
        except OSError as exc:
            return str(exc)
        if not data:
            return "empty"
        try:
            at = 0.0
            if position > 0:
                duration = self._duration(data)
                at = duration * position if duration is not None else 0.0
            return _run_frame(data, at, self.limits)
        except VideoUnreadable as exc:
            if exc.timed_out:
                self._broken = str(exc)
            if exc.past_end and position > 0:
                # A one-frame animation (a still GIF) lasts 0.04 s: a quarter of the way in
                # is already past its only frame, which is the first one.
                if 0.0 not in self._results:
                    self._results[0.0] = self._decode(0.0)
                return self._results[0.0]
            return str(exc)

    def _duration(self, data: bytes) -> float | None:
        if None not in self._results:
            try:
                found = _probe_duration(data, self.limits)
            except VideoUnreadable as exc:
                self._results[None] = str(exc)
                raise
            self._results[None] = b"" if found is None else str(found).encode()
        cached = self._results[None]
        if isinstance(cached, str):
            raise VideoUnreadable(cached)
        return float(cached) if cached else None


@dataclass(frozen=True)
class VideoFrame:
    """One still of a video, decoded when a detector reads it."""

    video: Video
    position: float

    @property
    def name(self) -> str:
        return f"{self.video.name}@{self.position:g}"

    def read(self, max_bytes: int) -> bytes:
        data = self.video.frame(self.position)
        if len(data) > max_bytes:
            raise ImageTooLarge(f"{self.name}: {len(data)} bytes > {max_bytes}")
        return data


def _run_frame(data: bytes, at: float, limits: VideoLimits) -> bytes:
    scale = (f"scale='min({FRAME_SIDE},iw)':'min({FRAME_SIDE},ih)'"
             ":force_original_aspect_ratio=decrease")
    out = _ffmpeg(data, limits, ["-loglevel", "error", "-ss", f"{at:.3f}"],
                  ["-frames:v", "1", "-vf", scale, "-f", "image2pipe", "-c:v", "png", "pipe:1"])
    if out.returncode != 0 or not out.stdout.startswith(b"\x89PNG"):
        raise VideoUnreadable(f"the decoder found no picture (exit {out.returncode})",
                              past_end=out.returncode == 0 and not out.stdout)
    return out.stdout


def _probe_duration(data: bytes, limits: VideoLimits) -> float | None:
    """The container's duration in seconds; None when it does not say (a stream, a GIF)."""
    # With no output ffmpeg prints the input's header and exits 1: that is the probe.
    out = _ffmpeg(data, limits, [], [])
    if b"Video:" not in out.stderr:
        raise VideoUnreadable("no video stream found")
    found = _DURATION.search(out.stderr)
    if found is None:
        return None
    hours, minutes, seconds = int(found[1]), int(found[2]), float(found[3])
    return hours * 3600 + minutes * 60 + seconds


def _ffmpeg(data: bytes, limits: VideoLimits, before: list[str], after: list[str]
            ) -> subprocess.CompletedProcess[bytes]:
    fd = os.memfd_create("video", os.MFD_CLOEXEC)
    try:
        view = memoryview(data)
        while view:  # a write may take less than it was given
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
        exe = limits.ffmpeg or bundled_ffmpeg()
        args = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(limits.memory), exe,
                "-nostdin", "-hide_banner", "-threads", "1", "-filter_threads", "1",
                "-protocol_whitelist", "file", "-format_whitelist", DEMUXERS,
                "-max_pixels", str(limits.max_pixels),
                *before, "-i", f"/proc/self/fd/{fd}", *after]
        try:
            # run() kills the child when the time is up; the launcher exec'd, so the
            # child is ffmpeg itself and nothing is left behind.
            return subprocess.run(args, capture_output=True, pass_fds=(fd,),
                                  timeout=limits.timeout, stdin=subprocess.DEVNULL, check=False)
        except subprocess.TimeoutExpired as exc:
            raise VideoUnreadable(f"not decoded within {limits.timeout:g} s",
                                  timed_out=True) from exc
        except OSError as exc:
            raise VideoUnreadable(f"the decoder could not start ({type(exc).__name__})") from exc
    finally:
        os.close(fd)
