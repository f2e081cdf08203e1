"""Leads waiting for their record from the CRM's API, kept in Redis like leads (never in Celery countdowns).

An id-only event is recorded at once (status `fetching`, no number yet) and its lead put in `fetches:due`, scored
by when its next read is due. The pump claims due leads (a lease, so one reader at a time; the same claim script
as outcomes) and queues a fetch; the fetch fills the record and hands the lead to delivery, reschedules it after a
backoff, or dead-letters it with the reason. Every change is one Lua call.
"""

from __future__ import annotations

import json

import structlog

from workers.clock import iso, now_ms
from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys
from workers.store.lead_record import Status
from workers.store.records import MAX_EVENTS, Accepted, LeadStore, accept_outcome, new_record

__all__ = ["FETCH_LEASE_SECONDS", "FetchWaits"]

log = structlog.get_logger(__name__)

#: How long a claimed lead is one reader's: two reads of at most 60 s each (a fetch's longest timeout), and margin.
FETCH_LEASE_SECONDS = 2 * 60.0 + 5


class FetchWaits:
    """Keep, claim, fill, reschedule and bury leads waiting for their CRM record."""

    def __init__(
        self, client: RedisClient, *, keys: Keys, store: LeadStore, lease_seconds: float = FETCH_LEASE_SECONDS
    ) -> None:
        self._redis = client
        self._keys = keys
        self._store = store
        self._lease_ms = int(lease_seconds * 1000)
        self._accept = load_script(client, "fetch_accept")
        self._claim = load_script(client, "outcome_claim_due")
        self._fill = load_script(client, "fetch_fill")
        self._retry = load_script(client, "fetch_retry")

    def accept(self, *, lead_id: str, crm_id: str, source: str) -> Accepted:
        """Keep the lead as waiting for its record (idempotent by its id: a re-send reports what is there)."""
        stamp = now_ms()
        fields = new_record(lead_id=lead_id, payload={"id": lead_id, "fetch": crm_id}, source=source, stamp=stamp)
        fields |= {"status": Status.FETCHING, "fetch_id": crm_id, "fetch_status": "waiting", "fetch_attempts": "0"}
        history = json.dumps({"at": iso(stamp), "event": "accepted", "source": source, "fetch": crm_id},
                             sort_keys=True)
        args: list[str | int] = [fields["fingerprint"], stamp, lead_id, history]
        for name, value in fields.items():
            args += [name, value]
        keys = [self._keys.lead(lead_id), self._keys.fetches_due, self._keys.created, self._keys.lead_events(lead_id)]
        outcome, status = self._store.kept(self._accept, keys=keys, args=args)  # kept: on enough replicas too
        if outcome == "created":
            log.info("fetch_waiting", lead_id=lead_id, source=source)
        return Accepted(outcome=accept_outcome(outcome), status=str(status))

    def claim_due(self, *, limit: int = 100) -> list[str]:
        """Leads whose next read is due, each claimed for one reader (until its lease runs out)."""
        claimed: list[str] = self._claim(keys=[self._keys.fetches_due], args=[now_ms(), limit, self._lease_ms])
        return claimed

    def pending(self) -> int:
        return int(self._redis.zcard(self._keys.fetches_due))

    def forget(self, lead_id: str) -> None:
        """The lead no longer waits for its record."""
        self._redis.zrem(self._keys.fetches_due, lead_id)

    def fill(self, lead_id: str, *, payload: dict[str, object], attempts: int, source: str) -> bool:
        """Store the mapped lead and hand it to delivery (pending, status queued); False if it no longer waits."""
        entry = json.dumps({"at": iso(), "event": "fetched", "source": source, "attempts": attempts}, sort_keys=True)
        keys = [self._keys.lead(lead_id), self._keys.fetches_due, self._keys.pending, self._keys.lead_events(lead_id)]
        args: list[str | int] = [lead_id, json.dumps(payload, sort_keys=True), now_ms() + self._lease_ms, entry,
                                 MAX_EVENTS, iso(), attempts]
        return bool(self._fill(keys=keys, args=args))

    def retry_later(self, lead_id: str, *, attempts: int, error: str, delay_seconds: float) -> bool:
        """Count the failed read and make the lead due again after the backoff."""
        return bool(self._retry(
            keys=[self._keys.fetches_due, self._keys.lead(lead_id)],
            args=[lead_id, now_ms() + int(delay_seconds * 1000), attempts, error[:500], iso()],
        ))

    def give_up(self, lead_id: str, *, attempts: int, reason: str) -> bool:
        """Dead-letter the lead with the reason (listed by `lead-router dead`); False if it was final already."""
        reason = reason[:500]
        previous = self._store.bury(lead_id, dead_reason=reason, dead_at=iso(), fetch_status="dead",
                                    fetch_attempts=attempts)
        self.forget(lead_id)
        if previous is None:
            return False
        self._store.event(lead_id, "fetch_dead", attempts=attempts, reason=reason)
        log.warning("fetch_dead", lead_id=lead_id, attempts=attempts, reason=reason[:200])
        return True
