"""Retention: finished leads keep their full record for a while, then a small tombstone, then nothing.

A lead is finished once it is posted (or connected, completed) or dead. `ROUTER_RETENTION_SECONDS` after it was
accepted, a finished lead's record and history are appended to the export (a JSON Lines file and/or a Redis
stream, when configured) and then shrunk, in one atomic step, to a tombstone: id, status, source, fingerprint,
agent, pool and times. The tombstone still answers idempotency — a CRM retrying a webhook weeks later gets 200
and the lead's status, never a second campaign — until `ROUTER_TOMBSTONE_SECONDS` after the shrink, when it goes.
Open leads (still waiting or retrying) are never shrunk; they are looked at again a retention period later.

Sweeps run from every worker's pump; a lock in Redis lets one process sweep at a time, at most once per
`every_seconds`, so memory levels off however many workers run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from workers.clock import iso
from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys
from workers.store.lead_record import FINAL, LeadRecord

__all__ = ["TOMBSTONE_FIELDS", "Retention", "RetentionPolicy", "SweepResult", "outcome_row"]

log = structlog.get_logger(__name__)

#: What a tombstone keeps of a record.
TOMBSTONE_FIELDS = ("id", "status", "source", "fingerprint", "agent", "pool", "created_at", "created_ms", "posted_at",
                    "completed_at", "dead_at", "disposition")

@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    keep_full_seconds: float = 30 * 86_400
    keep_tombstone_seconds: float = 180 * 86_400
    every_seconds: float = 60.0
    batch: int = 500
    export_file: str | None = None
    export_stream: bool = False
    export_stream_maxlen: int = 1_000_000


@dataclass(frozen=True, slots=True)
class SweepResult:
    shrunk: int = 0
    dropped: int = 0
    still_open: int = 0
    ran: bool = True


def outcome_row(record: LeadRecord) -> dict[str, Any]:
    """A finished lead's outcome, as exported (one JSON line, or one CSV row)."""
    return {
        "id": record.id, "status": str(record.status), "source": record.source, "number": record.number,
        "name": str(record.readable_payload.get("name") or ""), "agent": record.agent, "pool": record.pool,
        "rule": record.rule, "strategy": record.strategy, "attempts": record.attempts,
        "possible_duplicate": record.possible_duplicate, "created_at": record.created_at,
        "posted_at": record.posted_at, "connected_at": record.connected_at, "completed_at": record.completed_at,
        "disposition": record.disposition, "talktime": record.talktime, "call_id": record.call_id,
        "recording_url": record.recording_url, "dead_at": record.dead_at, "dead_reason": record.dead_reason,
        "fields": record.fields, "tombstone": record.extra.get("tombstone") == "1",
    }


