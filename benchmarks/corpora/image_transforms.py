"""What platforms and people do to a photo before it shows up in a feed.

Each transformation takes an RGB Pillow image and returns encoded bytes, the
way an incoming post arrives.  `seed` varies details (which corner is kept,
which way the picture tilts) between references so that a single lucky
configuration cannot carry a whole row of the results.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFont, ImageOps

Transform = Callable[[Image.Image, int], bytes]


def jpeg(img: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _scaled(img: Image.Image, share: float) -> Image.Image:
    size = (max(1, round(img.width * share)), max(1, round(img.height * share)))
    return img.resize(size, Image.Resampling.LANCZOS)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def _rotate(img: Image.Image, degrees: float, seed: int) -> bytes:
    sign = 1 if seed % 2 == 0 else -1
    return jpeg(img.rotate(sign * degrees, Image.Resampling.BICUBIC, expand=False,
                           fillcolor=(0, 0, 0)))


def _crop(img: Image.Image, share: float, anchor: str) -> bytes:
    w, h = round(img.width * share), round(img.height * share)
    x = {"tl": 0, "br": img.width - w, "c": (img.width - w) // 2}[anchor]
    y = {"tl": 0, "br": img.height - h, "c": (img.height - h) // 2}[anchor]
    return jpeg(img.crop((x, y, x + w, y + h)))


def _border(img: Image.Image, colour: tuple[int, int, int], share: float) -> bytes:
    pad = round(max(img.size) * share)
    return jpeg(ImageOps.expand(img, border=pad, fill=colour))


def _letterbox(img: Image.Image, _seed: int) -> bytes:
    side = max(img.size)
    canvas = Image.new("RGB", (side, side), (0, 0, 0))
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return jpeg(canvas)


def _text(img: Image.Image, seed: int) -> bytes:
    """Meme-style captions across the top and bottom of the picture."""
    out = img.copy()
    draw = ImageDraw.Draw(out)
    size = max(12, img.height // 9)
    font = _font(size)
    lines = [("FEELING BLESSED", 0.04), ("#sunday #mood", 0.82)] if seed % 2 == 0 else [
        ("best day ever!!", 0.06), ("love you all <3", 0.80)]
    for text, top in lines:
        width = draw.textlength(text, font=font)
        x = max(0, (img.width - width) / 2)
        draw.text((x, img.height * top), text, font=font, fill=(255, 255, 255),
                  stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
    return jpeg(out)


def _screenshot(img: Image.Image, seed: int, dark: bool) -> bytes:
    """The photo inside a phone app: status bar, toolbar, actions, caption, tab bar."""
    width, height = 1080, 2340
    bg, fg, bar = ((0, 0, 0), (235, 235, 235), (18, 18, 18)) if dark else (
        (255, 255, 255), (20, 20, 20), (248, 248, 248))
    canvas = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, 90), fill=bar)
    draw.text((40, 20), "9:41", font=_font(44), fill=fg)
    for i in range(3):  # signal, wifi, battery
        draw.rectangle((width - 200 + 55 * i, 30, width - 160 + 55 * i, 62), fill=fg)
    draw.rectangle((0, 90, width, 250), fill=bar)
    draw.text((120, 135), ["Photo", "Post", "Friends"][seed % 3], font=_font(56), fill=fg)
    draw.polygon([(40, 170), (80, 140), (80, 200)], fill=fg)  # back arrow
    photo = _scaled(img, width / img.width)
    if photo.height > 1500:
        photo = _scaled(img, 1500 / img.height)
    top = 270
    canvas.paste(photo, ((width - photo.width) // 2, top))
    y = top + photo.height + 30
    for i in range(4):  # like, comment, share, save
        draw.ellipse((40 + 110 * i, y, 110 + 110 * i, y + 70), outline=fg, width=6)
    y += 110
    for line in ("liked by alex and 23 others", "what a lovely afternoon in the park",
                 "View all 4 comments"):
        draw.text((40, y), line, font=_font(40), fill=fg)
        y += 60
    draw.rectangle((0, height - 160, width, height), fill=bar)
    for i in range(5):
        cx = width * (2 * i + 1) // 10
        draw.rectangle((cx - 30, height - 110, cx + 30, height - 50), outline=fg, width=6)
    return jpeg(canvas, 85)


def _tint(img: Image.Image, _seed: int) -> bytes:
    """A warm 'filter' as photo apps apply: shifted channels plus a vignette-free fade."""
    r, g, b = img.convert("RGB").split()
    r = r.point(lambda v: min(255, int(v * 1.12 + 12)))
    b = b.point(lambda v: int(v * 0.85))
    return jpeg(Image.merge("RGB", (r, g, b)))


TRANSFORMS: dict[str, Transform] = {
    "jpeg q30": lambda im, s: jpeg(im, 30),
    "jpeg q50": lambda im, s: jpeg(im, 50),
    "resize 25%": lambda im, s: jpeg(_scaled(im, 0.25)),
    "resize 50% + q70": lambda im, s: jpeg(_scaled(im, 0.5), 70),
    "brighter +40%": lambda im, s: jpeg(ImageEnhance.Brightness(im).enhance(1.4)),
    "darker -40%": lambda im, s: jpeg(ImageEnhance.Brightness(im).enhance(0.6)),
    "contrast +50%": lambda im, s: jpeg(ImageEnhance.Contrast(im).enhance(1.5)),
    "saturation x1.8": lambda im, s: jpeg(ImageEnhance.Color(im).enhance(1.8)),
    "warm filter": _tint,
    "grayscale": lambda im, s: jpeg(im.convert("L")),
    "flip horizontal": lambda im, s: jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "flip vertical": lambda im, s: jpeg(im.transpose(Image.Transpose.FLIP_TOP_BOTTOM)),
    "turn 90": lambda im, s: jpeg(im.transpose(Image.Transpose.ROTATE_90)),
    "turn 180": lambda im, s: jpeg(im.transpose(Image.Transpose.ROTATE_180)),
    "turn 270": lambda im, s: jpeg(im.transpose(Image.Transpose.ROTATE_270)),
    "white border 10%": lambda im, s: _border(im, (255, 255, 255), 0.10),
    "letterbox black": _letterbox,
    "screenshot light": lambda im, s: _screenshot(im, s, dark=False),
    "screenshot dark": lambda im, s: _screenshot(im, s, dark=True),
    "centre crop 90%": lambda im, s: _crop(im, 0.9, "c"),
    "centre crop 80%": lambda im, s: _crop(im, 0.8, "c"),
    "rotate 1 deg": lambda im, s: _rotate(im, 1, s),
    "rotate 2 deg": lambda im, s: _rotate(im, 2, s),
    # The harder group: target >= 95 % recall.
    "off-centre crop 70% (top-left)": lambda im, s: _crop(im, 0.7, "tl"),
    "off-centre crop 70% (bottom-right)": lambda im, s: _crop(im, 0.7, "br"),
    "rotate 3 deg": lambda im, s: _rotate(im, 3, s),
    "rotate 5 deg": lambda im, s: _rotate(im, 5, s),
    "text overlay": _text,
}
HARD = {"off-centre crop 70% (top-left)", "off-centre crop 70% (bottom-right)",
        "rotate 3 deg", "rotate 5 deg", "text overlay"}
