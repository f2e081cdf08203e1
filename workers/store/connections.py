"""Redis connections: one place that turns settings into clients."""

from __future__ import annotations

from typing import TypeAlias

import redis
import redis.cluster

__all__ = ["DEFAULT_REDIS_URL", "RedisClient", "connect", "redis_url"]

#: What the stores and the assigner take: a Redis client, or a Redis Cluster client (every key of one router is
#: in one hash slot, so each script and MULTI runs on one node).
RedisClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url(configured: str | None) -> str:
    """The Redis URL in force: the configured one, else a local server on the default port."""
    return configured or DEFAULT_REDIS_URL


def connect(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A client that returns str, with bounded timeouts so a dead server fails fast."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        health_check_interval=30,
        retry_on_timeout=False,
    )
