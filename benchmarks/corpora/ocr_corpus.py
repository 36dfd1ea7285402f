"""Images with text in them, for benchmarks/ocr_accuracy.py: generated, deterministic, cached.

Positives: a code phrase rendered onto a real photo (tests/data/images and the image
benchmark's corpus) in a font from Debian's packages (fonts-dejavu-core, fonts-liberation,
fonts-freefont-ttf, and handwriting-like fonts-comic-neue, fonts-dkg-handwriting, fonts-breip,
fonts-femkeklaver), at a given x-height *as the OCR engine sees it* (after the reduction to
detectors/image_text.OCR_SIDE), light or dark, then one distortion: none, rotation up to 10
degrees, perspective, blur, JPEG quality 40, or the photo inside a phone screenshot.

Negatives: photos with ordinary text rendered on them the same way (signs, menus, notes) and
the image benchmark's photos as they are.

Every case is a pure function of its index (seeded), so a run can be repeated and cached under
.cache/ocr-corpus/; tests/data/ocr/ holds a small committed slice.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[2]
OCR_SIDE = 1280  # detectors/image_text.OCR_SIDE (not imported: this module runs standalone)
CANVAS_SIDE = 1600  # generated photos are this size; the engine sees them at OCR_SIDE

PRINTED = {
    "dejavu-sans": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "dejavu-serif": "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "dejavu-sans-bold": "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "liberation-sans": "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "liberation-serif": "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
    "freesans": "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "freeserif-italic": "/usr/share/fonts/truetype/freefont/FreeSerifItalic.ttf",
}
HANDWRITING = {
    "comic-neue": "/usr/share/fonts/opentype/comic-neue/ComicNeue-Regular.otf",
    "dkg": "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf",
    "breip": "/usr/share/fonts/truetype/breip/Breip.ttf",
    "femkeklaver": "/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf",
}
FONTS = {**PRINTED, **HANDWRITING}

# Code phrases of the kind people agree on: ordinary words that mean something only to them.
PHRASES = (
    "the blue heron flies at noon", "grandma needs her reading glasses",
    "please water the ferns today", "the kettle is still broken",
    "remember the yellow umbrella", "aunt rosa called about the cake",
    "walk the dog past the bakery", "i left my library card",
    "the garden gate is squeaking", "bring the striped blanket",
    "tomatoes are ripe early this year", "call me about the piano lessons",
    "my bicycle tyre is flat again", "the owl came back last night",
    "we ran out of oat milk", "green candles for the party",
)
# Ordinary text for negatives: signs, menus, captions, chat chrome.
ORDINARY = (
    "OPEN 9am - 5pm Monday to Saturday", "Fresh bread baked daily", "No parking",
    "Espresso 2.50  Latte 3.20  Tea 2.00", "Happy birthday Sam!", "Platform 3 to Leeds",
    "Soup of the day: tomato & basil", "Exit", "Please keep off the grass", "SALE 50% OFF",
    "Emergency exit only - alarm will sound", "Welcome to the public library",
    "best day ever at the beach", "Reserved", "Pull", "Mind the step",
    "Lunch menu: pasta, salad, fruit", "Fire assembly point", "Toilets first floor",
    "Saturday farmers market 8-12", "Do not feed the ducks", "Wet floor",
    "Gate closes at sunset", "Blue Line: Central Station", "Cash only",
    "Vegetable curry with rice 8.90", "Please ring the bell", "Visitors sign in here",
    "Sunday roast from 12pm", "Bus stop 24 Harbour Road",
)
DISTORTIONS = ("none", "rotate", "perspective", "blur", "jpeg40", "screenshot")
X_HEIGHTS = (12, 16, 24, 36)


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes  # what is posted (JPEG or PNG)
    phrase: str | None  # the code rendered on it, None for a negative
    font: str
    handwriting: bool
    x_height: int  # as rendered, at the OCR scale of the photo
    distortion: str
    # What the engine really sees once the distortion changed the frame (a photo shrunk into a
    # screenshot has smaller letters): the x-height the targets are stated for.
    seen_x_height: float = 0.0


def _font_for(path: str, x_height: int) -> ImageFont.FreeTypeFont:
    """The font size whose "x" is x_height pixels tall on the canvas."""
    probe = ImageFont.truetype(path, 200)
    _, top, _, bottom = probe.getbbox("x")
    measured = max(1, bottom - top)
    canvas_x = x_height * CANVAS_SIDE / OCR_SIDE
    return ImageFont.truetype(path, max(6, round(200 * canvas_x / measured)))


def _background(photo: Path) -> Image.Image:
    img = Image.open(photo).convert("RGB")
    scale = CANVAS_SIDE / max(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)),
                      Image.Resampling.LANCZOS)


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _draw_text(img: Image.Image, text: str, font: ImageFont.FreeTypeFont, light: bool,
               rng: random.Random) -> None:
    """Text as people put it on pictures: light or dark, with an outline half the time (the
    story editors' default) and on a plain band the other half (a note, a sign)."""
    draw = ImageDraw.Draw(img)
    lines = _wrap(text, font, int(img.width * 0.85))
    ascent, descent = font.getmetrics()
    line_h = int((ascent + descent) * 1.15)
    block_w = max(int(font.getlength(line)) for line in lines)
    block_h = line_h * len(lines)
    x = rng.randint(10, max(10, img.width - block_w - 10))
    y = rng.randint(10, max(10, img.height - block_h - 10))
    fg, bg = ((250, 250, 250), (15, 15, 15)) if light else ((15, 15, 15), (245, 245, 240))
    style = rng.choice(("outline", "band"))
    if style == "band":
        pad = line_h // 3
        band = Image.new("RGB", (block_w + 2 * pad, block_h + 2 * pad), bg)
        img.paste(Image.blend(img.crop((x - pad, y - pad, x + block_w + pad, y + block_h + pad))
                              .resize(band.size), band, 0.8), (x - pad, y - pad))
    stroke = max(1, round(font.size / 18)) if style == "outline" else 0
    for i, line in enumerate(lines):
        draw.text((x, y + i * line_h), line, font=font, fill=fg, stroke_width=stroke,
                  stroke_fill=bg)


def _perspective(img: Image.Image, rng: random.Random) -> Image.Image:
    w, h = img.size
    d = 0.08
    src = [(rng.uniform(0, d) * w, rng.uniform(0, d) * h), (w - rng.uniform(0, d) * w, 0),
           (w, h - rng.uniform(0, d) * h), (rng.uniform(0, d) * w, h)]
    dst = [(0, 0), (w, 0), (w, h), (0, h)]
    coeffs = _perspective_coeffs(dst, src)
    return img.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)


