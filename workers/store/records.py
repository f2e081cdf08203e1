"""The lead store: one Redis hash per lead (its typed view is `LeadRecord`), its history, guarded status changes.

A record is written before the API answers 202, so "accepted" means "kept".
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import redis
from redis.commands.core import Script

from workers.clock import iso, now_ms
from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys
from workers.store.lead_record import DELIVERED, FINAL, OPEN, LeadRecord, Status

__all__ = [
    "DELIVERED", "FINAL", "MAX_EVENTS", "OPEN", "AcceptOutcome", "Accepted", "LeadRecord", "LeadStore",
    "NotReplicatedError", "Status", "accept_outcome", "fingerprint", "new_record",
]


MAX_EVENTS = 200


def fingerprint(payload: Mapping[str, Any]) -> str:
    """A stable digest of a normalised lead payload: the same lead sent twice has the same one."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class NotReplicatedError(redis.RedisError):
    """Fewer replicas than `ROUTER_REDIS_MIN_REPLICAS` acknowledged a new lead in time: not yet safe to say kept.

    A RedisError, so the API answers 503 and the CRM retries (the retry is idempotent; it waits again).
    """


def new_record(*, lead_id: str, payload: Mapping[str, Any], source: str, stamp: int) -> dict[str, str]:
    """The fields of a lead recorded at `stamp` (ms): accepted, with its payload and fingerprint, nothing tried."""
    at = iso(stamp)
    return {
        "id": lead_id,
        "status": Status.ACCEPTED,
        "source": source,
        "payload": json.dumps(payload, sort_keys=True),
        "fingerprint": fingerprint(payload),
        "created_at": at,
        "created_ms": str(stamp),
        "updated_at": at,
        "attempts": "0",
        "crashes": "0",
    }


def require_replicas(replicas: int | str, *, wanted: int, timeout_ms: int) -> None:
    """What `WAIT wanted timeout_ms` answered, checked: fewer replicas than wanted is a NotReplicatedError."""
    if int(replicas) < wanted:
        raise NotReplicatedError(
            f"the lead is on the primary but {replicas} of {wanted} replicas acknowledged it within {timeout_ms} ms"
        )


