"""The delivery benchmark's peer: a Celery app with the router's own Celery configuration (broker, acks late,
prefetch, events) and one task that does one Redis write. Started as
`celery -A tests.bench.peer_worker worker --concurrency 2 --queues <CELERY_QUEUE>`."""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

app = Celery("delivery_peer")
app.config_from_object("workers.celery_config")

_client: redis.Redis | None = None


@app.task(name="peer.write", ignore_result=True)
def write(lead_id: str) -> None:
    """One Redis write per message, the least a delivery could do."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["REDIS_URL"])
    _client.hset(os.environ["PEER_DONE_KEY"], lead_id, time.time())  # when, for the drain rate
