"""Listing leads, newest first, by the created index (`{P}:created`: every kept lead by when it was accepted).

A page walks the index downwards from its cursor, reads the candidates' filter fields in one pipelined call per
batch, and keeps those that match. A page reads at most `SCAN_BUDGET` candidates: a filter that matches rarely
can return fewer leads than asked, with a cursor to go on from (an empty page with a cursor is not the end).
The cursor is opaque to clients: where the walk stopped (score and lead id), base64 of a small JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from workers.store.keys import Keys

__all__ = ["BadCursorError", "LeadFilter", "LeadList", "LeadPage", "decode_cursor", "encode_cursor"]

#: Index entries one page may read at most, whatever it finds.
SCAN_BUDGET = 5000
#: The record fields a page returns for each lead (no customer data: no number, name or fields).
SUMMARY_FIELDS = ("status", "wait_reason", "source", "agent", "pool", "rule", "strategy", "attempts",
                  "created_at", "updated_at", "assigned_at", "posted_at", "last_outcome", "dead_reason")


class BadCursorError(ValueError):
    """A cursor this router did not hand out."""


@dataclass(frozen=True, slots=True)
class LeadFilter:
    """What a listed lead must be: any of `statuses` (none: any), this agent, this pool, accepted at or after
    `since_ms`."""

    statuses: frozenset[str] = frozenset()
    agent: str | None = None
    pool: str | None = None
    since_ms: int | None = None

    def matches(self, record: dict[str, str]) -> bool:
        if self.statuses and record.get("status") not in self.statuses:
            return False
        if self.agent is not None and record.get("agent") != self.agent:
            return False
        return self.pool is None or record.get("pool") == self.pool


@dataclass(frozen=True, slots=True)
class LeadPage:
    """Leads (id and summary fields), newest first, and the cursor of the next page (None: no more)."""

    leads: Sequence[dict[str, str]]
    next_cursor: str | None


def encode_cursor(score: int, lead_id: str) -> str:
    raw = json.dumps([score, lead_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, lead_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise BadCursorError("cursor: not a cursor this API handed out") from None
    if not isinstance(score, int) or not isinstance(lead_id, str) or isinstance(score, bool):
        raise BadCursorError("cursor: not a cursor this API handed out")
    return score, lead_id


class LeadList:
    """Pages of leads by the created index, filtered."""

    def __init__(self, client: redis.Redis, *, keys: Keys) -> None:
        self._redis = client
        self._keys = keys

    def page(self, lead_filter: LeadFilter, *, limit: int, cursor: str | None = None) -> LeadPage:
        """Up to `limit` leads matching `lead_filter`, newest first, after `cursor`."""
        after = decode_cursor(cursor) if cursor else None
        low: int | str = lead_filter.since_ms if lead_filter.since_ms is not None else "-inf"
        high: int | str = after[0] if after else "+inf"
        skip, read = 0, 0
        found: list[dict[str, str]] = []
        seen: set[str] = set()  # a lead accepted meanwhile shifts the walk by one: nothing is listed twice
        last: tuple[int, str] | None = None
        while read < SCAN_BUDGET:
            batch = min(max(limit * 2, 100), SCAN_BUDGET - read)
            entries: list[tuple[str, float]] = self._redis.zrevrangebyscore(  # type: ignore[assignment]
                self._keys.created, high, low, start=skip, num=batch, withscores=True)
            if not entries:
                return LeadPage(found, None)
            skip += len(entries)
            read += len(entries)
            if after is not None:  # the cursor's own score: only the ids after it (same score: reverse id order)
                entries = [(lead_id, score) for lead_id, score in entries
                           if int(score) < after[0] or lead_id < after[1]]
            records = self._read([lead_id for lead_id, _ in entries])
            for (lead_id, score), record in zip(entries, records, strict=True):
                last = (int(score), lead_id)
                if record is not None and lead_id not in seen and lead_filter.matches(record):
                    seen.add(lead_id)
                    found.append({"id": lead_id, **record})
                    if len(found) == limit:
                        return LeadPage(found, encode_cursor(*last))
        return LeadPage(found, encode_cursor(*last) if last else cursor)

    def _read(self, lead_ids: list[str]) -> list[dict[str, str] | None]:
        pipe = self._redis.pipeline(transaction=False)
        for lead_id in lead_ids:
            pipe.hmget(self._keys.lead(lead_id), SUMMARY_FIELDS)
        rows = pipe.execute()
        return [None if row[0] is None else {name: value for name, value in zip(SUMMARY_FIELDS, row, strict=True)
                                             if value is not None} for row in rows]
