"""The API's way in for a lead: one asynchronous Redis call records it and queues its delivery.

`FrontDoor.take` runs `workers/lua/lead_intake.lua`: the lead's record, its first history entry, its lease,
the status `queued`, the Celery task message on the broker's queue and the task-sent event, all at once.
So a 202 sent after it means the lead is kept *and* queued; a crash anywhere leaves either nothing or both
(and the lease re-queues a lead whose message was lost). With `min_replicas`, the call is followed by a
`WAIT` on the same connection, and too few replicas is a `NotReplicatedError` (503). Without `messages` (the
broker is not the lead store's Redis) the call only records the lead; the caller publishes and marks it queued
the usual way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from workers.clock import now_ms
from workers.lua import load_async_script
from workers.store.keys import Keys
from workers.store.records import MAX_EVENTS, Accepted, accept_outcome, new_record, require_replicas
from workers.task_message import DeliveryMessages

__all__ = ["WEBHOOK_TTL_SECONDS", "FrontDoor"]

WEBHOOK_TTL_SECONDS = 7 * 24 * 3600


class FrontDoor:
    """Records and queues leads through a `redis.asyncio` client (the API's event loop never waits on a thread)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        keys: Keys,
        lease_seconds: float,
        messages: DeliveryMessages | None,
        min_replicas: int = 0,
        replica_timeout_ms: int = 1000,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._min_replicas = min_replicas
        self._replica_timeout_ms = replica_timeout_ms
        self._lease_ms = int(lease_seconds * 1000)
        self._messages = messages
        self._intake = load_async_script(client, "lead_intake")

    @property
    def queues_itself(self) -> bool:
        """True when `take` also queues the delivery (the broker is this Redis)."""
        return self._messages is not None

    async def take(
        self,
        *,
        lead_id: str,
        payload: Mapping[str, Any],
        source: str,
        request_id: str = "",
        webhook_id: str | None = None,
    ) -> Accepted:
        """Record the lead (and queue it, with `messages`), or report what is already there."""
        stamp = now_ms()
        record = new_record(lead_id=lead_id, payload=payload, source=source, stamp=stamp)
        task = self._messages.for_lead(lead_id, request_id=request_id) if self._messages else None
        keys = [self._keys.lead(lead_id), self._keys.lead_events(lead_id), self._keys.pending, self._keys.created]
        if task is not None:
            keys.append(task.queue_key)
            if webhook_id:
                keys.append(self._keys.webhook(webhook_id))
        entry = json.dumps({"at": record["created_at"], "event": "accepted", "source": source}, sort_keys=True)
        args: list[str | int] = [
            record["fingerprint"], stamp + self._lease_ms, lead_id, entry, MAX_EVENTS, WEBHOOK_TTL_SECONDS,
            task.message if task else "", task.event_channel if task else "", task.event if task else "", stamp,
            json.dumps(record),
        ]
        if not self._min_replicas:
            outcome, status = await self._intake(keys=keys, args=args)
            return Accepted(outcome=accept_outcome(outcome), status=str(status))
        # The call and WAIT go on one connection: WAIT counts the replicas holding this connection's writes.
        pipe = self._redis.pipeline(transaction=False)
        await self._intake(keys=keys, args=args, client=pipe)
        pipe.execute_command("WAIT", self._min_replicas, self._replica_timeout_ms)
        (outcome, status), replicas = await pipe.execute()
        require_replicas(replicas, wanted=self._min_replicas, timeout_ms=self._replica_timeout_ms)
        return Accepted(outcome=accept_outcome(outcome), status=str(status))

    async def webhook_lead(self, webhook_id: str) -> tuple[str, str] | None:
        """The lead (id, status) an earlier delivery with this `webhook-id` carried, if it is still there."""
        lead_id = await self._redis.get(self._keys.webhook(webhook_id))
        if not lead_id:
            return None
        status = await self._redis.hget(self._keys.lead(str(lead_id)), "status")
        return (str(lead_id), str(status)) if status else None
