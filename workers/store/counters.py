"""Router counters kept in Redis, so every process on every host adds to the same figures."""

from __future__ import annotations

from workers.store.connections import RedisClient
from workers.store.keys import Keys


class Counters:
    """Monotonic counters in one Redis hash; exported by the API's /metrics."""

    def __init__(self, client: RedisClient, *, keys: Keys) -> None:
        self._redis = client
        self._key = keys.metrics

    def incr(self, name: str, amount: int = 1) -> None:
        self._redis.hincrby(self._key, name, amount)

    def snapshot(self) -> dict[str, int]:
        raw: dict[str, str] = self._redis.hgetall(self._key)  # type: ignore[assignment]
        return {name: int(value) for name, value in raw.items()}
