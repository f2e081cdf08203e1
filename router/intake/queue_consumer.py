"""`lead-router consume`: take leads from a message queue (RabbitMQ or Redis, via kombu).

Each message is a JSON lead, as for `POST /v1/leads`. A valid lead is recorded and queued, then the message is
acked; an invalid one is acked too and kept, with the reason, in a bounded list for an operator
(`Keys.consume_rejected`); when Redis or the broker is down the message is requeued, never lost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

import redis
import structlog
from kombu import Connection, Consumer, Message, Queue
from kombu.mixins import ConsumerMixin

from router.intake.csv_import import decode_message, take_item
from workers.clock import iso
from workers.store.records import LeadStore

log = structlog.get_logger(__name__)


class LeadConsumer(ConsumerMixin):
    def __init__(
        self,
        connection: Connection,
        *,
        queue: str,
        store: LeadStore,
        enqueue: Callable[[str], None],
        client: redis.Redis,
        source: str,
        pools: Collection[str] | None = None,
    ) -> None:
        self.connection = connection
        self._queue = Queue(queue, durable=True)
        self._store = store
        self._enqueue = enqueue
        self._redis = client
        self._source = source
        self._pools = pools
        self._rejected_key = store.keys.consume_rejected

    def get_consumers(self, consumer_cls: Callable[..., Consumer], channel: Any) -> list[Consumer]:
        return [consumer_cls(queues=[self._queue], callbacks=[self.on_message], accept=["json", "text/plain"],
                             prefetch_count=10)]

    def on_message(self, body: Any, message: Message) -> None:
        try:
            result = take_item(
                decode_message(body), store=self._store, enqueue=self._enqueue, source=self._source, pools=self._pools
            )
        except ValueError as exc:
            self._reject(body, str(exc))
            message.ack()
            return
        except Exception:  # Redis or broker trouble: put the message back, it is not lost
            log.exception("consume_failed_requeued")
            message.requeue()
            return
        log.info("lead_consumed", lead_id=result.id, status=result.status, duplicate=result.duplicate)
        message.ack()

    def _reject(self, body: Any, reason: str) -> None:
        text = body.decode("utf-8", "replace") if isinstance(body, bytes | bytearray) else json.dumps(body, default=str)
        entry = json.dumps({"at": iso(), "reason": reason[:500], "body": text[:4000]})
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(self._rejected_key, entry)
        pipe.ltrim(self._rejected_key, 0, 999)
        pipe.execute()
        log.warning("lead_message_rejected", reason=reason[:200])
