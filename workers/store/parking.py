"""Where leads wait: the parked set (due times) and the pending set (leases), both Redis sorted sets.

Long waits live here, never in Celery countdowns: the Redis transport re-delivers a countdown task that outlives
its visibility timeout. The worker's pump (`workers.delivery.pump`) claims due leads and enqueues them again;
leases catch anything lost on the way (a crash between accept and enqueue, a SIGKILLed worker, an unacked message).
"""

from __future__ import annotations

from workers.clock import now_ms
from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys


class Parking:
    """The parked and pending sets, and a view of the dead-letter index (LeadStore.bury writes it)."""

    def __init__(self, client: RedisClient, *, keys: Keys, lease_seconds: float) -> None:
        self._redis = client
        self._keys = keys
        self._lease_ms = int(lease_seconds * 1000)
        self._claim_due = load_script(client, "parked_claim_due")
        self._claim_expired = load_script(client, "pending_claim_expired")

    def park(self, lead_id: str, *, delay_seconds: float) -> int:
        """Park a lead until now + delay; its lease is extended past that. Returns the due time (ms)."""
        due = now_ms() + max(0, int(delay_seconds * 1000))
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(self._keys.parked, {lead_id: due})
        pipe.zadd(self._keys.pending, {lead_id: due + self._lease_ms})
        pipe.execute()
        return due

    def renew(self, lead_id: str) -> None:
        """A worker has the lead (or it was just enqueued): its lease starts now."""
        self._redis.zadd(self._keys.pending, {lead_id: now_ms() + self._lease_ms}, xx=True)

    def claim_due(self, *, limit: int = 100) -> list[str]:
        """Atomically take parked leads whose time has come (each claimed by exactly one caller)."""
        claimed: list[str] = self._claim_due(
            keys=[self._keys.parked, self._keys.pending], args=[now_ms(), limit, self._lease_ms]
        )
        return claimed

    def claim_expired(self, *, limit: int = 100) -> list[str]:
        """Leads whose lease ran out with nobody working on them: lost on the way, to be enqueued again."""
        now = now_ms()
        candidates: list[str] = self._redis.zrangebyscore(  # type: ignore[assignment]
            self._keys.pending, "-inf", now, start=0, num=limit
        )
        if not candidates:
            return []
        keys = [self._keys.pending, self._keys.parked, *(self._keys.lead_lock(lead_id) for lead_id in candidates)]
        claimed: list[str] = self._claim_expired(keys=keys, args=[now, self._lease_ms, *candidates])
        return claimed

    def counts(self) -> dict[str, int]:
        pipe = self._redis.pipeline(transaction=False)
        pipe.zcard(self._keys.pending)
        pipe.zcard(self._keys.parked)
        pipe.zcard(self._keys.dead)
        pending, parked, dead = pipe.execute()
        return {"pending": int(pending), "parked": int(parked), "dead": int(dead)}

    def dead_ids(self, *, limit: int = 1000) -> list[str]:
        ids: list[str] = self._redis.zrange(self._keys.dead, 0, limit - 1)  # type: ignore[assignment]
        return ids
