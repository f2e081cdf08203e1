"""Delivery pause: when Ryng answers 403 every worker stops posting, keeps every lead, and probes for recovery."""

from __future__ import annotations

import redis

from workers.keys import Keys
from workers.records import iso


class DeliveryPause:
    """A flag in Redis shared by every worker, plus the right to send one probe per interval."""

    def __init__(self, client: redis.Redis, *, keys: Keys, probe_seconds: float) -> None:
        self._redis = client
        self._keys = keys
        self._probe_ms = int(probe_seconds * 1000)

    def pause(self, *, reason: str) -> None:
        """Pause delivery (idempotent: the first reason and time are kept)."""
        self._redis.hsetnx(self._keys.paused, "since", iso())
        self._redis.hsetnx(self._keys.paused, "reason", reason)
        # The next probe is one interval away, not immediate: the token was just refused.
        self._redis.set(self._keys.probe, "wait", px=self._probe_ms, nx=True)

    def resume(self) -> bool:
        """Resume delivery; True if it was paused."""
        pipe = self._redis.pipeline(transaction=True)
        pipe.delete(self._keys.paused)
        pipe.delete(self._keys.probe)
        removed, _ = pipe.execute()
        return bool(removed)

    def state(self) -> dict[str, str] | None:
        state: dict[str, str] = self._redis.hgetall(self._keys.paused)  # type: ignore[assignment]
        return state or None

    def take_probe(self) -> bool:
        """While paused, at most one caller per interval gets True and may send a probe request."""
        return bool(self._redis.set(self._keys.probe, "probe", px=self._probe_ms, nx=True))

    @property
    def probe_seconds(self) -> float:
        return self._probe_ms / 1000
