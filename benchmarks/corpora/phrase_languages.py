"""Ordinary text in many languages for the phrase benchmark, from Debian packages.

Sources (Debian 12 "bookworm"; downloaded with `apt-get download`, never installed):
  fortunes-de, fortunes-es, fortunes-pl, fortunes-ru, fortunes-zh   fortune cookies
  manpages-fr, manpages-el, manpages-tr, manpages-vi, manpages-ja,
  manpages-pl, manpages-ru                                          translated manual pages
  firefox-esr-l10n-{ar,hi-in,el,tr,vi,zh-cn,zh-tw,ja,th,fr,es-es}   the browser's interface
                                                                    text, translated (MPL 2.0)
On a fresh machine run `apt-get update` once first. `fetch()` puts the .deb files under
.cache/phrase-corpus/languages/ and unpacks them there. Run this file to print the counts.
"""

from __future__ import annotations

import gzip
import re
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "phrase-corpus" / "languages"
UNPACKED = CACHE / "unpacked"
_DONE = CACHE / ".fetched"

# language -> (fortune file globs, manual page language folders, firefox locales)
SOURCES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "es": (("usr/share/games/fortunes/es/*.u8",), (), ("es-ES",)),
    "fr": ((), ("fr",), ("fr",)),
    "de": (("usr/share/games/fortunes/de/*",), (), ()),
    "pl": (("usr/share/games/fortunes/pl/*.u8",), ("pl",), ()),
    "tr": ((), ("tr",), ("tr",)),
    "vi": ((), ("vi",), ("vi",)),
    "ru": (("usr/share/games/fortunes/ru/*.u8",), ("ru",), ()),
    "el": ((), ("el",), ("el",)),
    "ar": ((), (), ("ar",)),
    "hi": ((), (), ("hi-IN",)),
    "zh": (("usr/share/games/fortunes/*.u8",), (), ("zh-CN", "zh-TW")),
    "ja": ((), ("ja",), ("ja",)),
    "th": ((), (), ("th",)),
}
DEB_PACKAGES = (
    "fortunes-de", "fortunes-es", "fortunes-pl", "fortunes-ru", "fortunes-zh",
    "manpages-fr", "manpages-el", "manpages-tr", "manpages-vi", "manpages-ja", "manpages-pl",
    "manpages-ru",
    *(f"firefox-esr-l10n-{loc.lower()}" for loc in
      ("ar", "hi-IN", "el", "tr", "vi", "zh-CN", "zh-TW", "ja", "th", "fr", "es-ES")),
)
UNSPACED = frozenset(("zh", "ja", "th"))
LATIN = frozenset(("es", "fr", "de", "pl", "tr", "vi"))


def fetch() -> Path:
    if _DONE.exists():
        return UNPACKED
    debs = CACHE / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for name in DEB_PACKAGES:
        if not any(debs.glob(f"{name}_*.deb")):
            subprocess.run(["apt-get", "download", "-qq", name], cwd=debs, check=True)
    for deb in sorted(debs.glob("*.deb")):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(UNPACKED)], check=True)
    _DONE.write_text("ok\n")
    return UNPACKED


_END = re.compile(r"(?<=[.!?。！？])\s*")
_SPACES = re.compile(r"\s+")


def _sentences(block: str, unspaced: bool) -> Iterator[str]:
    for sentence in _END.split(_SPACES.sub(" ", block).strip()):
        sentence = sentence.strip()
        if unspaced:
            if 6 <= len(sentence) <= 160:
                yield sentence
        elif 3 <= len(sentence.split()) <= 40 and 12 <= len(sentence) <= 240:
            yield sentence


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _fortunes(pattern: str) -> Iterator[str]:
    for path in sorted(UNPACKED.glob(pattern)):
        if path.is_file() and path.suffix != ".dat":
            text = _ANSI.sub("", path.read_text(encoding="utf-8", errors="replace"))
            for entry in re.split(r"^%\s*$", text, flags=re.M):
                yield " ".join(ln for ln in entry.splitlines()
                               if not ln.strip().startswith("--"))


_ROFF_ESCAPE = re.compile(r"\\(f[BIRPC]|f\(..|f\[[^]]*\]|\(..|\[[^]]*\]|[-&e|^0 ]|s[-+]?\d|\*.)")


def _manpages(language: str) -> Iterator[str]:
    for path in sorted((UNPACKED / "usr/share/man" / language).rglob("*.gz")):
        try:
            text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        except (OSError, EOFError):
            continue
        lines = []
        for line in text.splitlines():
            if line.startswith((".", "'")):
                lines.append("\n")  # a macro ends a paragraph
                continue
            lines.append(_ROFF_ESCAPE.sub("", line))
        yield from " ".join(lines).split("\n")


_FTL = re.compile(r"^[\w.-]+\s*=\s*(.+)$")
_PLACEHOLDER = re.compile(r"\{[^}]*\}|<[^>]*>|%\d*\$?[sdS]|&[a-z]+;")


def _firefox(locale: str) -> Iterator[str]:
    pattern = f"usr/lib/firefox-esr/browser/extensions/langpack-{locale}@*.xpi"
    for xpi in UNPACKED.glob(pattern):
        with zipfile.ZipFile(xpi) as archive:
            for member in archive.namelist():
                if not member.endswith((".ftl", ".properties")):
                    continue
                for line in archive.read(member).decode("utf-8", errors="replace").splitlines():
                    if line.startswith("#"):
                        continue
                    match = _FTL.match(line) or re.match(r"^[\w.-]+\s*=\s*(.+)$", line)
                    if match:
                        yield _PLACEHOLDER.sub(" ", match.group(1))


def sentences(language: str) -> list[str]:
    """Ordinary sentences in one language, deduplicated, in a stable order."""
    fetch()
    fortunes, manuals, locales = SOURCES[language]
    unspaced = language in UNSPACED
    blocks: list[str] = []
    for pattern in fortunes:
        blocks += _fortunes(pattern)
    for manual in manuals:
        blocks += _manpages(manual)
    for locale in locales:
        blocks += _firefox(locale)
    seen: set[str] = set()
    out = []
    for block in blocks:
        for sentence in _sentences(block, unspaced):
            if sentence.casefold() not in seen and (language in LATIN or not sentence.isascii()):
                seen.add(sentence.casefold())
                out.append(sentence)
    return out


if __name__ == "__main__":
    for lang in SOURCES:
        print(lang, len(sentences(lang)))
