"""Shared by the benchmarks: what machine and command produced the figures."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime


def header(title: str) -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"# {title}\n# when: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
            f"# machine: {platform.machine()}, {os.cpu_count()} cores, {cpu}, "
            f"Python {platform.python_version()}\n"
            f"# command: {' '.join([sys.executable, *sys.argv])}")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
