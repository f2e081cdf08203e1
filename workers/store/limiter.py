"""The shared Ryng rate limiter: a sliding log in Redis, one atomic call per request, Redis's own clock.

Ryng allows N requests per minute per account, across all our workers on all hosts. `acquire()` either grants
a slot now (and records it) or says how long until one frees up; it never lets N + 1 requests into any window of
`window_seconds`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import redis

from workers.store.keys import Keys

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, 0, used + 1}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now + 1, used}
"""


@dataclass(frozen=True, slots=True)
class Slot:
    granted: bool
    wait_seconds: float  # 0 when granted
    used: int  # requests in the current window, this one included when granted


class RateLimiter:
    """At most `limit` grants in any sliding window of `window_seconds`, shared through Redis."""

    def __init__(
        self, client: redis.Redis, *, keys: Keys, limit: int, window_seconds: float = 60.0
    ) -> None:
        self._redis = client
        self._key = keys.rate
        self._limit = limit
        self._window_us = int(window_seconds * 1_000_000)
        self._acquire = client.register_script(_ACQUIRE)

    @property
    def limit(self) -> int:
        return self._limit

    def acquire(self) -> Slot:
        granted, wait_us, used = self._acquire(
            keys=[self._key], args=[self._limit, self._window_us, uuid.uuid4().hex]
        )
        return Slot(granted=bool(granted), wait_seconds=int(wait_us) / 1_000_000, used=int(used))

    def in_window(self) -> int:
        """Requests granted in the current window (for metrics and status)."""
        return int(self._redis.zcard(self._key))
