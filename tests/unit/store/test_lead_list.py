"""The lead list's cursor and filter (the paging itself runs over HTTP in tests/integration/api/test_lead_list.py)."""

from __future__ import annotations

import base64

import pytest

from workers.store.lead_list import BadCursorError, LeadFilter, decode_cursor, encode_cursor


def test_a_cursor_round_trips_any_lead_id() -> None:
    for lead_id in ("XT243", "src:42", "a/b c", "ünï", "{lr}:lead:x"):
        cursor = encode_cursor(1_764_000_000_123, lead_id)
        assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # safe in a query string
        assert decode_cursor(cursor) == (1_764_000_000_123, lead_id)


@pytest.mark.parametrize("cursor", [
    "", "not a cursor", "%%%", base64.urlsafe_b64encode(b"[1,2]").decode(), base64.urlsafe_b64encode(b"{}").decode(),
    base64.urlsafe_b64encode(b'[true,"x"]').decode(), base64.urlsafe_b64encode(b'[1.5,"x"]').decode(),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_anything_else_is_a_bad_cursor(cursor: str) -> None:
    with pytest.raises(BadCursorError, match="cursor"):
        decode_cursor(cursor)


def test_the_filter_needs_every_given_criterion() -> None:
    record = {"status": "posted", "agent": "alice", "pool": "default"}
    assert LeadFilter().matches(record)
    assert LeadFilter(statuses=frozenset({"posted", "completed"}), agent="alice", pool="default").matches(record)
    assert not LeadFilter(statuses=frozenset({"dead"})).matches(record)
    assert not LeadFilter(agent="bob").matches(record)
    assert not LeadFilter(pool="life").matches(record)
    assert not LeadFilter(agent="alice").matches({"status": "queued"})  # not picked yet: no agent
