"""The bounded video decoder (connectors/video_frames.py): frames out of real videos, and a
refusal ("could not be checked", an OSError the image detectors record) for everything a
hostile sender could post instead: garbage, truncation, absurd dimensions, a playlist that
points elsewhere, a decoder that hangs or wants too much memory."""

from __future__ import annotations

import functools
import io
import json
import stat
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from connectors.video_frames import POSITIONS, Video, VideoLimits, VideoUnreadable
from detectors.codes import ImageDetector, PhraseDetector
from detectors.image import ImageLimits, ImageMatcher
from tests.conftest import EXAMPLES
from tests.test_stickers import HOSTILE
from watcher.core.clock import utcnow
from watcher.core.config import Code
from watcher.core.models import BytesImage, DetectionFailed, Event, ImageTooLarge

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "corpora"))
import moving_media

pytestmark = pytest.mark.timeout(120)


@functools.cache
def clip() -> bytes:
    flower = Image.open(EXAMPLES / "photos" / "flower-as-posted.jpg")
    holiday = Image.open(EXAMPLES / "photos" / "holiday.jpg")
    return moving_media.clip(flower, holiday, shown=(2.0, 3.0))


@functools.cache
def matcher() -> ImageMatcher:
    return ImageMatcher([EXAMPLES / "codes" / "flower.jpg"])


def video(data: bytes, **limits: object) -> Video:
    return Video(BytesImage(data, "telegram:1/2/video"), VideoLimits(**limits))  # type: ignore[arg-type]


def test_the_frames_are_pngs_at_the_working_size_and_only_the_middle_one_is_the_photo() -> None:
    frames = video(clip()).frames()
    assert [f.position for f in frames] == list(POSITIONS)
    hits = []
    for frame in frames:
        data = frame.read(25_000_000)
        assert Image.open(io.BytesIO(data)).size == (1280, 720)
        hits.append(matcher().find(data) is not None)
    assert hits == [False, False, True, False]


def test_a_one_frame_animation_gives_its_only_frame_at_every_position() -> None:
    """A still GIF becomes an MP4 of one frame (0.04 s): seeking a quarter of the way in
    finds nothing after it, which must not make the video "could not be checked"."""
    flower = Image.open(EXAMPLES / "photos" / "flower-as-posted.jpg")
    still = moving_media.gif_mp4(flower, frames=1)
    for frame in video(still).frames():
        assert matcher().find(frame.read(25_000_000)) is not None


def test_a_frame_over_the_image_cap_is_too_large() -> None:
    with pytest.raises(ImageTooLarge):
        video(clip()).frames()[0].read(1000)


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_hostile_video_is_refused_as_an_oserror(name: str) -> None:
    for frame in video(HOSTILE[name]()).frames():
        with pytest.raises(VideoUnreadable):
            frame.read(25_000_000)


def test_a_playlist_cannot_make_the_decoder_read_another_file(tmp_path: Path) -> None:
    """HLS and concat lists name other files: their demuxers are not allowed, so the
    reference photo's own video beside it is never opened."""
    target = tmp_path / "flower.mp4"
    target.write_bytes(clip())
    for playlist in (f"#EXTM3U\n#EXT-X-TARGETDURATION:5\n#EXTINF:5,\nfile://{target}\n"
                     "#EXT-X-ENDLIST\n",
                     f"ffconcat version 1.0\nfile '{target}'\n"):
        with pytest.raises(VideoUnreadable):
            video(playlist.encode()).frames()[2].read(25_000_000)


def test_too_large_and_refused_sources_are_unreadable_too() -> None:
    with pytest.raises(VideoUnreadable, match="too large"):
        video(clip(), max_bytes=1000).frames()[0].read(25_000_000)
    with pytest.raises(VideoUnreadable, match="empty"):
        video(b"").frames()[0].read(25_000_000)


