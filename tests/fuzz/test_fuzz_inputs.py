"""Hostile input: event lines, survivor text inside templates, broken images."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from connectors.files.replay import EventFormatError, parse_line
from detectors.image import ImageLimits, ImageMatcher, ImageRefused
from playbooks.templates import render
from tests.conftest import ROOT, write_config
from watcher.core.config import Config, load

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=30)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=15)
EVENT_KEYS = ["platform", "person", "kind", "id", "at", "text", "alt", "images", "target",
              "emoji", "link", "edited", "removed", "extra"]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.dictionaries(st.sampled_from(EVENT_KEYS), json_values, max_size=8).map(
                     lambda d: json.dumps(d).encode())))
def test_event_lines_parse_or_are_refused(raw: bytes) -> None:
    try:
        parse_line(raw, ROOT / "examples" / "feed.jsonl")
    except EventFormatError as exc:
        assert str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_survivor_text_is_delivered_verbatim(text: str) -> None:
    config = _config()
    rendered = render("Sam said: {matched} ({link})", {"matched": text, "link": "L"}, "alex",
                      config)
    assert rendered == f"Sam said: {text} (L)"


def test_format_strings_in_survivor_text_are_not_interpreted() -> None:
    config = _config()
    nasty = "{person} {0} %s %(x)s <b>bold</b> *md* [link](http://x) {{}} {__class__}"
    assert render("{matched}", {"matched": nasty, "person": "P"}, "alex", config) == nasty


@functools.cache
def _config() -> Config:
    return load(write_config(Path(tempfile.mkdtemp())), environ={})


def _matcher() -> ImageMatcher:
    return ImageMatcher([ROOT / "examples" / "codes" / "flower.jpg"],
                        ImageLimits(max_bytes=2_000_000, max_pixels=20_000_000))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4000))
def test_random_bytes_are_refused_not_crashed(data: bytes) -> None:
    matcher = _matcher()
    with contextlib.suppress(ImageRefused):  # refusing is fine; any other exception is not
        matcher.find(data)


def test_truncated_and_huge_images_are_refused() -> None:
    matcher = _matcher()
    photo = (ROOT / "examples" / "photos" / "holiday.jpg").read_bytes()
    for cut in (10, 100, len(photo) // 2):
        with contextlib.suppress(ImageRefused):
            matcher.find(photo[:cut])
    big = io.BytesIO()
    Image.new("L", (10_000, 10_000)).save(big, "PNG")  # 100 MP of zeros: tiny file
    try:
        matcher.find(big.getvalue())
        raise AssertionError("a 100 MP image must be refused")
    except ImageRefused as exc:
        assert "pixels" in str(exc)
