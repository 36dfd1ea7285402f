"""Audit the locked dependencies against PyPI's vulnerability data (what pip-audit reads).

    python scripts/audit_deps.py [--verbose] [requirements.lock]

pip-audit asks PyPI for each pinned release (`/pypi/NAME/VERSION/json`). The registry these
machines reach serves only the project page (`/pypi/NAME/json`), whose `vulnerabilities`
list is PyPI's advisories (OSV: PYSEC, GHSA) for the project's *latest* release. So each pin
is checked the way that fits it:

- the release endpoint answers (real PyPI): its advisories;
- else the pin is the latest release: the project page's advisories are the pin's own;
- else it cannot be audited here: counted in one line, and named one by one with
  `--verbose` (not a failure: a new upstream release must not break the build, and nothing
  is claimed about that pin).

Exit 0: no advisory for any pin. Exit 1: advisories found (each printed with its id and the
versions that fix it). Exit 2: PyPI could not be asked (an audit that did not run is not a
pass). `AUDIT_PYPI_URL` points it elsewhere (the tests use a stand-in).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

PYPI = os.environ.get("AUDIT_PYPI_URL", "https://pypi.org/pypi").rstrip("/")
TIMEOUT = 20.0
ATTEMPTS = 3


class Unreachable(Exception):
    pass


@dataclass
class Finding:
    name: str
    version: str
    how: str  # "release", "latest" or "unaudited"
    advisories: list[dict[str, object]] = field(default_factory=list)
    latest: str | None = None
    latest_needs: str | None = None  # the latest release's requires_python


def read_lock(path: Path) -> list[tuple[str, str]]:
    pins = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise SystemExit(f"{path}: not an exact pin: {line!r}")
        pins.append((name.strip(), version.split(";")[0].strip()))
    return pins


def fetch(url: str) -> dict[str, object] | None:
    """The JSON at url; None for a 404; Unreachable when PyPI cannot be asked."""
    problem = ""
    for _ in range(ATTEMPTS):
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as reply:
                data: dict[str, object] = json.load(reply)
                return data
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            problem = f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            problem = type(exc).__name__
    raise Unreachable(f"{url}: {problem}")


def advisories(page: dict[str, object]) -> list[dict[str, object]]:
    found = page.get("vulnerabilities")
    if not isinstance(found, list):
        raise Unreachable("the answer has no vulnerabilities list: not PyPI's JSON API")
    return [a for a in found if isinstance(a, dict) and not a.get("withdrawn")]


def audit(name: str, version: str) -> Finding:
    release = fetch(f"{PYPI}/{name}/{version}/json")
    if release is not None:
        return Finding(name, version, "release", advisories(release))
    project = fetch(f"{PYPI}/{name}/json")
    if project is None:
        raise Unreachable(f"{name} is not on {PYPI}")
    info = project.get("info")
    info = info if isinstance(info, dict) else {}
    latest = str(info.get("version"))
    if latest == version:
        return Finding(name, version, "latest", advisories(project), latest)
    needs = info.get("requires_python")
    return Finding(name, version, "unaudited", latest=latest,
                   latest_needs=str(needs) if needs else None)


def main(argv: list[str]) -> int:
    verbose = "--verbose" in argv[1:] or "-v" in argv[1:]
    rest = [a for a in argv[1:] if a not in ("--verbose", "-v")]
    lock = Path(rest[0] if rest else "requirements.lock")
    pins = read_lock(lock)
    try:
        with ThreadPoolExecutor(8) as pool:
            findings = list(pool.map(lambda pin: audit(*pin), pins))
    except Unreachable as exc:
        print(f"audit: could not ask PyPI ({exc}); the dependencies were NOT audited")
        return 2
    vulnerable = [f for f in findings if f.advisories]
    unaudited = [f for f in findings if f.how == "unaudited"]
    for f in vulnerable:
        for a in f.advisories:
            fixed = ", ".join(map(str, a.get("fixed_in") or [])) or "no fixed release"
            print(f"audit: {f.name} {f.version}: {a.get('id')} (fixed in: {fixed})")
    if unaudited and verbose:
        for f in unaudited:
            why = (f"; it needs Python {f.latest_needs}" if f.latest_needs else "")
            print(f"audit: {f.name} {f.version} NOT audited: PyPI here serves advisories only "
                  f"for the latest release ({f.latest}{why})")
    elif unaudited:
        # One line, not one per pin: the names are for whoever asks (--verbose).
        print(f"audit: {len(unaudited)} older pin(s) NOT audited: PyPI here serves advisories "
              "only for each project's latest release (--verbose names them)")
    audited = len(findings) - len(unaudited)
    print(f"audit: {audited} of {len(findings)} locked packages audited against PyPI's "
          f"advisories, {len(vulnerable)} with known vulnerabilities")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
