"""The broker transport for Redis Sentinel: kombu's own, made safe to close after a failover.

When the primary is lost, Celery closes its broker connection; kombu's Sentinel channel then tries to put its
unacknowledged messages back through a connection pool it can no longer build (its connection is already
detached) and the worker dies of an AttributeError. Here that case is a connection error, which Celery ignores
while it reconnects to the new primary; the messages stay in Redis' unacked set, restored by the visibility
timeout, and every lead they carried also has its lease in the router's own pending set.
"""

from __future__ import annotations

from typing import Any

import redis
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.redis import SentinelChannel, SentinelTransport

__all__ = ["FailoverSafeSentinelTransport", "use_failover_safe_sentinel"]


class _Channel(SentinelChannel):
    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        if self.connection.client is None:
            raise redis.ConnectionError("the broker connection was closed (Sentinel failover)")
        params: dict[str, Any] = super()._connparams(asynchronous)  # type: ignore[misc]
        return params


class FailoverSafeSentinelTransport(SentinelTransport):
    Channel = _Channel


def use_failover_safe_sentinel() -> None:
    """Make `sentinel://` broker URLs use this transport in this process."""
    TRANSPORT_ALIASES["sentinel"] = f"{__name__}:FailoverSafeSentinelTransport"
