"""Router counters kept in Redis, so every process on every host adds to the same figures."""

from __future__ import annotations

from workers.store.connections import RedisClient
from workers.store.histograms import PREFIX as HISTOGRAM_PREFIX
from workers.store.keys import Keys


class Counters:
    """Monotonic counters in one Redis hash; exported by the API's /metrics.

    Lua scripts add to the same hash in the call that already runs (a comma list of tokens: `name` adds one,
    `name=amount` adds `amount`); histogram fields (`workers/store/histograms.py`) live there too.
    """

    def __init__(self, client: RedisClient, *, keys: Keys) -> None:
        self._redis = client
        self._key = keys.metrics

    def incr(self, name: str, amount: int = 1) -> None:
        self._redis.hincrby(self._key, name, amount)

    def fields(self) -> dict[str, int]:
        """Every field of the hash: the plain counters and the histograms' buckets and sums."""
        raw: dict[str, str] = self._redis.hgetall(self._key)  # type: ignore[assignment]
        return {name: int(value) for name, value in raw.items()}

    def snapshot(self) -> dict[str, int]:
        """The plain counters (name → count), without the histograms."""
        return plain(self.fields())


def plain(fields: dict[str, int]) -> dict[str, int]:
    """The plain counters among the hash's fields."""
    return {name: value for name, value in fields.items() if not name.startswith(HISTOGRAM_PREFIX)}
