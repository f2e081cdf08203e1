"""Redis connections: one place that turns settings into clients."""

from __future__ import annotations

import redis

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