#: Recording a lead: created now, already there with the same payload, or there with a different one.
AcceptOutcome = Literal["created", "exists", "conflict"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The result of recording a lead: created now, already there with the same payload, or a conflict."""

    outcome: AcceptOutcome
    status: str


class LeadStore:
    """Reads and writes lead records; every write is one atomic Redis call or a MULTI pipeline."""

    def __init__(
        self, client: RedisClient, *, keys: Keys, lease_seconds: float = 60.0, lock_seconds: float | None = None,
        min_replicas: int = 0, replica_timeout_ms: int = 1000,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._min_replicas = min_replicas
        self._replica_timeout_ms = replica_timeout_ms
        self._lease_ms = int(lease_seconds * 1000)
        self._lock_ms = int((lock_seconds or lease_seconds) * 1000)
        self._accept = load_script(client, "lead_accept")
        self._transition = load_script(client, "lead_transition")
        self._bury = load_script(client, "lead_bury")
        self._unlock = load_script(client, "lead_unlock")

    @property
    def keys(self) -> Keys:
        return self._keys

    def accept(self, *, lead_id: str, payload: Mapping[str, Any], source: str) -> Accepted:
        """Record a new lead as accepted (and due for delivery), or report what is already there."""
        stamp = now_ms()
        fields = new_record(lead_id=lead_id, payload=payload, source=source, stamp=stamp)
        args: list[str] = [fields["fingerprint"], str(stamp + self._lease_ms), lead_id, str(stamp)]
        for name, value in fields.items():
            args += [name, value]
        keys = [self._keys.lead(lead_id), self._keys.pending, self._keys.created]
        outcome, status = self.kept(self._accept, keys=keys, args=args)
        if outcome == "created":
            self.event(lead_id, "accepted", source=source)
        return Accepted(outcome=accept_outcome(outcome), status=str(status))

    def kept(self, script: Script, *, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        """Run a script that records a new lead; with `ROUTER_REDIS_MIN_REPLICAS`, only once enough replicas hold it.

        Raises NotReplicatedError when fewer replicas acknowledged the write in time (not yet safe to say kept).
        """
        if not self._min_replicas:
            return script(keys=keys, args=args)
        # The record and WAIT go on one connection: WAIT counts the replicas holding this connection's writes.
        pipe = self._redis.pipeline(transaction=False)
        script(keys=keys, args=args, client=pipe)
        pipe.execute_command("WAIT", self._min_replicas, self._replica_timeout_ms)
        result, replicas = pipe.execute()
        require_replicas(replicas, wanted=self._min_replicas, timeout_ms=self._replica_timeout_ms)
        return result

    def get(self, lead_id: str) -> LeadRecord | None:
        """The lead's record, or None when there is no such lead."""
        raw: dict[str, str] = self._redis.hgetall(self._keys.lead(lead_id))  # type: ignore[assignment]
        return LeadRecord.from_hash(raw) if raw else None

    def transition(
        self,
        lead_id: str,
        status: Status,
        *,
        allowed: frozenset[Status] | None = None,
        **fields: str | int | float,
    ) -> str | None:
        """Move a lead to `status` if its current status is in `allowed` (default: any open status).

        Returns the previous status, or None when the move was refused (unknown lead, or a state that may not
        be left this way, e.g. `posted` never goes back to `retrying`).
        """
        allowed_arg = "*" if allowed is None else ",".join(sorted(allowed))
        args: list[str] = [status, allowed_arg, ",".join(sorted(FINAL))]
        merged = {"updated_at": iso(), **{k: str(v) for k, v in fields.items()}}
        for name, value in merged.items():
            args += [name, value]
        previous = self._transition(keys=[self._keys.lead(lead_id)], args=args)
        return str(previous) if previous else None

    def bury(self, lead_id: str, **fields: str | int | float) -> str | None:
        """Dead-letter the lead in one atomic step (status, fields, out of pending/parked, into dead).

        Returns the previous status, or None when the lead is unknown, already delivered or already dead.
        """
        args: list[str] = [lead_id, str(now_ms()), ",".join(sorted(FINAL))]
        for name, value in ({k: str(v) for k, v in fields.items()} | {"updated_at": iso()}).items():
            args += [name, value]
        keys = [self._keys.lead(lead_id), self._keys.pending, self._keys.parked, self._keys.dead]
        previous = self._bury(keys=keys, args=args)
        return str(previous) if previous else None

    def update(self, lead_id: str, **fields: str | int | float) -> None:
        """Set fields without changing the status."""
        mapping: dict[str | bytes, str | bytes] = {k: str(v) for k, v in fields.items()}
        mapping["updated_at"] = iso()
        self._redis.hset(self._keys.lead(lead_id), mapping=mapping)  # type: ignore[arg-type]

    def incr(self, lead_id: str, field: str, amount: int = 1) -> int:
        return int(self._redis.hincrby(self._keys.lead(lead_id), field, amount))

    def event(self, lead_id: str, kind: str, **data: Any) -> None:
        """Append one entry to the lead's history (bounded to the newest MAX_EVENTS)."""
        entry = json.dumps({"at": iso(), "event": kind, **data}, default=str, sort_keys=True)
        key = self._keys.lead_events(lead_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.rpush(key, entry)
        pipe.ltrim(key, -MAX_EVENTS, -1)
        pipe.execute()

    def events(self, lead_id: str) -> list[dict[str, Any]]:
        raw: list[str] = self._redis.lrange(self._keys.lead_events(lead_id), 0, -1)  # type: ignore[assignment]
        return [json.loads(item) for item in raw]

    def record_update(self, lead_id: str, *, payload: Mapping[str, Any], source: str) -> bool:
        """Keep a CRM's changed re-send of a known lead as an update (never a second campaign).

        One MULTI: the latest update's payload and fingerprint, a count, and a history entry naming the changed
        keys. Returns False when the same update was kept already (the CRM retried it).
        """
        digest = fingerprint(payload)
        key = self._keys.lead(lead_id)
        if self._redis.hget(key, "update_fingerprint") == digest:
            return False
        raw = self._redis.hget(key, "payload")
        before = json.loads(raw) if isinstance(raw, str) else {}
        changed = sorted(name for name in {*before, *payload} if before.get(name) != payload.get(name))
        entry = json.dumps({"at": iso(), "event": "updated", "source": source, "changed": changed}, sort_keys=True)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(key, mapping={
            "update_payload": json.dumps(payload, sort_keys=True), "update_fingerprint": digest,
            "updated_at": iso(),
        })
        pipe.hincrby(key, "updates", 1)
        pipe.rpush(self._keys.lead_events(lead_id), entry)
        pipe.ltrim(self._keys.lead_events(lead_id), -MAX_EVENTS, -1)
        pipe.execute()
        return True

    def remember_webhook(self, webhook_id: str, *, lead_id: str, ttl_seconds: int = 7 * 24 * 3600) -> None:
        """Note which lead a webhook delivery carried (the first one wins)."""
        self._redis.set(self._keys.webhook(webhook_id), lead_id, nx=True, ex=ttl_seconds)

    def webhook_lead(self, webhook_id: str) -> str | None:
        """The lead an earlier delivery with this `webhook-id` carried, if any."""
        lead_id: str | None = self._redis.get(self._keys.webhook(webhook_id))  # type: ignore[assignment]
        return lead_id

    def lock(self, lead_id: str, *, token: str) -> bool:
        """Take the lead's delivery lock (it outlasts a Ryng request); False when another worker holds it."""
        return bool(self._redis.set(self._keys.lead_lock(lead_id), token, nx=True, px=self._lock_ms))

    def unlock(self, lead_id: str, *, token: str) -> None:
        self._unlock(keys=[self._keys.lead_lock(lead_id)], args=[token])

    def is_locked(self, lead_id: str) -> bool:
        return bool(self._redis.exists(self._keys.lead_lock(lead_id)))


def accept_outcome(value: object) -> AcceptOutcome:
    text = str(value)
    for outcome in get_args(AcceptOutcome):
        if text == outcome:
            return outcome  # type: ignore[no-any-return]
    raise ValueError(f"unexpected answer from the accept script: {text!r}")
