"""BENCHMARKS.md: one section per benchmark, each replaced in place when its benchmark runs again, under a
header that names the machine the figures were measured on."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["BENCHMARKS", "machine", "write_section"]

BENCHMARKS = Path(__file__).resolve().parents[2] / "BENCHMARKS.md"
_TITLE = "# Benchmarks\n"
_INTRO = (
    "Figures from `make bench`, each beside a peer measured in the same run on the same machine: absolute numbers "
    "on a shared machine are noise, ratios are the point. Every section says when it was measured.\n"
)


def machine() -> str:
    """CPU model, cores, memory, OS, Python and Redis server version, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    redis_version = ""
    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True, timeout=5).stdout
        redis_version = ", " + out.split(" sha=")[0].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return (f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
            f"Python {sys.version.split()[0]}{redis_version}")


def write_section(key: str, title: str, body: str) -> None:
    """Put (or replace) the section `key` in BENCHMARKS.md, stamped with the date and the machine."""
    stamp = f"_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}._"
    section = f"<!-- bench:{key} -->\n## {title}\n\n{stamp}\n\n{body.strip()}\n<!-- /bench:{key} -->\n"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else _TITLE + "\n" + _INTRO
    pattern = re.compile(rf"<!-- bench:{re.escape(key)} -->.*?<!-- /bench:{re.escape(key)} -->\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    BENCHMARKS.write_text(text)
