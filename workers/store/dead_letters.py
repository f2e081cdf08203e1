"""The dead-letter store: list, show, replay and purge leads that delivery gave up on.

A lead is dead when `Deliverer` buried it (Ryng rejected it, retries ran out, or it crashed
`ROUTER_MAX_DELIVERIES` times): its record says `status=dead` with `dead_reason`/`dead_at`, and its id is in
the `dead` sorted set (scored by time of death). This module is the operator's side of that store, shared by
the admin API (`router/api/routes/admin.py`) and the CLI (`router/cli/dead.py`).

Replay keeps the lead's record and history (a `replayed` event is appended) and puts it back where a new lead
starts: status `queued`, attempts and crashes at 0, no agent, a fresh lease in `pending`. It then goes through
the same rules, assigner and limiter as any other lead. The status check, the reset and the move from `dead`
to `pending` are one Lua call, so two operators replaying at once replay a lead once. If the enqueue fails the
lead is still pending, and the pump re-queues it when its lease runs out.

A lead whose event carried only its CRM id and that died before its record was read (it has no number) goes
back to waiting for its record instead: status `fetching`, into `fetches:due`, read again by the next pump round.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from pydantic import BaseModel, Field

from workers.clock import iso, now_ms
from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys
from workers.store.lead_record import LeadRecord
from workers.store.records import MAX_EVENTS, Status

__all__ = ["BatchResult", "DeadLetter", "DeadLetterDetail", "DeadLetterPage", "DeadLetters"]

log = structlog.get_logger(__name__)

#: Fields cleared on replay, so the lead is picked, paced and posted afresh.
_RESET_FIELDS = (
    "agent", "agent_id", "pool", "rule", "strategy", "reason", "agent_mapping", "assigned_at",
    "dead_reason", "dead_at", "wait_reason", "retry_in_seconds", "last_error", "waiting_since_ms",
)
#: A lead whose last send may have reached Ryng: a replay may duplicate it, so it is flagged.
_UNCERTAIN_OUTCOMES = ("sending", "ambiguous")

class DeadLetter(BaseModel):
    """One dead lead as listed: why and when it died, and how far delivery got."""

    id: str
    reason: str | None = None
    dead_at: str | None = None
    #: When it died (epoch ms: the dead set's score), for ordering; answers show `dead_at`.
    dead_ms: int = Field(default=0, exclude=True)
    attempts: int = 0
    crashes: int = 0
    agent: str | None = None
    last_status_code: str | None = None
    last_message: str | None = None
    possible_duplicate: bool = False


class DeadLetterPage(BaseModel):
    total: int
    offset: int
    items: list[DeadLetter]


class DeadLetterDetail(DeadLetter):
    """A dead lead with its whole stored record (raw fields, payload as stored) and history."""

    record: dict[str, str] = Field(default_factory=dict)
    history: list[dict[str, Any]] = Field(default_factory=list)


class BatchResult(BaseModel):
    """What a replay or purge did: the ids it acted on, and why the others were skipped."""

    done: list[str] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict, description="id -> why (unknown, or its status)")
    enqueue_failed: list[str] = Field(
        default_factory=list, description="replayed, but not queued now: the pump queues them after the lease"
    )


class DeadLetters:
    """Operator actions on dead leads; `enqueue` publishes a delivery task, `release` frees a reservation."""

    def __init__(
        self,
        client: RedisClient,
        *,
        keys: Keys,
        lease_seconds: float,
        enqueue: Callable[[str], None],
        release: Callable[[str], object] | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._lease_ms = int(lease_seconds * 1000)
        self._enqueue = enqueue
        self._release = release
        self._replay = load_script(client, "dead_replay")
        self._purge = load_script(client, "dead_purge")

    # --- reading ------------------------------------------------------------------------------------
    def count(self) -> int:
        return int(self._redis.zcard(self._keys.dead))

    def listing(self, *, offset: int = 0, limit: int = 100) -> DeadLetterPage:
        """Dead leads, oldest death first."""
        entries: list[tuple[str, float]] = self._redis.zrange(  # type: ignore[assignment]
            self._keys.dead, offset, offset + max(0, limit) - 1, withscores=True
        ) if limit > 0 else []
        pipe = self._redis.pipeline(transaction=False)
        for lead_id, _ in entries:
            pipe.hgetall(self._keys.lead(lead_id))
        records: list[dict[str, str]] = pipe.execute() if entries else []
        items = [
            _summary(lead_id, LeadRecord.from_hash(record), dead_ms=int(score))
            for (lead_id, score), record in zip(entries, records, strict=True)
        ]
        return DeadLetterPage(total=self.count(), offset=offset, items=items)

    def show(self, lead_id: str) -> DeadLetterDetail | None:
        """The dead lead's record and history; None when the id is not among the dead letters."""
        score = self._redis.zscore(self._keys.dead, lead_id)
        record: dict[str, str] = self._redis.hgetall(self._keys.lead(lead_id))  # type: ignore[assignment]
        if score is None or not record:
            return None
        raw: list[str] = self._redis.lrange(self._keys.lead_events(lead_id), 0, -1)  # type: ignore[assignment]
        summary = _summary(lead_id, LeadRecord.from_hash(record), dead_ms=int(float(score)))
        return DeadLetterDetail(**summary.model_dump(), record=record, history=[_event(item) for item in raw])

    def ids(self) -> list[str]:
        ids: list[str] = self._redis.zrange(self._keys.dead, 0, -1)  # type: ignore[assignment]
        return ids

    # --- acting -------------------------------------------------------------------------------------
    def replay(self, lead_ids: Iterable[str], *, by: str = "operator") -> BatchResult:
        """Send dead leads through delivery again; live or unknown ids are skipped, with the reason."""
        result = BatchResult()
        for lead_id in _unique(lead_ids):
            outcome = self._replay_one(lead_id, by=by)
            if outcome == "refetch":  # waits for its record again: the pump queues its read, not its delivery
                result.done.append(lead_id)
                continue
            if outcome != "replayed":
                result.skipped[lead_id] = outcome if outcome == "unknown" else f"not dead (status {outcome})"
                continue
            result.done.append(lead_id)
            try:
                self._enqueue(lead_id)
            except Exception as exc:  # the lease brings it back: the pump enqueues it later
                log.warning("replay_enqueue_failed", lead_id=lead_id, error=type(exc).__name__)
                result.enqueue_failed.append(lead_id)
        log.info("dead_letters_replayed", count=len(result.done), skipped=len(result.skipped), by=by)
        return result

    def replay_all(self, *, by: str = "operator") -> BatchResult:
        return self.replay(self.ids(), by=by)

    def purge(self, lead_ids: Iterable[str]) -> BatchResult:
        """Delete dead leads for good (record, history, index); live or unknown ids are skipped."""
        result = BatchResult()
        for lead_id in _unique(lead_ids):
            outcome = str(self._purge(
                keys=[self._keys.lead(lead_id), self._keys.lead_events(lead_id), self._keys.lead_lock(lead_id),
                      self._keys.dead, self._keys.pending, self._keys.parked],
                args=[lead_id],
            ))
            if outcome == "purged":
                result.done.append(lead_id)
            else:
                result.skipped[lead_id] = outcome if outcome == "unknown" else f"not dead (status {outcome})"
        log.info("dead_letters_purged", count=len(result.done), skipped=len(result.skipped))
        return result

    def _replay_one(self, lead_id: str, *, by: str) -> str:
        raw: dict[str, str] = self._redis.hgetall(self._keys.lead(lead_id))  # type: ignore[assignment]
        record = LeadRecord.from_hash(raw)
        if raw and record.status == Status.DEAD and self._release is not None:
            self._release(lead_id)  # normally freed when it died; harmless when nothing is held
        fields: dict[str, str] = {name: "" for name in _RESET_FIELDS}
        fields |= {"status": Status.QUEUED, "attempts": "0", "crashes": "0", "in_task": "0",
                   "updated_at": iso(), "replayed_at": iso(),
                   "replays": str(record.replays + 1)}
        uncertain = record.last_outcome in _UNCERTAIN_OUTCOMES
        if uncertain:
            fields["possible_duplicate"] = "1"
        # An id-only lead that died before its record was read has no number: it waits for its record again.
        refetch = bool(record.extra.get("fetch_id")) and not record.number
        if refetch:
            fields |= {"status": Status.FETCHING, "fetch_status": "waiting", "fetch_attempts": "0",
                       "fetch_last_error": ""}
        event = json.dumps(
            {"at": iso(), "event": "replayed", "by": by, "previous_reason": record.dead_reason,
             "previous_attempts": record.attempts, "previous_crashes": record.crashes,
             "possible_duplicate": uncertain},
            sort_keys=True,
        )
        args: list[str | int] = [lead_id, now_ms() if refetch else now_ms() + self._lease_ms, event, MAX_EVENTS]
        for name, value in fields.items():
            args += [name, value]
        due = self._keys.fetches_due if refetch else self._keys.pending
        keys = [self._keys.lead(lead_id), self._keys.lead_events(lead_id), self._keys.dead, due]
        outcome = str(self._replay(keys=keys, args=args))
        return "refetch" if refetch and outcome == "replayed" else outcome


def _summary(lead_id: str, record: LeadRecord, *, dead_ms: int) -> DeadLetter:
    return DeadLetter(
        id=lead_id,
        reason=record.dead_reason or None,
        dead_at=record.dead_at or (iso(dead_ms) if dead_ms else None),
        dead_ms=dead_ms,
        attempts=record.attempts,
        crashes=record.crashes,
        agent=record.agent or None,
        last_status_code=record.last_status_code or None,
        last_message=record.last_message or None,
        possible_duplicate=record.possible_duplicate,
    )


def _event(raw: str) -> dict[str, Any]:
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError:
        return {"event": "unreadable", "raw": raw[:500]}
    return loaded if isinstance(loaded, dict) else {"event": "unreadable", "raw": raw[:500]}


def _unique(lead_ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(lead_id for lead_id in lead_ids if lead_id))
