"""scripts/audit_deps.py against a stand-in speaking PyPI's JSON API (the project page, and
the release page that real PyPI serves and the registry here does not)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "audit_deps.py"
ADVISORY = {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-1"], "fixed_in": ["2.1"],
            "summary": "x", "withdrawn": None}
PAGES: dict[str, dict[str, object]] = {
    # the pin is the latest release, no advisories (release page not served, as here)
    "/pypi/clean/json": {"info": {"version": "1.0"}, "vulnerabilities": []},
    # the release page answers (real PyPI) and names an advisory
    "/pypi/vulnerable/2.0/json": {"info": {"version": "2.0"}, "vulnerabilities": [ADVISORY]},
    # the pin is the latest release, and the project page names an advisory
    "/pypi/latest-bad/json": {"info": {"version": "3.0"}, "vulnerabilities": [ADVISORY]},
    # an older pin: only the latest release's advisories are known
    "/pypi/older/json": {"info": {"version": "5.0", "requires_python": ">=3.12"},
                         "vulnerabilities": []},
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = PAGES.get(self.path)
        body = json.dumps(page).encode() if page is not None else b"Not Found"
        self.send_response(200 if page is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pypi() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/pypi"
    server.shutdown()
    server.server_close()


def run(tmp_path: Path, url: str, *pins: str,
        flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    lock = tmp_path / "requirements.lock"
    lock.write_text("# a comment\n" + "\n".join(pins) + "\n")
    return subprocess.run([sys.executable, str(SCRIPT), *flags, str(lock)], capture_output=True,
                          text=True, env={"AUDIT_PYPI_URL": url}, timeout=60)


def test_clean_pins_pass_and_an_older_pin_is_named_unaudited(tmp_path: Path, pypi: str) -> None:
    done = run(tmp_path, pypi, "clean==1.0", "older==4.0", flags=("--verbose",))
    assert done.returncode == 0, done.stdout
    assert "older 4.0 NOT audited" in done.stdout and "(5.0; it needs Python >=3.12)" in done.stdout
    assert "1 of 2 locked packages audited" in done.stdout


def test_unaudited_pins_are_one_line_unless_asked(tmp_path: Path, pypi: str) -> None:
    """`make test` must not scroll its summary away: the older pins are counted in one line,
    and named only with --verbose."""
    done = run(tmp_path, pypi, "clean==1.0", "older==4.0", "older==4.1")
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert lines == [
        "audit: 2 older pin(s) NOT audited: PyPI here serves advisories only for each "
        "project's latest release (--verbose names them)",
        "audit: 1 of 3 locked packages audited against PyPI's advisories, 0 with known "
        "vulnerabilities"]


@pytest.mark.parametrize("pin", ["vulnerable==2.0", "latest-bad==3.0"])
def test_an_advisory_fails_the_audit(tmp_path: Path, pypi: str, pin: str) -> None:
    done = run(tmp_path, pypi, "clean==1.0", pin)
    assert done.returncode == 1
    assert "PYSEC-2099-1 (fixed in: 2.1)" in done.stdout


def test_an_audit_that_could_not_run_is_not_a_pass(tmp_path: Path, pypi: str) -> None:
    assert run(tmp_path, pypi, "not-on-pypi==1.0").returncode == 2
    closed = "http://127.0.0.1:9/pypi"  # discard port: nothing listens
    done = run(tmp_path, closed, "clean==1.0")
    assert done.returncode == 2 and "NOT audited" in done.stdout


def test_the_lock_pins_exact_versions() -> None:
    lock = SCRIPT.parent.parent / "requirements.lock"
    pins = [line for line in lock.read_text().splitlines() if line and not line.startswith("#")]
    assert pins and all("==" in line for line in pins)