class Retention:
    """Shrinks finished leads past the retention period and drops old tombstones; see the module's docstring."""

    def __init__(
        self, client: RedisClient, *, keys: Keys, policy: RetentionPolicy, clock: Callable[[], float] = time.time
    ) -> None:
        self._redis = client
        self._keys = keys
        self._policy = policy
        self._clock = clock
        self._shrink = load_script(client, "retention_shrink")
        self._drop = load_script(client, "retention_drop")

    @property
    def policy(self) -> RetentionPolicy:
        return self._policy

    def index_existing(self, *, count: int = 1000) -> int:
        """Index leads recorded before retention existed (once per Redis; a marker remembers it was done)."""
        marker = self._keys.created_indexed
        if self._redis.exists(marker):
            return 0
        indexed = 0
        prefix = self._keys.lead("")
        for key in self._redis.scan_iter(match=self._keys.match("lead:*"), count=count):
            created = self._redis.hget(key, "created_ms")
            if created is not None and self._redis.hget(key, "tombstone") != "1":
                added = self._redis.zadd(self._keys.created, {key.removeprefix(prefix): int(created)}, nx=True)
                indexed += 1 if added else 0
        self._redis.set(marker, iso())
        if indexed:
            log.info("retention_indexed_existing_leads", count=indexed)
        return indexed

    def sweep(self, *, force: bool = False) -> SweepResult:
        """One sweep (one batch of each kind), unless another process swept within `every_seconds`."""
        now_ms = int(self._clock() * 1000)
        if not force and not self._redis.set(
            self._keys.retention_lock, "1", nx=True, px=max(1, int(self._policy.every_seconds * 1000))
        ):
            return SweepResult(ran=False)
        shrunk, still_open = self._shrink_finished(now_ms)
        dropped = self._drop_tombstones(now_ms)
        if shrunk or dropped:
            log.info("retention_sweep", shrunk=shrunk, dropped=dropped, still_open=still_open)
        return SweepResult(shrunk=shrunk, dropped=dropped, still_open=still_open)

    def _shrink_finished(self, now_ms: int) -> tuple[int, int]:
        cutoff = now_ms - int(self._policy.keep_full_seconds * 1000)
        ids: list[str] = self._redis.zrangebyscore(  # type: ignore[assignment]
            self._keys.created, "-inf", cutoff, start=0, num=self._policy.batch
        )
        if not ids:
            return 0, 0
        pipe = self._redis.pipeline(transaction=False)
        for lead_id in ids:
            pipe.hgetall(self._keys.lead(lead_id))
            pipe.lrange(self._keys.lead_events(lead_id), 0, -1)
        raw = pipe.execute()
        finished: list[tuple[LeadRecord, list[str]]] = []
        reopen: dict[str, int] = {}
        gone: list[str] = []
        for lead_id, stored, history in zip(ids, raw[0::2], raw[1::2], strict=True):
            if not stored:
                gone.append(lead_id)  # purged: nothing to keep
            elif LeadRecord.from_hash(stored).status in FINAL:
                finished.append((LeadRecord.from_hash(stored), history))
            else:
                reopen[lead_id] = now_ms  # still on its way: look again a retention period from now
        if gone:
            self._redis.zrem(self._keys.created, *gone)
        if reopen:
            self._redis.zadd(self._keys.created, reopen)
        if finished:
            self._export(finished)
        shrunk = 0
        for record, _ in finished:
            shrunk += int(self._shrink(keys=self._shrink_keys(record.id), args=self._tombstone_args(record, now_ms)))
        return shrunk, len(reopen)

    def leads_since(self, since_ms: int, *, batch: int = 1000) -> Iterator[LeadRecord]:
        """Leads accepted since `since_ms` (full records, then tombstones), for `lead-router export`."""
        offset = 0
        while True:
            ids: list[str] = self._redis.zrangebyscore(  # type: ignore[assignment]
                self._keys.created, since_ms, "+inf", start=offset, num=batch
            )
            yield from self._records(ids)
            if len(ids) < batch:
                break
            offset += batch
        tombstones: list[str] = self._redis.zrange(self._keys.tombstones, 0, -1)  # type: ignore[assignment]
        for index in range(0, len(tombstones), batch):
            for record in self._records(tombstones[index:index + batch]):
                if record.created_ms >= since_ms:
                    yield record

    def _records(self, ids: list[str]) -> list[LeadRecord]:
        pipe = self._redis.pipeline(transaction=False)
        for lead_id in ids:
            pipe.hgetall(self._keys.lead(lead_id))
        return [LeadRecord.from_hash(raw) for raw in pipe.execute() if raw]

    def _shrink_keys(self, lead_id: str) -> list[str]:
        return [self._keys.lead(lead_id), self._keys.lead_events(lead_id), self._keys.created,
                self._keys.tombstones, self._keys.dead, self._keys.pending, self._keys.parked]

    @staticmethod
    def _tombstone_args(record: LeadRecord, now_ms: int) -> list[str]:
        args = [record.id, str(now_ms), ",".join(sorted(FINAL))]
        for name in TOMBSTONE_FIELDS:
            args += [name, str(getattr(record, name))]
        return args

    def _drop_tombstones(self, now_ms: int) -> int:
        cutoff = now_ms - int(self._policy.keep_tombstone_seconds * 1000)
        ids: list[str] = self._redis.zrangebyscore(  # type: ignore[assignment]
            self._keys.tombstones, "-inf", cutoff, start=0, num=self._policy.batch
        )
        for lead_id in ids:
            self._drop(keys=[self._keys.lead(lead_id), self._keys.tombstones], args=[lead_id])
        return len(ids)

    def _export(self, finished: list[tuple[LeadRecord, list[str]]]) -> None:
        """Append the outcomes (with the history) before the records shrink: nothing is lost silently."""
        if not self._policy.export_file and not self._policy.export_stream:
            return
        lines = []
        for record, history in finished:
            row = outcome_row(record) | {"exported_at": iso(), "history": [_loads(item) for item in history]}
            lines.append(json.dumps(row, sort_keys=True, default=str))
        if self._policy.export_file:
            path = Path(self._policy.export_file)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as out:
                out.write("".join(line + "\n" for line in lines))
        if self._policy.export_stream:
            pipe = self._redis.pipeline(transaction=False)
            for line in lines:
                pipe.xadd(self._keys.export_stream, {"lead": line}, maxlen=self._policy.export_stream_maxlen,
                          approximate=True)
            pipe.execute()


def _loads(item: str) -> Any:
    try:
        return json.loads(item)
    except ValueError:
        return {"event": "unreadable", "raw": item[:500]}
