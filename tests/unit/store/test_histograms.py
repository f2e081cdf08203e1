"""Histogram tokens and their reading back (the Redis side is in tests/integration/api/test_metrics.py)."""

from __future__ import annotations

import pytest

from workers.store.counters import plain
from workers.store.histograms import RYNG_REQUEST, WEBHOOK_TO_POSTED, Histogram, observe_send, read


def add(fields: dict[str, int], tokens: tuple[str, ...]) -> None:
    """What delivery_settle.lua does with the tokens: `name` adds one, `name=amount` adds amount."""
    for token in tokens:
        name, _, amount = token.partition("=")
        fields[name] = fields.get(name, 0) + (int(amount) if amount else 1)


def test_observations_read_back_as_cumulative_buckets_count_and_sum() -> None:
    histogram = Histogram("t", (0.1, 1.0))
    fields: dict[str, int] = {"posted": 3}
    for seconds in (0.05, 0.1, 0.5, 7.0):
        add(fields, histogram.observe(seconds, label="accepted"))
    add(fields, histogram.observe(0.2, label="retryable"))
    series = read(fields, histogram)
    assert set(series) == {"accepted", "retryable"}
    assert series["accepted"].cumulative(histogram.buckets) == [("0.1", 2.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert series["accepted"].sum_seconds == pytest.approx(7.65)
    assert series["retryable"].cumulative(histogram.buckets) == [("0.1", 0.0), ("1.0", 1.0), ("+Inf", 1.0)]
    assert plain(fields) == {"posted": 3}


def test_a_bucket_the_histogram_no_longer_has_counts_in_the_next_one_up() -> None:
    old, new = Histogram("t", (0.1, 0.5, 1.0)), Histogram("t", (0.1, 1.0))
    fields: dict[str, int] = {}
    add(fields, old.observe(0.3))
    add(fields, old.observe(30))
    assert read(fields, new)[""].cumulative(new.buckets) == [("0.1", 0.0), ("1.0", 1.0), ("+Inf", 2.0)]


def test_a_send_observes_its_request_and_once_accepted_the_time_to_posted() -> None:
    fields: dict[str, int] = {}
    add(fields, observe_send("accepted", 120, created_ms=1_000, now_ms=4_000))
    add(fields, observe_send("retryable", 2_000, created_ms=1_000, now_ms=9_000))
    ryng = read(fields, RYNG_REQUEST)
    assert ryng["accepted"].per_bucket == {0.25: 1} and ryng["retryable"].per_bucket == {2.5: 1}
    posted = read(fields, WEBHOOK_TO_POSTED)
    assert set(posted) == {""} and posted[""].per_bucket == {5.0: 1}
    assert posted[""].sum_seconds == pytest.approx(3.0)


def test_a_label_that_would_break_the_token_format_is_refused() -> None:
    for label in ("a|b", "a,b", "a=b"):
        with pytest.raises(ValueError, match="label"):
            RYNG_REQUEST.observe(1.0, label=label)
