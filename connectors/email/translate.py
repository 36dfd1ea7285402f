"""A mail, as bytes from the server, into what the detectors read. Pure: no I/O, no clock.

Parsed with the standard library's tolerant compat32 parser: malformed MIME gives defects,
not exceptions, and every step that could still raise on hostile input is guarded, so one
bad mail never stops a folder (a mail that cannot be read at all still becomes an event
with its subject, if any, so it is stored and counted).

Quoted text (replies) is removed before matching: a contact's reply that quotes the
survivor's code, or the survivor re-sending an old thread, must not fire it again.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses
from html.parser import HTMLParser

from connectors.common import UnreadImage
from watcher.core.models import BytesImage, Event, ImageSource

PLATFORM = "email"
ID_BYTES = 1 << 16
MAX_DEPTH = 20
# The "On Mon, 7 Dec 2026 at 10:00, Sam <sam@example.org> wrote:" line (it may wrap over
# two lines), Outlook's separator and its "From: ... Sent: ..." header block.
_ATTRIBUTION = re.compile(r"^\s*On\b.{0,300}?\bwrote:\s*$", re.IGNORECASE | re.DOTALL)
_OUTLOOK = re.compile(r"^\s*(-{3,}\s*Original Message\s*-{3,}|_{10,})\s*$", re.IGNORECASE)
# A reply's or forward's subject repeats an earlier mail's: it is quoted text too.
_REPLY_SUBJECT = re.compile(r"^\s*(re|fwd?|aw|sv|tr)\s*(\[\d+\])?\s*:", re.IGNORECASE)
_FROM_SENT = re.compile(r"^\s*From:\s.*$", re.IGNORECASE)
_SKIP_TAGS = frozenset({"script", "style", "head", "title", "blockquote"})
_BLOCK_TAGS = frozenset({"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6",
                         "table", "ul", "ol", "pre", "hr"})
_QUOTE_CLASSES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted", "divrplyfwdmsg")


def parse(raw: bytes) -> Message:
    """Any bytes give a Message (compat32 never raises on malformed MIME)."""
    return message_from_bytes(raw)


def header_text(msg: Message, name: str) -> str:
    """A header decoded from RFC 2047, or "" when it is missing or undecodable."""
    value = msg.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except Exception:  # hostile encodings: LookupError, UnicodeError, ValueError...
        return str(value)


def senders(msg: Message) -> list[str]:
    """The From addresses, lower-cased (the display name is ignored: "sam@x <y@z>" is y@z)."""
    try:
        values = [str(v) for v in msg.get_all("From") or []]
        return [addr.strip().lower() for _, addr in getaddresses(values) if "@" in addr]
    except Exception:
        return []


def content_id(raw: bytes) -> str:
    """The event id: the mail's own bytes (headers and the start of the body), the same in
    any folder and under any UIDVALIDITY, so the store's dedupe holds across a mailbox
    rebuild (docs/email.md). Not the Message-ID alone: it may be missing or repeated, and
    two different mails must never share an id (the second would be dropped unread)."""
    return hashlib.sha256(raw[:ID_BYTES]).hexdigest()[:40]


def authenticated(msg: Message, authserv_id: str, sender: str) -> bool:
    """A pass recorded by our own receiving server (authserv_id) for the From domain: dmarc=pass,
    or dkim=pass with header.d aligned to it. Lines from other ids are the sender's own and
    prove nothing (RFC 8601 section 5)."""
    domain = sender.rpartition("@")[2]
    for value in msg.get_all("Authentication-Results") or []:
        text = re.sub(r"\([^)]*\)", " ", str(value)).lower()  # drop comments
        serv, _, results = text.partition(";")
        if serv.split()[:1] != [authserv_id.lower()]:
            continue
        for result in results.split(";"):
            words = result.split()
            if "dmarc=pass" in words:
                return True
            if "dkim=pass" in words:
                signer = next((w.split("=", 1)[1] for w in words if w.startswith("header.d=")),
                              "")
                if signer and (domain == signer or domain.endswith("." + signer)):
                    return True
    return False


class _HtmlText(HTMLParser):
    """Visible text of an HTML part, without scripts, styles and quoted blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # (tag, starts a skipped block)
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = " ".join(v or "" for k, v in attrs if k == "class")
        skip = tag in _SKIP_TAGS or any(c in classes for c in _QUOTE_CLASSES)
        if tag in ("br", "hr", "img", "meta", "link", "input"):  # void elements
            self.out.append("\n")
            return
        self.stack.append((tag, skip))
        self.skipping += skip
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        # Close up to the matching tag; a stray end tag is ignored (hostile HTML).
        if not any(t == tag for t, _ in self.stack):
            return
        while self.stack:
            name, skip = self.stack.pop()
            self.skipping -= skip
            if name == tag:
                break
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # the parser is tolerant; this is a last guard
        pass
    return "".join(parser.out)


