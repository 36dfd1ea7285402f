"""A mail into an Event (connectors/email/translate.py): what is matched, what is quoted,
and that hostile MIME never raises (hypothesis)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.email import translate
from watcher.core.models import BytesImage, ImageTooLarge

CODE = "the network went down at work"
AT = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def mail(body: str = "", *, subject: str = "hello", html: str | None = None,
         images: tuple[bytes, ...] = (), sender: str = "Sam <sam@example.org>") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "alex@example.org"
    msg["Subject"] = subject
    msg["Message-ID"] = "<1@example.org>"
    if body:
        msg.set_content(body)
    if html is not None:
        if body:
            msg.add_alternative(html, subtype="html")
        else:
            msg.set_content(html, subtype="html")
    for i, data in enumerate(images):
        msg.add_attachment(data, maintype="image", subtype="jpeg", filename=f"sam-{i}.jpg")
    return msg.as_bytes()


def event_text(raw: bytes) -> str:
    return translate.to_event(raw, person="sam", at=AT).text


def test_plain_text_and_subject_are_matched() -> None:
    event = translate.to_event(mail("I am fine.\n" + CODE, subject="news"), person="sam", at=AT,
                               sender="sam@example.org")
    assert CODE in event.text and "news" in event.text
    assert event.platform == "email" and event.feed == "sam/email" and event.kind == "message"
    assert event.places == ("sam@example.org",)  # nothing is ever sent to the sender


def test_html_only_mail_is_converted_to_text_without_scripts_or_quotes() -> None:
    html = (f"<html><head><style>p {{}}</style></head><body><p>{CODE.replace(' ', '&nbsp;', 0)}"
            "</p><script>var x = 'quoted secret';</script>"
            "<blockquote>an old quoted thing</blockquote>"
            "<div class='gmail_quote'>On Mon, Alex wrote: earlier</div></body></html>")
    text = event_text(mail(html=html))
    assert CODE in text
    assert "quoted secret" not in text and "old quoted" not in text and "earlier" not in text


@pytest.mark.parametrize("body", [
    f"Thanks!\n\n> {CODE}\n> bye",
    f"Thanks!\n\nOn Mon, 7 Dec 2026 at 10:00, Sam <sam@example.org> wrote:\n{CODE}",
    f"Thanks!\n\nOn Mon, 7 Dec 2026 at 10:00, Sam <sam@example.org>\nwrote:\n{CODE}",
    f"Thanks!\n-----Original Message-----\nFrom: Sam\nSent: Monday\n{CODE}",
    f"Thanks!\nFrom: Sam <sam@example.org>\nSent: Monday\nSubject: x\n\n{CODE}",
])
def test_quoted_replies_do_not_carry_the_code(body: str) -> None:
    text = event_text(mail(body))
    assert "Thanks!" in text
    assert CODE not in text


def test_a_reply_subject_is_quoted_text() -> None:
    assert CODE not in event_text(mail("ok", subject=f"Re: {CODE}"))
    assert CODE in event_text(mail("ok", subject=CODE))


def test_images_are_lazy_and_size_capped() -> None:
    small, big = b"\xff\xd8small", b"\xff\xd8" + b"x" * 5000
    event = translate.to_event(mail("hi", images=(small, big)), person="sam", at=AT,
                               max_image_bytes=1000)
    assert len(event.images) == 2
    assert isinstance(event.images[0], BytesImage) and event.images[0].read(1000) == small
    with pytest.raises(ImageTooLarge):
        event.images[1].read(1000)
    # No file name from the sender in the event's image names (they reach logs).
    assert all("sam-" not in image.name for image in event.images)


def test_a_truncated_mail_reports_its_images_as_not_checked() -> None:
    raw = mail(CODE, images=(b"\xff\xd8" + b"y" * 20_000,))
    event = translate.to_event(raw[:len(raw) // 2], person="sam", at=AT, truncated=True)
    assert CODE in event.text  # the text before the attachment is still read
    assert event.images, "the cut image and the unread rest are reported"
    for image in event.images:
        with pytest.raises(ImageTooLarge):
            image.read(10**9)


def test_the_event_id_is_the_same_whatever_the_uid_and_differs_per_mail() -> None:
    one, two = mail("a"), mail("a", subject="other")
    first = translate.to_event(one, person="sam", at=AT).id
    assert first == translate.to_event(one, person="sam", at=datetime.now(UTC)).id
    assert first != translate.to_event(two, person="sam", at=AT).id


def test_senders_ignore_the_display_name() -> None:
    msg = translate.parse(mail("x", sender='"sam@example.org" <abuser@example.net>'))
    assert translate.senders(msg) == ["abuser@example.net"]


@pytest.mark.parametrize(("header", "passes"), [
    ("mx.example.org; dmarc=pass header.from=example.org", True),
    ("mx.example.org; dkim=pass header.d=example.org; spf=fail", True),
    ("mx.example.org; dkim=pass header.d=evil.example; dmarc=fail", False),
    ("mx.example.org; dmarc=fail (p=none) header.from=example.org", False),
    ("evil.example; dmarc=pass header.from=example.org", False),  # the sender's own line
    ("mx.example.org (dmarc=pass); dmarc=none", False),  # a comment is no result
])
def test_authentication_results_count_only_from_our_server(header: str, passes: bool) -> None:
    msg = EmailMessage()
    msg["From"] = "sam@example.org"
    msg["Authentication-Results"] = header
    assert translate.authenticated(msg, "mx.example.org", "sam@example.org") is passes


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    event = translate.to_event(raw, person="sam", at=AT, truncated=bool(len(raw) % 2))
    assert event.platform == "email"
    translate.senders(translate.parse(raw))


_header_values = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)


@settings(max_examples=200, deadline=None)
@given(boundary=st.text("ab-'=()", min_size=0, max_size=12),
       charset=st.sampled_from(["utf-8", "x-unknown", "utf-7", "", "latin-1\"", "utf-16"]),
       encoding=st.sampled_from(["base64", "quoted-printable", "7bit", "x-bogus", ""]),
       body=st.binary(max_size=500), subject=_header_values,
       nested=st.integers(min_value=0, max_value=60), close=st.booleans())
def test_hostile_mime_never_raises(boundary: str, charset: str, encoding: str, body: bytes,
                                   subject: str, nested: int, close: bool) -> None:
    """Broken boundaries, unknown charsets and encodings, deep nesting, bad RFC 2047."""
    head = (f"From: =?bogus?Q?sam?= <sam@example.org>\r\nSubject: =?utf-8?B?{subject}?=\r\n"
            f'Content-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n').encode()
    part = (f"--{boundary}\r\nContent-Type: text/plain; charset={charset}\r\n"
            f"Content-Transfer-Encoding: {encoding}\r\n\r\n").encode() + body + b"\r\n"
    inner = (f'--{boundary}\r\nContent-Type: multipart/mixed; boundary="{boundary}"\r\n\r\n'
             ).encode() * nested
    image = (f"--{boundary}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64"
             "\r\n\r\n!!notbase64==\r\n").encode()
    raw = head + inner + part + image + (f"--{boundary}--\r\n".encode() if close else b"")
    event = translate.to_event(raw, person="sam", at=AT, max_image_bytes=100)
    for image_source in event.images:
        with contextlib.suppress(ImageTooLarge, OSError):
            image_source.read(100)


def test_an_attached_mail_is_forwarded_content_and_does_not_fire() -> None:
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "sam@example.org", "old"
    inner.set_content(CODE)
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "sam@example.org", "see below"
    outer.set_content("Forwarding this.")
    outer.add_attachment(inner)
    text = event_text(outer.as_bytes())
    assert "Forwarding this." in text and CODE not in text
