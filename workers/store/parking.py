"""Where leads wait: the parked set (due times) and the pending set (leases), both Redis sorted sets.

Long waits live here, never in Celery countdowns: the Redis transport re-delivers a countdown task that outlives
its visibility timeout. The worker's pump (`workers.delivery.pump`) claims due leads and enqueues them again;
leases catch anything lost on the way (a crash between accept and enqueue, a SIGKILLed worker, an unacked message).
"""

from __future__ import annotations

import redis

from workers.clock import now_ms
from workers.store.keys import Keys

# Claim up to ARGV[2] parked leads due by ARGV[1]; give each a fresh lease (ARGV[3] ms).
_CLAIM_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
end
return due
"""

# Leads whose lease ran out, that are not parked and whose lock is not held: renew their lease and return them.
_CLAIM_EXPIRED = """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, id in ipairs(expired) do
  if redis.call('ZSCORE', KEYS[2], id) then
    local due = math.max(tonumber(redis.call('ZSCORE', KEYS[2], id)), tonumber(ARGV[1]))
    redis.call('ZADD', KEYS[1], due + tonumber(ARGV[3]), id)
  elseif redis.call('EXISTS', ARGV[4] .. id) == 1 then
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
  else
    redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[3]), id)
    table.insert(out, id)
  end
end
return out
"""


class Parking:
    """The parked and pending sets, and a view of the dead-letter index (LeadStore.bury writes it)."""

    def __init__(self, client: redis.Redis, *, keys: Keys, lease_seconds: float) -> None:
        self._redis = client
        self._keys = keys
        self._lease_ms = int(lease_seconds * 1000)
        self._claim_due = client.register_script(_CLAIM_DUE)
        self._claim_expired = client.register_script(_CLAIM_EXPIRED)

    def park(self, lead_id: str, *, delay_seconds: float) -> int:
        """Park a lead until now + delay; its lease is extended past that. Returns the due time (ms)."""
        due = now_ms() + max(0, int(delay_seconds * 1000))
        pipe = self._redis.pipeline(transaction=True)
        pipe.zadd(self._keys.parked, {lead_id: due})
        pipe.zadd(self._keys.pending, {lead_id: due + self._lease_ms})
        pipe.execute()
        return due

    def due_in(self, lead_id: str) -> float:
        """Seconds until a parked lead is due (0 when due or not parked)."""
        due = self._redis.zscore(self._keys.parked, lead_id)
        return 0.0 if due is None else max(0.0, (float(due) - now_ms()) / 1000)

    def renew(self, lead_id: str) -> None:
        """A worker has the lead (or it was just enqueued): its lease starts now."""
        self._redis.zadd(self._keys.pending, {lead_id: now_ms() + self._lease_ms}, xx=True)

    def finish(self, lead_id: str) -> None:
        """The lead reached a final state: it is neither pending nor parked any more."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.zrem(self._keys.pending, lead_id)
        pipe.zrem(self._keys.parked, lead_id)
        pipe.execute()

    def claim_due(self, *, limit: int = 100) -> list[str]:
        """Atomically take parked leads whose time has come (each claimed by exactly one caller)."""
        claimed: list[str] = self._claim_due(
            keys=[self._keys.parked, self._keys.pending], args=[now_ms(), limit, self._lease_ms]
        )
        return claimed

    def claim_expired(self, *, limit: int = 100) -> list[str]:
        """Leads whose lease ran out with nobody working on them: lost on the way, to be enqueued again."""
        claimed: list[str] = self._claim_expired(
            keys=[self._keys.pending, self._keys.parked],
            args=[now_ms(), limit, self._lease_ms, self._keys.lock_prefix],
        )
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
