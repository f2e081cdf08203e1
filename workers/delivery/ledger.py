"""The Redis side of one delivery run: claim, begin a send, settle — each one atomic Lua call.

A delivered lead costs four round trips: `claim` (status, due time, lock, lease, crash count, pause state),
the assigner's pick, `begin` (record the pick, take a rate-limiter slot, count the attempt, mark `sending`)
and `settle` (Ryng's answer and what follows, the lock released). Between two calls the record is always in
a state some later run can act on, so there is nothing to recover from a half-written one.

Batching adds two calls for the run that carries a batch: `gather` claims other leads already picked and waiting
for the limiter (locks, leases and `sending` marks, as `claim` + `begin` give a single run), and `settle_many`
settles every lead of the batch at once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import redis

from workers.clock import iso, now_ms
from workers.lua import load_script
from workers.store.keys import Keys
from workers.store.lead_record import LeadRecord, Status
from workers.store.limiter import RateLimiter

__all__ = ["Begun", "Claim", "DeliveryLedger", "Gathered", "Settlement", "history_entry"]


def history_entry(kind: str, **data: Any) -> str:
    """One entry of a lead's history, as `LeadStore.event` writes it."""
    return json.dumps({"at": iso(), "event": kind, **data}, default=str, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a lead found; only `claimed` means this run holds the lead (and its lock)."""

    verdict: Literal["claimed", "unknown", "final", "not-due", "locked"]
    status: str = ""
    record: LeadRecord | None = None
    #: The crash count, when this claim found the previous run never settled (else 0).
    crashes: int = 0
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Begun:
    """Beginning a send: `sending` (attempt number), `wait` (for a limiter slot), `defer` (wait for a batch: more
    leads wait than the limiter's free slots can send) or `gone` (final meanwhile)."""

    outcome: Literal["sending", "wait", "defer", "gone"]
    attempt: int = 0
    wait_seconds: float = 0.0
    status: str = ""


@dataclass(frozen=True, slots=True)
class Settlement:
    """How a run ends: the new status and fields, where the lead waits, history entries, counters."""

    status: Status | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    #: Park for this many seconds; None: not parked; `finish`: out of the pending and parked sets.
    park_seconds: float | None = None
    finish: bool = False
    held: Literal["hold", "unhold", ""] = ""
    attempts_delta: int = 0
    events: Sequence[str] = ()
    counters: Sequence[str] = ()
    #: False keeps the lock (the run goes on, e.g. to bury the lead).
    unlock: bool = True
    #: The lead waits for the limiter, picked: a batch may carry it (else it leaves the waiting set).
    ready: bool = False


@dataclass(frozen=True, slots=True)
class Gathered:
    """A lead claimed into a batch: its record after the claim, and the attempt this send counts."""

    lead_id: str
    attempt: int
    record: LeadRecord


class DeliveryLedger:
    """The three atomic calls of a delivery run, over the lead store's keys, the limiter and the reservations."""

    def __init__(
        self, client: redis.Redis, *, keys: Keys, limiter: RateLimiter, lease_seconds: float, lock_seconds: float,
        reservation_timeout_seconds: float, locked_retry_seconds: float,
    ) -> None:
        self._keys = keys
        self._limiter = limiter
        self._lease_ms = int(lease_seconds * 1000)
        self._lock_ms = int(lock_seconds * 1000)
        self._reservation_ms = int(reservation_timeout_seconds * 1000)
        self._locked_retry_ms = int(locked_retry_seconds * 1000)
        self._claim = load_script(client, "delivery_claim")
        self._begin = load_script(client, "delivery_begin")
        self._settle = load_script(client, "delivery_settle")
        self._gather = load_script(client, "batch_claim")
        self._settle_many = load_script(client, "batch_settle")
        self._redis = client

    def claim(self, lead_id: str, *, token: str) -> Claim:
        keys = self._keys
        reply = self._claim(
            keys=[keys.lead(lead_id), keys.lead_events(lead_id), keys.lead_lock(lead_id), keys.pending,
                  keys.parked, keys.paused],
            args=[lead_id, token, self._lock_ms, now_ms(), self._lease_ms, self._locked_retry_ms, iso()],
        )
        verdict = str(reply[0])
        if verdict == "final":
            return Claim("final", status=str(reply[1]))
        if verdict != "claimed":
            return Claim(verdict)  # type: ignore[arg-type]
        raw = reply[3:]
        record = LeadRecord.from_hash(dict(zip(raw[::2], raw[1::2], strict=True)))
        return Claim("claimed", status=record.status, record=record, crashes=int(reply[1]), paused=bool(reply[2]))

    def begin(
        self, lead_id: str, *, pick_fields: Mapping[str, str] | None = None, pick_event: str = "",
        pick_counter: str = "", may_defer: bool = False,
    ) -> Begun:
        """Record this run's pick (if any), take a limiter slot and, when granted, mark the lead `sending`.

        `may_defer`: under a backlog the lead may wait for a batch instead (once per lead).
        """
        keys = self._keys
        args: list[str | int] = [pick_counter, pick_event, self._limiter.limit, self._limiter.window_us,
                                 uuid.uuid4().hex, iso(), "1" if may_defer else ""]
        for name, value in (pick_fields or {}).items():
            args += [name, value]
        reply = self._begin(
            keys=[keys.lead(lead_id), keys.lead_events(lead_id), keys.metrics, keys.rate, keys.pending,
                  keys.parked, keys.ready],
            args=args,
        )
        outcome = str(reply[0])
        if outcome == "sending":
            return Begun("sending", attempt=int(reply[1]))
        if outcome == "wait":
            return Begun("wait", wait_seconds=int(reply[1]) / 1_000_000)
        if outcome == "defer":
            return Begun("defer")
        return Begun("gone", status=str(reply[1]))

    def gather(self, leader: str, *, token: str, limit: int) -> list[Gathered]:
        """Claim up to `limit` other leads waiting for the limiter (oldest first) into `leader`'s batch."""
        keys = self._keys
        # Room to spare: some candidates are held by a run of their own (another batch's leader, or claimed by
        # a batch gathering at the same moment from the same oldest leads), or no longer batchable.
        room = 4 * limit + 2
        waiting: list[str] = self._redis.zrange(keys.ready, 0, room - 1)  # type: ignore[assignment]
        candidates = [lead_id for lead_id in waiting if lead_id != leader]
        if not candidates or limit <= 0:
            return []
        lead_keys: list[str] = []
        for lead_id in candidates:
            lead_keys += [keys.lead(lead_id), keys.lead_events(lead_id), keys.lead_lock(lead_id)]
        reply = self._gather(
            keys=[keys.ready, keys.pending, keys.parked, keys.metrics, *lead_keys],
            args=[token, self._lock_ms, now_ms(), self._lease_ms, iso(), limit, *candidates],
        )
        gathered = []
        for entry in reply:
            raw = entry[2:]
            record = LeadRecord.from_hash(dict(zip(raw[::2], raw[1::2], strict=True)))
            gathered.append(Gathered(lead_id=str(entry[0]), attempt=int(entry[1]), record=record))
        return gathered

    def settle(self, lead_id: str, *, token: str, settlement: Settlement) -> str | None:
        """End the run as `settlement` says; returns the status before (None for an unknown lead)."""
        keys, args = self._settle_call(lead_id, token=token, settlement=settlement)
        previous = self._settle(keys=keys, args=args)
        return str(previous) if previous else None

    def settle_many(self, runs: Sequence[tuple[str, Settlement]], *, token: str) -> list[str | None]:
        """Settle several runs holding `token` (a batch) in one call; the status before of each."""
        all_keys: list[str] = []
        all_args: list[str | int] = [len(runs)]
        for lead_id, settlement in runs:
            keys, args = self._settle_call(lead_id, token=token, settlement=settlement)
            all_keys += keys
            all_args += [len(args), *args]
        reply = self._settle_many(keys=all_keys, args=all_args)
        return [str(previous) if previous else None for previous in reply]

    def _settle_call(self, lead_id: str, *, token: str, settlement: Settlement) -> tuple[list[str], list[str | int]]:
        keys = self._keys
        now = now_ms()
        if settlement.finish:
            due = "finish"
        elif settlement.park_seconds is None:
            due = ""
        else:
            due = str(now + max(0, int(settlement.park_seconds * 1000)))
        args: list[str | int] = [
            lead_id, token if settlement.unlock else "", settlement.status or "", due, self._lease_ms,
            now + self._reservation_ms, settlement.held, settlement.attempts_delta, ",".join(settlement.counters),
            len(settlement.events), "ready" if settlement.ready else "", *settlement.events,
        ]
        for name, value in ({"updated_at": iso(now)} | dict(settlement.fields)).items():
            if name != "status":  # the status moves only by `settlement.status`, and only from an open one
                args += [name, value]
        lead_keys = [keys.lead(lead_id), keys.lead_events(lead_id), keys.metrics, keys.pending, keys.parked,
                     keys.paused_held, keys.reservation(lead_id), keys.reservations, keys.lead_lock(lead_id),
                     keys.ready]
        return lead_keys, args