def _perspective_coeffs(dst: list[tuple[float, float]], src: list[tuple[float, float]]
                        ) -> list[float]:
    import numpy as np

    rows = []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=float)
    b = np.array([c for p in src for c in p], dtype=float)
    return [float(c) for c in np.linalg.solve(a, b)]


def _screenshot(img: Image.Image, rng: random.Random) -> Image.Image:
    """The picture inside a phone's chat screen, 1080x2340, with the chrome's own text."""
    screen = Image.new("RGB", (1080, 2340), (255, 255, 255) if rng.random() < 0.5
                       else (18, 18, 18))
    dark = screen.getpixel((0, 0)) == (18, 18, 18)
    ink = (230, 230, 230) if dark else (20, 20, 20)
    ui = ImageFont.truetype(PRINTED["dejavu-sans"], 40)
    draw = ImageDraw.Draw(screen)
    draw.text((40, 30), f"{rng.randint(7, 23)}:{rng.randint(10, 59)}", font=ui, fill=ink)
    draw.text((860, 30), "5G 87%", font=ui, fill=ink)
    draw.text((140, 150), "Family", font=ImageFont.truetype(PRINTED["dejavu-sans-bold"], 52),
              fill=ink)
    draw.text((40, 2220), "Message", font=ui, fill=(140, 140, 140))
    scale = 1000 / img.width
    shown = img.resize((1000, round(img.height * scale)), Image.Resampling.LANCZOS)
    screen.paste(shown, (40, 400))
    draw.text((40, 420 + shown.height), "Seen", font=ui, fill=(140, 140, 140))
    return screen


