"""Delivery pause: when Ryng answers 403 every worker stops posting, keeps every lead, and probes for recovery."""

from __future__ import annotations

import time

from workers.clock import iso
from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys


class DeliveryPause:
    """A flag in Redis shared by every worker, plus the right to send one probe per interval."""

    def __init__(self, client: RedisClient, *, keys: Keys, probe_seconds: float) -> None:
        self._redis = client
        self._keys = keys
        self._probe_ms = int(probe_seconds * 1000)
        self._resume = load_script(client, "delivery_resume")

    def pause(self, *, reason: str) -> None:
        """Pause delivery (idempotent: the first reason and time are kept)."""
        self._redis.hsetnx(self._keys.paused, "since", iso())
        self._redis.hsetnx(self._keys.paused, "reason", reason)
        # The next probe is one interval away, not immediate: the token was just refused.
        self._redis.set(self._keys.probe, "wait", px=self._probe_ms, nx=True)

    def resume(self) -> bool:
        """Resume delivery and make every lead held by the pause due now; True if it was paused."""
        return bool(self._resume(keys=[self._keys.paused, self._keys.probe, self._keys.paused_held, self._keys.parked],
                                 args=[int(time.time() * 1000)]))

    def state(self) -> dict[str, str] | None:
        state: dict[str, str] = self._redis.hgetall(self._keys.paused)  # type: ignore[assignment]
        return state or None

    def take_probe(self) -> bool:
        """While paused, at most one caller per interval gets True and may send a probe request."""
        return bool(self._redis.set(self._keys.probe, "probe", px=self._probe_ms, nx=True))

    @property
    def probe_seconds(self) -> float:
        return self._probe_ms / 1000
