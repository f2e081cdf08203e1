"""Start-up migration of the router's keys to the layout in force (`workers.store.keys.SCHEMA_VERSION`).

Every process that uses Redis calls `migrate` once as it starts. It is cheap when the work is done (one GET of
the schema marker), idempotent, and safe when several processes run it at once: each one moves whatever old keys
it finds that no other moved first, and none goes on before every old key it saw has moved.

Version 2 puts every key under one hash tag: `lr:lead:X` becomes `{lr}:lead:X`, and so on for every key under the
prefix (the rest of each name is unchanged). Keys are renamed with RENAMENX, so TTLs are kept. A key already
present under its new name (a process wrote it before any migration ran, e.g. an API started while Redis was
down) is never overwritten: an old index (sorted set or set: pending, parked, dead, reservations...) is merged
into it, so no lead is lost; any other old key is left, and logged, for an operator. The old layout can only be
on a single Redis (its scripts could not run on a cluster), where a RENAME stays on one node. Stop processes of
the previous version before starting this one: a key they write after the migration is not moved again.
"""

from __future__ import annotations

from collections.abc import Iterable

import redis
import structlog

from workers.store.connections import RedisClient
from workers.store.keys import SCHEMA_VERSION, Keys

__all__ = ["migrate"]

log = structlog.get_logger("workers.store.migrations")

_BATCH = 500


def migrate(client: RedisClient, *, keys: Keys, unreachable_ok: bool = False) -> int:
    """Bring this Redis to the current key layout; returns how many keys were moved (0 when already done).

    `unreachable_ok`: when Redis cannot be reached, log it and return 0 instead of raising (for the API, which
    starts without Redis and answers 503 until it is back; the next process to start migrates).
    """
    try:
        marker = client.get(keys.schema)
    except redis.ConnectionError as exc:
        if not unreachable_ok:
            raise
        log.warning("keys_not_migrated", why="redis unreachable", error=type(exc).__name__)
        return 0
    if marker is not None and int(marker) >= SCHEMA_VERSION:
        return 0
    moved = _tag_keys(client, keys=keys)
    client.set(keys.schema, SCHEMA_VERSION)
    if moved:  # a fresh Redis is only marked, silently (CLI commands print their own output)
        log.info("keys_migrated", schema=SCHEMA_VERSION, moved=moved, prefix=keys.prefix)
    return moved


def _tag_keys(client: RedisClient, *, keys: Keys) -> int:
    """Rename every `<prefix>:...` key to `{<prefix>}:...`."""
    moved, batch = 0, []
    for key in client.scan_iter(match=keys.legacy_match(), count=1000):
        batch.append(str(key))
        if len(batch) >= _BATCH:
            moved += _rename(client, keys=keys, legacy=batch)
            batch = []
    return moved + _rename(client, keys=keys, legacy=batch)


def _rename(client: RedisClient, *, keys: Keys, legacy: Iterable[str]) -> int:
    names = list(legacy)
    if not names:
        return 0
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.renamenx(name, keys.from_legacy(name))
    moved = 0
    for name, outcome in zip(names, pipe.execute(raise_on_error=False), strict=True):
        if isinstance(outcome, redis.ResponseError) and "no such key" in str(outcome).lower():
            continue  # another process moved it first
        if isinstance(outcome, Exception):
            raise outcome
        if outcome or _merge(client, legacy=name, new=keys.from_legacy(name)):
            moved += 1
        else:
            log.warning("key_not_migrated", key=name, new_key=keys.from_legacy(name), why="new key exists")
    return moved


def _merge(client: RedisClient, *, legacy: str, new: str) -> bool:
    """Fold an old index into the one already under its new name (one MULTI); False for other kinds of key."""
    kind = client.type(legacy)
    pipe = client.pipeline(transaction=True)
    if kind == "zset":
        pipe.zunionstore(new, [new, legacy], aggregate="MIN")  # the earlier due time or lease wins
    elif kind == "set":
        pipe.sunionstore(new, [new, legacy])
    else:
        return False
    pipe.delete(legacy)
    pipe.execute()
    return True
