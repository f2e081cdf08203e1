"""Time as the router writes it: epoch milliseconds for scores, ISO-8601 UTC for people.

Every time a person reads (API answers, CLI output, history entries) is `iso`: ISO-8601 with its offset, `Z`
(UTC, offset zero). Epoch numbers stay inside Redis (sorted-set scores, a few record fields).
"""

from __future__ import annotations

import time

__all__ = ["iso", "iso_seconds", "now_ms"]


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int | None = None) -> str:
    """ISO-8601 in UTC with milliseconds, e.g. `2026-11-30T15:29:14.123Z`."""
    moment = (ms if ms is not None else now_ms()) / 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(moment)) + f".{int(moment * 1000) % 1000:03d}Z"


def iso_seconds(seconds: float | None) -> str | None:
    """`iso` of an epoch time in seconds; None (or 0: never) stays None."""
    return iso(round(seconds * 1000)) if seconds else None
