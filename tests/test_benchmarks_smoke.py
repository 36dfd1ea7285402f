"""The SMS and e-mail latency benchmarks still run: each command, with a tiny N, prints its
figures. Nothing here is timed (the figures are not checked, only that they are there), so the
scripts cannot rot between the runs that fill docs/benchmarks.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURE = r"p50 +[0-9.]+ ms  p99 +[0-9.]+ ms  max +[0-9.]+ ms"

pytestmark = pytest.mark.timeout(60)


def run(script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args],
                          capture_output=True, text=True, timeout=50, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_sms_latency_runs_and_prints_its_figures() -> None:
    out = run("sms_latency.py", "--texts", "3")
    assert out.startswith("# SMS: signed webhook -> incident stored / alert queued, 3 texts")
    for name in ("watcher: stored", "watcher: alert queued", "floor: verified \\+ 200"):
        assert re.search(rf"{name}: {FIGURE}", out), out
    assert re.search(r"ratio stored/floor: p50 [0-9.]+x  p99 [0-9.]+x", out), out


def test_email_latency_runs_and_prints_its_figures() -> None:
    out = run("email_latency.py", "--mails", "3")
    assert out.startswith("# E-mail: delivered into Dovecot (IDLE) -> incident stored, 3 mails "
                          "0.3 s apart")
    for name in ("watcher: stored", "floor: EXISTS noticed", "floor: noticed \\+ fetched"):
        assert re.search(rf"{name}: {FIGURE}", out), out
    assert re.search(r"ratio stored/fetched floor: p50 [0-9.]+x  p99 [0-9.]+x", out), out
