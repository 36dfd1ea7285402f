"""Survivor text in an alert is plain, visible text, and every alert fits its channel."""

from __future__ import annotations

import tempfile
import unicodedata
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from playbooks.templates import (
    ELLIPSIS,
    LIMITS,
    clean_survivor_text,
    incident_fields,
    render,
)
from tests.conftest import write_config
from watcher.core.config import Config, load
from watcher.core.models import Incident, IncidentState

QUOTE = "{person} wrote: «{matched}» ({link}) - call {contact} back"
HOSTILE = ("\u202eevil\u202c", "\u2066iso\u2069", "zero\u200bwidth\u200d\ufeff", "a\nb\r\nc",
           "tab\there", "bell\x07", "nul\x00", "line\u2028para\u2029end", "\u061cmark\u200e")


@cache
def config() -> Config:
    folder = Path(tempfile.mkdtemp(prefix="alert-text-"))
    return load(write_config(folder), environ={})


def incident(matched: str, link: str | None = None) -> Incident:
    at = datetime(2026, 11, 22, 14, 2, tzinfo=UTC)
    return Incident(7, "network-down", "sam", IncidentState.OPEN, at, matched=matched,
                    link=link, event_key="telegram:c/1")


def invisible_or_control(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")]


def test_bidi_zero_width_and_control_characters_are_removed() -> None:
    cleaned = [clean_survivor_text(t) for t in HOSTILE]
    assert cleaned == ["evil", "iso", "zerowidth", "a b c", "tab here", "bell", "nul",
                       "line para end", "mark"]


def test_every_survivor_field_is_cleaned() -> None:
    fields = incident_fields(config(), incident("pay\u202eattention\n\nnow",
                                                "https://t.me/c/1/\u202e2\n"))
    assert fields["matched"] == "payattention now"
    assert fields["link"] == "https://t.me/c/1/2"


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_cleaned_text_has_no_invisible_or_control_character(text: str) -> None:
    cleaned = clean_survivor_text(text)
    assert invisible_or_control(cleaned) == []
    assert cleaned == cleaned.strip() and "  " not in cleaned


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=12000), st.sampled_from(sorted(LIMITS)), st.booleans())
def test_every_alert_fits_its_channel(matched: str, channel: str, drill: bool) -> None:
    fields = incident_fields(config(), incident(matched))
    prefix = "[DRILL] " if drill else ""
    text = render(QUOTE, fields, "jo", config(), None, channel, prefix)
    limit = LIMITS[channel]
    assert limit.measure(text) <= limit.size
    assert text.startswith(f"{prefix}Sam wrote: «") and text.endswith("call Jo back")
    whole = render(QUOTE, fields, "jo", config(), None, None, prefix)
    if whole != text:  # shortened: only the quote, marked with an ellipsis
        assert f"{ELLIPSIS}»" in text


def test_a_ten_thousand_character_quote_is_shortened_per_channel() -> None:
    fields = incident_fields(config(), incident("the network went down " + "é" * 10_000))
    sizes = {channel: LIMITS[channel].measure(render(QUOTE, fields, "jo", config(), None,
                                                     channel)) for channel in LIMITS}
    assert 4000 < sizes["telegram"] <= 4096
    assert 1900 < sizes["signal"] <= 2000
    assert 900 < sizes["apprise"] <= 1000
    console = render(QUOTE, fields, "jo", config(), None, "console")
    assert "é" * 10_000 in console  # the console has no limit: nothing is cut


def test_a_template_too_long_by_itself_is_cut_not_failed() -> None:
    fields = incident_fields(config(), incident("short"))
    text = render("x" * 5000 + "{matched}", fields, "jo", config(), None, "telegram")
    assert LIMITS["telegram"].measure(text) <= 4096 and text.endswith(ELLIPSIS)


def test_telegram_counts_utf16_units_signal_counts_bytes() -> None:
    emoji = "🙂" * 3000  # 3000 characters, 6000 UTF-16 units, 12000 bytes
    fields = incident_fields(config(), incident(emoji))
    tg = render("{matched}", fields, "jo", config(), None, "telegram")
    assert len(tg.encode("utf-16-le")) // 2 <= 4096 and len(tg) > 2000
    signal = render("{matched}", fields, "jo", config(), None, "signal")
    assert len(signal.encode()) <= 2000