def _distort(img: Image.Image, how: str, rng: random.Random) -> bytes:
    fmt, quality = "JPEG", 85
    if how == "rotate":
        img = img.rotate(rng.uniform(-10, 10), Image.Resampling.BICUBIC, expand=True,
                         fillcolor=(0, 0, 0))
    elif how == "perspective":
        img = _perspective(img, rng)
    elif how == "blur":
        # ~1 px at the OCR scale: a slightly soft phone photo.
        img = img.filter(ImageFilter.GaussianBlur(CANVAS_SIDE / OCR_SIDE * rng.uniform(0.8, 1.2)))
    elif how == "jpeg40":
        quality = 40
    elif how == "screenshot":
        img, fmt = _screenshot(img, rng), "PNG"
    out = io.BytesIO()
    img.save(out, fmt, quality=quality) if fmt == "JPEG" else img.save(out, fmt)
    return out.getvalue()


def _plan(index: int, positive: bool) -> tuple[random.Random, str, str, int, str, bool]:
    rng = random.Random(f"{'pos' if positive else 'neg'}-{index}")
    font_name = rng.choice(sorted(FONTS))
    x_height = X_HEIGHTS[index % len(X_HEIGHTS)]
    how = DISTORTIONS[(index // len(X_HEIGHTS)) % len(DISTORTIONS)]
    light = rng.random() < 0.5
    kind = "pos" if positive else "neg"
    name = f"{kind}-{index:04d}-{font_name}-x{x_height}-{how}-{'light' if light else 'dark'}"
    return rng, name, font_name, x_height, how, light


def case_name(index: int, *, positive: bool) -> str:
    """The name case() will give, without rendering anything (to skip cached cases)."""
    return _plan(index, positive)[1]


def case(index: int, photos: list[Path], *, positive: bool) -> Case:
    """The index-th positive (a code phrase) or negative (ordinary text) case."""
    rng, name, font_name, x_height, how, light = _plan(index, positive)
    text = rng.choice(PHRASES) if positive else rng.choice(ORDINARY)
    img = _background(photos[index % len(photos)])
    _draw_text(img, text, _font_for(FONTS[font_name], x_height), light, rng)
    data = _distort(img, how, rng)
    return Case(name, data, text if positive else None, font_name, font_name in HANDWRITING,
                x_height, how, _seen(x_height, img.size, data))


def _seen(x_height: int, canvas: tuple[int, int], data: bytes) -> float:
    on_canvas = x_height * CANVAS_SIDE / OCR_SIDE
    with Image.open(io.BytesIO(data)) as posted:
        size = posted.size
    if size == (1080, 2340):  # the screenshot: the photo was shrunk to 1000 px wide first
        on_canvas *= 1000 / canvas[0]
    return round(on_canvas * min(1.0, OCR_SIDE / max(size)), 1)


def real_photos(limit: int | None = None) -> list[Path]:
    """tests/data/images first, then the image benchmark's corpus when it has been fetched."""
    found = sorted((ROOT / "tests" / "data" / "images").glob("*.jpg"))
    corpus = ROOT / ".cache" / "image-corpus" / "photos"
    if (corpus / ".done").exists():
        found += sorted(corpus.glob("*/*.png"))
    return found[:limit] if limit else found




def _hw_plan(index: int) -> tuple[random.Random, str, str, int, str, bool]:
    rng = random.Random(f"hw-{index}")
    font_name = rng.choice(sorted(HANDWRITING))
    x_height = X_HEIGHTS[index % len(X_HEIGHTS)]
    # No screenshots: they shrink the letters below the 12 px the target is stated for.
    how = DISTORTIONS[(index // len(X_HEIGHTS)) % (len(DISTORTIONS) - 1)]
    light = rng.random() < 0.5
    name = f"hw-{index:04d}-{font_name}-x{x_height}-{how}-{'light' if light else 'dark'}"
    return rng, name, font_name, x_height, how, light


def handwriting_case_name(index: int) -> str:
    return _hw_plan(index)[1]


def handwriting_case(index: int, photos: list[Path]) -> Case:
    """A positive in a handwriting-like font only, from a seed of its own ("hw-"): a set held
    out from the cases the OCR confusion classes of detectors/image_text.py were chosen on
    (the first 300 positives), so their recall is not measured on what they were fitted to."""
    rng, name, font_name, x_height, how, light = _hw_plan(index)
    text = rng.choice(PHRASES)
    img = _background(photos[(index * 7 + 3) % len(photos)])
    _draw_text(img, text, _font_for(FONTS[font_name], x_height), light, rng)
    data = _distort(img, how, rng)
    return Case(name, data, text, font_name, True, x_height, how, _seen(x_height, img.size, data))


def chat_case(index: int, lines: list[str]) -> Case:
    """A negative: a phone screenshot of an ordinary chat (bubbles of `lines`, sentences from
    the phrase benchmark's corpora), light or dark, as PNG or as a JPEG re-saved by an app.
    Text-dense, so it tests the OCR confusion classes against many ordinary words at once."""
    rng = random.Random(f"chat-{index}")
    dark = rng.random() < 0.5
    screen = Image.new("RGB", (1080, 2340), (18, 18, 18) if dark else (255, 255, 255))
    draw = ImageDraw.Draw(screen)
    ink = (230, 230, 230) if dark else (20, 20, 20)
    ui = ImageFont.truetype(PRINTED["dejavu-sans"], 40)
    font_name = rng.choice(("dejavu-sans", "liberation-sans", "freesans"))
    font = ImageFont.truetype(PRINTED[font_name], rng.choice((34, 40, 46)))
    draw.text((40, 30), f"{rng.randint(7, 23)}:{rng.randint(10, 59)}", font=ui, fill=ink)
    draw.text((140, 150), rng.choice(("Family", "Jo", "Work", "Book club")),
              font=ImageFont.truetype(PRINTED["dejavu-sans-bold"], 52), fill=ink)
    y = 300
    while y < 2100:
        mine = rng.random() < 0.5
        wrapped = _wrap(rng.choice(lines), font, 700)[:4]
        line_h = int(sum(font.getmetrics()) * 1.2)
        height = line_h * len(wrapped) + 40
        if y + height > 2180:
            break
        width = max(int(font.getlength(line)) for line in wrapped) + 48
        x = 1040 - width if mine else 40
        fill = ((0, 92, 75) if dark else (220, 248, 198)) if mine else \
            ((38, 45, 49) if dark else (240, 240, 240))
        draw.rounded_rectangle((x, y, x + width, y + height), 24, fill=fill)
        for i, line in enumerate(wrapped):
            draw.text((x + 24, y + 20 + i * line_h), line, font=font, fill=ink)
        y += height + 30
    draw.text((40, 2220), "Message", font=ui, fill=(140, 140, 140))
    out = io.BytesIO()
    jpeg = rng.random() < 0.5
    screen.save(out, "JPEG", quality=70) if jpeg else screen.save(out, "PNG")
    return Case(chat_case_name(index), out.getvalue(), None, font_name, False, 0, "chat")



def chat_case_name(index: int) -> str:
    return f"chat-{index:04d}"