def strip_quotes(text: str) -> str:
    """The new text of a reply: quoted lines (">") go, and so does everything from an
    "On ... wrote:" attribution or an Outlook "Original Message" block onwards."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for i, line in enumerate(lines):
        if _OUTLOOK.match(line):
            break
        if _ATTRIBUTION.match(line) or (_ATTRIBUTION.match(
                " ".join(lines[i:i + 2])) and line.strip().lower().startswith("on ")):
            break
        if _FROM_SENT.match(line) and any(
                n.strip().lower().startswith(("sent:", "date:")) for n in lines[i + 1:i + 3]):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


def _decoded(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            return ""
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:  # an unknown charset name
            return payload.decode("utf-8", "replace")
    except Exception:
        return ""


def _image_name(part: Message, index: int) -> str:
    # A position, never the sender's file name (it could carry personal text into logs).
    return f"email image {index}"


def _walk(msg: Message, depth: int = 0) -> Iterator[Message]:
    """The leaf parts, without descending into attached mails (message/rfc822: forwarded
    content, like a quote) and no deeper than MAX_DEPTH (absurd nesting is hostile)."""
    try:
        if depth > MAX_DEPTH or msg.get_content_maintype() == "message":
            return
        if not msg.is_multipart():
            yield msg
            return
        payload = msg.get_payload()
    except Exception:
        return
    for part in payload if isinstance(payload, list) else []:
        if isinstance(part, Message):
            yield from _walk(part, depth + 1)


def body_parts(msg: Message, max_image_bytes: int
               ) -> tuple[list[str], list[str], list[ImageSource]]:
    """(plain texts, HTML texts, images). Attached mails (message/rfc822) are forwarded
    content, like a quote: they are not walked."""
    plain: list[str] = []
    html: list[str] = []
    images: list[ImageSource] = []
    for part in _walk(msg):
        try:
            kind = part.get_content_type()
        except Exception:
            continue
        if kind == "text/plain" and "attachment" not in str(part.get("Content-Disposition", "")):
            plain.append(_decoded(part))
        elif kind == "text/html":
            html.append(_decoded(part))
        elif kind.startswith("image/"):
            name = _image_name(part, len(images) + 1)
            payload = part.get_payload(decode=True)
            data = payload if isinstance(payload, bytes) else b""
            if len(data) > max_image_bytes:
                images.append(UnreadImage(name, f"{len(data)} bytes", too_large=True))
            else:
                images.append(BytesImage(data, name))
    return plain, html, images


def to_event(raw: bytes, *, person: str, at: datetime, truncated: bool = False,
             max_image_bytes: int = 25_000_000, sender: str = "") -> Event:
    """The event of one mail of `person`. `truncated`: only the first bytes were fetched
    (a big mail), so the part cut short and the rest "could not be checked"."""
    msg = parse(raw)
    subject = header_text(msg, "Subject")
    if _REPLY_SUBJECT.match(subject):
        subject = ""
    try:
        plain, html, images = body_parts(msg, max_image_bytes)
    except Exception:
        plain, html, images = [], [], []
    if truncated:
        # The last part may be cut and later parts were never fetched: an image code there
        # is reported as not checked, never silently passed.
        if images and isinstance(images[-1], BytesImage):
            images[-1] = UnreadImage(images[-1].name, "cut short by max_message_bytes", True)
        images.append(UnreadImage("rest of the mail", "not fetched (max_message_bytes)", True))
    # HTML only when there is no plain text: a multipart/alternative says the same twice.
    texts = plain if any(t.strip() for t in plain) else [html_to_text(h) for h in html]
    body = "\n\n".join(strip_quotes(t) for t in texts if t.strip())
    text = "\n\n".join(t for t in (subject.strip(), body) if t)
    return Event(platform=PLATFORM, person=person, kind="message", id=content_id(raw), at=at,
                 text=text, images=tuple(images), feed=f"{person}/{PLATFORM}",
                 places=(sender,) if sender else ())
