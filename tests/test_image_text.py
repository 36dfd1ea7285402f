"""Phrase codes written inside images (detectors/image_text.py), through the real OCR engine.

The images in tests/data/ocr/ are a committed slice of benchmarks/ocr_accuracy.py's generated
corpus (benchmarks/corpora/ocr_corpus.py): code phrases and ordinary text rendered onto the
photos of tests/data/images, rotated, in perspective, blurred, at JPEG quality 40, inside a
phone screenshot, and a screenshot of an ordinary chat (neg-chat-*: about 20 lines of
sentences, the densest ordinary text, read through the OCR-aware comparison). cases.json names
the phrase on each (null: ordinary text only).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from detectors import image_text
from detectors.codes import PhraseDetector, build_detectors
from detectors.image_decode import ImageLimits, ImageRefused
from tests.conftest import write_config
from watcher.cli import main
from watcher.core.config import Code, load
from watcher.core.models import BytesImage, DetectionFailed, Event
from watcher.engine.engine import detect

DATA = Path(__file__).parent / "data" / "ocr"
CASES: dict[str, str | None] = json.loads((DATA / "cases.json").read_text())
POSITIVES = sorted(name for name, phrase in CASES.items() if phrase)
NEGATIVES = sorted(name for name, phrase in CASES.items() if phrase is None)
ALL_PHRASES = sorted({p for p in CASES.values() if p})


def _code(phrases: list[str], **extra: object) -> Code:
    return Code.model_validate({"person": "sam", "phrase": phrases, "in_images": True,
                                **extra})


def _event(*images: bytes, text: str = "look") -> Event:
    return Event(platform="replay", person="sam", kind="message", id="1",
                 at=datetime(2026, 11, 22, 14, tzinfo=UTC), text=text,
                 images=tuple(BytesImage(data) for data in images))


def test_slice_is_there_and_small() -> None:
    assert len(POSITIVES) >= 5 and len(NEGATIVES) >= 3
    assert sum(p.stat().st_size for p in DATA.iterdir()) < 2_000_000


@pytest.mark.parametrize("name", POSITIVES)
def test_phrase_written_in_a_photo_matches(name: str) -> None:
    phrase = CASES[name]
    assert phrase is not None
    detector = PhraseDetector(_code([phrase]))
    evidence = detector.match(_event((DATA / name).read_bytes()))
    assert evidence is not None
    assert evidence["source"] == "image_text" and evidence["image"] == 0
    assert evidence["phrase"] == phrase


@pytest.mark.parametrize("name", NEGATIVES)
def test_ordinary_text_in_a_photo_matches_no_code(name: str) -> None:
    data = (DATA / name).read_bytes()
    # Not vacuous: the engine did read the sign's words, and they are no code.
    assert image_text.read_text(data)
    assert PhraseDetector(_code(ALL_PHRASES)).match(_event(data)) is None


def test_switched_off_per_code() -> None:
    name = POSITIVES[0]
    phrase = CASES[name]
    assert phrase is not None
    detector = PhraseDetector(_code([phrase], in_images=False))
    assert not detector.needs_threads
    assert detector.match(_event((DATA / name).read_bytes())) is None


def test_typed_text_still_wins_and_needs_no_ocr() -> None:
    detector = PhraseDetector(_code(["the kettle is still broken"]))
    evidence = detector.match(_event(b"not an image", text="the kettle is still broken"))
    assert evidence is not None and evidence["in"] == "text"


def test_one_ocr_pass_per_image_shared_by_all_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = image_text.TextReader()
    monkeypatch.setattr(image_text, "_reader", reader)
    calls = []
    recognise = reader._recognise

    def counting(data: bytes) -> image_text.ImageText:
        calls.append(len(data))
        return recognise(data)

    monkeypatch.setattr(reader, "_recognise", counting)
    data = (DATA / NEGATIVES[0]).read_bytes()
    for phrase in ALL_PHRASES:
        assert PhraseDetector(_code([phrase])).match(_event(data)) is None
    assert len(calls) == 1


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _jpeg(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 30, 200)).save(out, "JPEG")
    return out.getvalue()


@pytest.mark.parametrize("data", [
    b"", b"\xff\xd8garbage", _png_header_only(60_000, 60_000), _png_header_only(1, 1),
    (DATA / POSITIVES[0]).read_bytes()[:4000], b"GIF89a" + b"\x00" * 50,
], ids=["empty", "corrupt-jpeg", "huge-dimensions", "tiny", "truncated", "bad-gif"])
def test_hostile_image_is_could_not_be_checked(data: bytes) -> None:
    detector = PhraseDetector(_code(["the kettle is still broken"]))
    with pytest.raises(DetectionFailed, match="image 0: text not readable"):
        detector.match(_event(data))


def test_a_readable_match_beats_an_unreadable_neighbour() -> None:
    name = POSITIVES[0]
    phrase = CASES[name]
    assert phrase is not None
    evidence = PhraseDetector(_code([phrase])).match(
        _event(b"\xff\xd8garbage", (DATA / name).read_bytes()))
    assert evidence is not None and evidence["image"] == 1


def test_byte_cap_applies_before_decoding() -> None:
    detector = PhraseDetector(_code(["the kettle is still broken"]), ImageLimits(max_bytes=1000))
    with pytest.raises(DetectionFailed, match="text not readable"):
        detector.match(_event(_jpeg((400, 300)) + b"\x00" * 2000))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_random_bytes_only_ever_refused(data: bytes) -> None:
    reader = image_text.TextReader()
    # Anything but a refusal (or a result) escaping would crash a worker thread.
    with contextlib.suppress(ImageRefused):
        reader.read(b"\x89PNG\r\n\x1a\n" + data)


def test_engine_failure_is_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = image_text.TextReader()

    def broken() -> image_text._Engine:
        def run(img: object, **kwargs: object) -> tuple[object, object]:
            raise RuntimeError("onnx went away")
        return run

    monkeypatch.setattr(image_text, "_load_engine", broken)
    with pytest.raises(ImageRefused, match="text recognition failed"):
        reader.read(_jpeg((400, 300)))
    # The refusal is remembered for the same bytes, and raised afresh each time.
    with pytest.raises(ImageRefused):
        reader.read(_jpeg((400, 300)))


def test_replay_json_reports_image_text(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    name = POSITIVES[0]
    config = write_config(tmp_path, f"""
        [codes.garden]
        person = "sam"
        phrase = ["{CASES[name]}"]
        in_images = true
        playbook = "check-on-me"
        """)
    shutil.copy(DATA / name, tmp_path / "note.jpg")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"person": "sam", "id": "7", "at": "2026-11-22T15:00:00Z",
                                "text": "", "images": ["note.jpg"]}) + "\n")
    assert main(["replay", "--config", str(config), str(feed), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["code"], r["evidence"]["source"]) for r in rows] == [("garden", "image_text")]


def test_detect_runs_ocr_only_for_codes_that_apply(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    detectors, _ = build_detectors(load(config_path))
    other = Event(platform="replay", person="nobody", kind="message", id="2",
                  at=datetime(2026, 11, 22, 14, tzinfo=UTC), images=(BytesImage(b"junk"),))
    # No code of this person: nothing looked at the (unreadable) image, so nothing failed.
    assert detect(detectors, other) == ([], [])


def _box(left: float, top: float, width: float, height: float) -> list[list[float]]:
    return [[left, top], [left + width, top], [left + width, top + height],
            [left, top + height]]


def test_lines_are_read_row_by_row_left_to_right() -> None:
    # "my" starts 6 px lower than the rest of its line: by top edge alone it came after.
    found = [
        [_box(120, 100, 600, 40), "bicycle tyre is flat again", 0.9],
        [_box(20, 106, 80, 40), "my", 0.9],
        [_box(20, 200, 300, 40), "second line", 0.9],
        [_box(20, 300, 300, 40), "unsure", 0.2],
    ]
    assert image_text._lines(found) == ["my", "bicycle tyre is flat again", "second line"]


HANDWRITTEN = "pos-0003-breip-x36-none-dark.jpg"  # the engine reads "We ran eut ef eat nilk"


def test_handwriting_the_engine_misreads_still_matches() -> None:
    data = (DATA / HANDWRITTEN).read_bytes()
    phrase = CASES[HANDWRITTEN]
    assert phrase is not None
    read = image_text.read_text(data).joined()
    # Not vacuous: compared as typed text, what the engine read is no match (o read as e
    # three times is more than the phrase's two typos).
    assert PhraseDetector(_code([phrase])).match(_event(text=read)) is None
    evidence = PhraseDetector(_code([phrase])).match(_event(data))
    assert evidence is not None and evidence["source"] == "image_text"
    assert evidence["phrase"] == phrase and evidence["ocr_confusions"] >= 3
    # The evidence quotes what the engine read, not the phrase it stands for.
    assert evidence["matched"] == read[evidence["span"][0]:evidence["span"][1]]


def test_replay_json_evidence_of_an_image_text_match(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """The replay contract: the image-text match says where it was read (image index, span in
    the read text), the engine's confusions forgiven, and typed text still comes first."""
    config = write_config(tmp_path, f"""
        [codes.milk]
        person = "sam"
        phrase = ["{CASES[HANDWRITTEN]}"]
        in_images = true
        playbook = "check-on-me"
        """)
    shutil.copy(DATA / HANDWRITTEN, tmp_path / "note.jpg")
    shutil.copy(DATA / NEGATIVES[0], tmp_path / "sign.jpg")
    feed = tmp_path / "feed.jsonl"
    lines = [{"person": "sam", "id": "7", "at": "2026-11-22T15:00:00Z", "text": "",
              "images": ["sign.jpg", "note.jpg"]},
             {"person": "sam", "id": "8", "at": "2026-11-22T15:01:00Z",
              "text": "we ran out of oat milk", "images": ["note.jpg"]},
             {"person": "sam", "id": "9", "at": "2026-11-22T15:02:00Z", "text": "",
              "images": ["sign.jpg"]}]
    feed.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["replay", "--config", str(config), str(feed), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["event"], r["code"]) for r in rows] == [("7", "milk"), ("8", "milk")]
    image, typed = rows[0]["evidence"], rows[1]["evidence"]
    assert image["source"] == "image_text" and image["in"] == "image_text"
    assert image["image"] == 1 and image["phrase"] == "we ran out of oat milk"
    assert image["ocr_confusions"] >= 3 and len(image["span"]) == 2
    assert typed["in"] == "text" and "source" not in typed
