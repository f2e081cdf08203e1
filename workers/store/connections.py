"""Redis connections: one place that turns settings into clients.

`REDIS_URL` is a plain Redis URL (`redis://`, `rediss://`, `unix://`) or names a Sentinel set:

    redis+sentinel://[:password@]host1:26379,host2:26379,host3:26379/<service>[/<db>]

With Sentinel, every client asks the sentinels which server is the primary and asks again after a connection
error, so a failover is followed without a restart: commands fail (the API answers 503) only while the
sentinels elect the new primary. The password, when given, is the primary's; `?sentinel_password=` sets the
sentinels' own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import parse_qs, unquote

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.cluster
from redis.sentinel import Sentinel

__all__ = [
    "DEFAULT_REDIS_URL", "RedisClient", "SentinelTarget", "broker_for", "connect", "connect_async", "masked",
    "parse_sentinel_url",
    "redis_url",
]

#: What the stores and the assigner take: a Redis client, or a Redis Cluster client (every key of one router is
#: in one hash slot, so each script and MULTI runs on one node).
RedisClient: TypeAlias = redis.Redis | redis.cluster.RedisCluster

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_SENTINEL_SCHEMES = ("redis+sentinel://", "rediss+sentinel://")


@dataclass(frozen=True, slots=True)
class SentinelTarget:
    """A Redis Sentinel set and the service (primary) the router uses in it."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    db: int = 0
    password: str | None = None
    username: str | None = None
    sentinel_password: str | None = None
    ssl: bool = False


def redis_url(configured: str | None) -> str:
    """The Redis URL in force: the configured one, else a local server on the default port."""
    return configured or DEFAULT_REDIS_URL


def is_sentinel_url(url: str) -> bool:
    return url.startswith(_SENTINEL_SCHEMES)


def parse_sentinel_url(url: str) -> SentinelTarget:
    """Read `redis+sentinel://[user:password@]host:port[,host:port...]/service[/db][?sentinel_password=...]`."""
    scheme, _, rest = url.partition("://")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    username = password = None
    if "@" in netloc:
        credentials, _, netloc = netloc.rpartition("@")
        user, _, secret = credentials.partition(":")
        username, password = (unquote(user) or None), (unquote(secret) or None)
    sentinels: list[tuple[str, int]] = []
    for item in filter(None, netloc.split(",")):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"REDIS_URL: {item!r} is not host:port (Sentinel URLs list host:port,host:port)")
        sentinels.append((host.strip("[]"), int(port)))
    parts = [part for part in path.split("/") if part]
    if not sentinels or not parts:
        raise ValueError("REDIS_URL: a Sentinel URL needs sentinels and a service, "
                         "e.g. redis+sentinel://host1:26379,host2:26379/mymaster/0")
    if len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"REDIS_URL: {path!r} is not /<service>[/<db>]")
    options = parse_qs(query)
    return SentinelTarget(
        sentinels=tuple(sentinels), service=parts[0], db=int(parts[1]) if len(parts) == 2 else 0,
        password=password, username=username,
        sentinel_password=options.get("sentinel_password", [""])[0] or None, ssl=scheme.startswith("rediss"),
    )


def _client_options(timeout: float) -> dict[str, Any]:
    """Every client returns str and has bounded timeouts, so a dead server fails fast."""
    return {
        "decode_responses": True, "socket_timeout": timeout, "socket_connect_timeout": timeout,
        "health_check_interval": 30, "retry_on_timeout": False,
    }


def _sentinel_options(target: SentinelTarget, timeout: float) -> dict[str, object]:
    options: dict[str, object] = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if target.sentinel_password:
        options["password"] = target.sentinel_password
    return options


def connect(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A client that returns str, with bounded timeouts so a dead server fails fast (and follows a failover)."""
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(target.sentinels), sentinel_kwargs=_sentinel_options(target, timeout)
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
            target.service, db=target.db, password=target.password, username=target.username, ssl=target.ssl,
            **_client_options(timeout),
        )
        return client
    return redis.Redis.from_url(url, **_client_options(timeout))


def broker_for(url: str) -> tuple[str, dict[str, object]]:
    """Celery's broker URL and transport options for a Redis URL (Sentinel: kombu's `sentinel://` transport)."""
    if not is_sentinel_url(url):
        return url, {}
    target = parse_sentinel_url(url)
    auth = f":{target.password}@" if target.password else ""
    hosts = ";".join(f"sentinel://{auth}{host}:{port}/{target.db}" for host, port in target.sentinels)
    options: dict[str, object] = {"master_name": target.service}
    if target.sentinel_password:
        options["sentinel_kwargs"] = {"password": target.sentinel_password}
    return hosts, options


def masked(url: str) -> str:
    """The URL with any password replaced by `***` (for logs and command output)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    credentials, _, tail = rest.partition("@")
    user = credentials.partition(":")[0]
    return f"{scheme}://{user}:***@{tail}"


def connect_async(url: str, *, timeout: float = 5.0) -> redis.asyncio.Redis:
    """The asyncio twin of `connect` (Sentinel too), for the API's event loop; it connects on first use, there."""
    if is_sentinel_url(url):
        target = parse_sentinel_url(url)
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]
            list(target.sentinels), sentinel_kwargs=_sentinel_options(target, timeout)
        )
        tls: dict[str, Any] = (
            {"connection_class": redis.asyncio.sentinel.SentinelManagedSSLConnection} if target.ssl else {}
        )
        client: redis.asyncio.Redis = sentinel.master_for(
            target.service, db=target.db, password=target.password, username=target.username,
            **tls, **_client_options(timeout),
        )
        return client
    return redis.asyncio.Redis.from_url(url, **_client_options(timeout))