def test_the_address_space_limit_applies_to_the_decoder() -> None:
    """The same video decodes within the default limit and not within 16 MB: the rlimit
    reaches ffmpeg (a decoder that balloons is stopped by the kernel, not by luck)."""
    assert video(clip()).frames()[0].read(25_000_000).startswith(b"\x89PNG")
    with pytest.raises(VideoUnreadable):
        video(clip(), memory=16 * 2**20).frames()[0].read(25_000_000)


def test_a_decoder_that_hangs_is_stopped_once_and_every_frame_is_unreadable(
        tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    hang = tmp_path / "ffmpeg"
    hang.write_text(f"#!/bin/sh\necho run >> {runs}\nexec sleep 60\n")
    hang.chmod(hang.stat().st_mode | stat.S_IXUSR)
    frames = video(clip(), ffmpeg=str(hang), timeout=1.0).frames()
    started = time.monotonic()
    for frame in frames:
        with pytest.raises(VideoUnreadable, match="not decoded within 1 s"):
            frame.read(25_000_000)
    # One timeout for the whole video, not one per frame (nor one per code reading it):
    # every later frame answers at once, without starting the decoder again.
    assert time.monotonic() - started < len(frames) * 1.0
    assert (runs.read_text() if runs.exists() else "").count("run") <= 1


def test_an_image_code_records_an_unreadable_video_as_a_failure_not_a_no() -> None:
    detector = ImageDetector(matcher(), ImageLimits())
    event = Event(platform="telegram", person="sam", kind="message", id="1/2", at=utcnow(),
                  images=video(b"garbage").frames())
    with pytest.raises(DetectionFailed):
        detector.match(event)
    good = Event(platform="telegram", person="sam", kind="message", id="1/3", at=utcnow(),
                 images=(*video(b"garbage").frames(), *video(clip()).frames()))
    found = detector.match(good)  # a readable frame that matches wins over a broken one
    assert found is not None and found["image"] == 6


def test_a_gif_and_a_video_sticker_decode() -> None:
    flower = Image.open(EXAMPLES / "photos" / "flower-as-posted.jpg")
    gif = io.BytesIO()
    flower.convert("RGB").resize((320, 240)).save(gif, "GIF")
    assert matcher().find(video(gif.getvalue()).frames()[0].read(25_000_000)) is not None
    webm = moving_media.clip(flower, flower, seconds=1.0, size=(512, 512), webm=True)
    assert matcher().find(video(webm).frames()[2].read(25_000_000)) is not None


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=0, max_size=4096),
       st.sampled_from([b"", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00",
                        b"\x1aE\xdf\xa3", b"GIF89a"]))
def test_random_bytes_give_a_frame_or_a_refusal_never_anything_else(
        body: bytes, magic: bytes) -> None:
    for frame in video(magic + body).frames()[:2]:
        try:
            data = frame.read(25_000_000)
        except VideoUnreadable:
            continue
        assert data.startswith(b"\x89PNG")


def test_a_phrase_written_in_a_video_s_middle_frame_matches_a_code_with_in_images() -> None:
    """OCR reads frames like photos: the code's words shown only in the middle second."""
    data = Path(__file__).parent / "data" / "ocr"
    cases = json.loads((data / "cases.json").read_text())
    # Letters big enough to survive the 720p video (an x-height of 12 px at 1838 px is 5 px
    # at 720: unreadable, as on a phone's screen).
    name = "pos-0004-dejavu-sans-bold-x12-rotate-light.jpg"
    phrase = cases[name]
    holiday = Image.open(EXAMPLES / "photos" / "holiday.jpg")
    movie = moving_media.clip(Image.open(data / name), holiday, shown=(2.0, 3.0))
    code = Code.model_validate({"person": "sam", "phrase": [phrase], "in_images": True})
    event = Event(platform="telegram", person="sam", kind="message", id="1/4", at=utcnow(),
                  images=video(movie).frames())
    evidence = PhraseDetector(code).match(event)
    assert evidence is not None and evidence["source"] == "image_text"
    assert evidence["image"] == POSITIONS.index(0.5)
