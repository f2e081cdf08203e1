"""Histograms kept in the router's counters hash, so an observation costs no Redis round trip of its own.

Workers are separate processes from the API that serves `/metrics`, so what a worker measures lives in Redis.
An observation is two counter tokens (`workers/store/counters.py` names the format): one to the bucket the value
falls in, one adding the value (in µs) to the sum. They ride on the Lua call that already settles the lead
(`delivery_settle.lua` adds `field=amount` tokens). Each bucket field counts the observations in that bucket only;
`read` turns the fields back into Prometheus' cumulative buckets, count and sum.

Fields: `h|<histogram>|<label value>|<upper bound>` and `h|<histogram>|<label value>|sum_us`, in the
`{prefix}:metrics` hash. Label values are bounded (Ryng's outcomes, or none), never a lead id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "PREFIX", "RYNG_REQUEST", "WEBHOOK_TO_POSTED", "Histogram", "HistogramCounts", "observe_posted", "observe_send",
    "read",
]

#: Every histogram field starts with this; plain counters never do.
PREFIX = "h|"
_SUM = "sum_us"


def _bound(upper: float) -> str:
    return "+Inf" if math.isinf(upper) else repr(float(upper))


@dataclass(frozen=True, slots=True)
class Histogram:
    """One histogram: its name in the counters hash and its finite bucket upper bounds (seconds, ascending)."""

    name: str
    buckets: tuple[float, ...]

    def observe(self, seconds: float, *, label: str = "") -> tuple[str, str]:
        """The two counter tokens of one observation: its bucket (+1) and the sum (+µs)."""
        if "|" in label or "," in label or "=" in label:
            raise ValueError(f"a histogram label may not contain '|', ',' or '=': {label!r}")
        value = max(0.0, seconds)
        upper = next((bound for bound in self.buckets if value <= bound), math.inf)
        head = f"{PREFIX}{self.name}|{label}|"
        return f"{head}{_bound(upper)}", f"{head}{_SUM}={round(value * 1_000_000)}"


#: One request to Ryng's create-campaign endpoint, by the client's outcome.
RYNG_REQUEST = Histogram("ryng_request_seconds", (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
#: From a lead's acceptance (its webhook or import) to Ryng taking its campaign.
WEBHOOK_TO_POSTED = Histogram(
    "webhook_to_posted_seconds", (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0)
)


def observe_send(outcome: str, elapsed_ms: float, *, created_ms: int, now_ms: int) -> tuple[str, ...]:
    """The tokens of one request to Ryng: its duration by outcome, and the lead's time to posted once accepted."""
    return RYNG_REQUEST.observe(elapsed_ms / 1000, label=outcome) + observe_posted(
        outcome, created_ms=created_ms, now_ms=now_ms)


def observe_posted(outcome: str, *, created_ms: int, now_ms: int) -> tuple[str, ...]:
    """The tokens of a lead's time to posted, when Ryng accepted it (a lead of a batch: its request is counted
    once, with the batch's leader)."""
    if outcome != "accepted" or created_ms <= 0:
        return ()
    return WEBHOOK_TO_POSTED.observe((now_ms - created_ms) / 1000)


@dataclass(slots=True)
class HistogramCounts:
    """One labelled series: observations per bucket (not cumulative) by upper bound, and the sum in seconds."""

    per_bucket: dict[float, int] = field(default_factory=dict)
    sum_seconds: float = 0.0

    def cumulative(self, bounds: tuple[float, ...]) -> list[tuple[str, float]]:
        """Prometheus' buckets: (upper bound, observations at or below it), ending with +Inf (the count)."""
        total, out = 0, []
        for upper in (*bounds, math.inf):
            total += self.per_bucket.get(upper, 0)
            out.append((_bound(upper), float(total)))
        return out


def read(fields: Mapping[str, int], histogram: Histogram) -> dict[str, HistogramCounts]:
    """The series of `histogram` in a snapshot of the counters hash, by label value."""
    head = f"{PREFIX}{histogram.name}|"
    series: dict[str, HistogramCounts] = {}
    for name, value in fields.items():
        if not name.startswith(head):
            continue
        label, _, slot = name.removeprefix(head).rpartition("|")
        counts = series.setdefault(label, HistogramCounts())
        if slot == _SUM:
            counts.sum_seconds += value / 1_000_000
            continue
        try:
            upper = float(slot)
        except ValueError:
            continue
        # A bound no longer in the histogram (its buckets changed) counts in the next one up: nothing is lost.
        upper = next((bound for bound in histogram.buckets if upper <= bound), math.inf)
        counts.per_bucket[upper] = counts.per_bucket.get(upper, 0) + value
    return series
