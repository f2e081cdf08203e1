"""The shared Ryng rate limiter: a sliding log in Redis, one atomic call per request, Redis's own clock.

Ryng allows N requests per minute per account, across all our workers on all hosts. `acquire()` either grants
a slot now (and records it) or says how long until one frees up; it never lets N + 1 requests into any window of
`window_seconds`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys


@dataclass(frozen=True, slots=True)
class Slot:
    granted: bool
    wait_seconds: float  # 0 when granted
    used: int  # requests in the current window, this one included when granted


class RateLimiter:
    """At most `limit` grants in any sliding window of `window_seconds`, shared through Redis."""

    def __init__(
        self, client: RedisClient, *, keys: Keys, limit: int, window_seconds: float = 60.0
    ) -> None:
        self._redis = client
        self._key = keys.rate
        self._limit = limit
        self._window_us = int(window_seconds * 1_000_000)
        self._acquire = load_script(client, "rate_acquire")

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def window_us(self) -> int:
        return self._window_us

    def acquire(self) -> Slot:
        granted, wait_us, used = self._acquire(
            keys=[self._key], args=[self._limit, self._window_us, uuid.uuid4().hex]
        )
        return Slot(granted=bool(granted), wait_seconds=int(wait_us) / 1_000_000, used=int(used))

    def in_window(self) -> int:
        """Requests granted in the current window (for metrics and status)."""
        return int(self._redis.zcard(self._key))
