"""`lead-router consume`: take leads from a message queue (RabbitMQ or Redis, via kombu).

Each message is a JSON lead, as for `POST /v1/leads`, or - with `--source NAME` - a CRM's own payload mapped by
that source of the routing file (its content type says how to read it: JSON, form, text/plain JSON, SOAP).

A message is acked only once it is settled:
- taken: the lead is recorded (a 202's guarantee) and queued;
- refused (not decodable, not a lead, not mappable, or anything unexpected): kept with the reason and its raw
  body in a bounded list for an operator (`Keys.consume_rejected`), then acked - never acked unrecorded;
- Redis or the broker away: the message goes back to the queue and the consumer waits, with a jittered backoff
  growing to `max_backoff` seconds, one log line per wait; the broker connection itself is re-established by
  kombu, forever.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import time
from collections.abc import Callable, Collection
from typing import Any

import redis
import structlog
from kombu import Connection, Consumer, Message, Queue
from kombu.exceptions import KombuError, OperationalError
from kombu.mixins import ConsumerMixin

from router.intake.csv_import import decode_message, take_item
from router.intake.lead_intake import EnqueueFailed, IntakeResult
from router.intake.sources.decoding import decode_body
from router.intake.sources.intake import Source, take_payload
from workers.clock import iso
from workers.fetch.waits import FetchWaits
from workers.store.records import LeadStore

__all__ = ["LeadConsumer"]

log = structlog.get_logger(__name__)

#: Failures that are the infrastructure's, not the message's: wait them out, never reject for them.
_OUTAGES: tuple[type[BaseException], ...] = (redis.RedisError, EnqueueFailed, OperationalError, ConnectionError,
                                             TimeoutError)


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
        agents: Collection[str] | None = None,
        mapping: Source | None = None,
        max_backoff: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connection = connection
        self._queue = Queue(queue, durable=True)
        self._store = store
        self._enqueue = enqueue
        self._redis = client
        self._source = mapping.name if mapping is not None else source
        self._mapping = mapping
        self._pools = pools
        self._agents = agents
        self._fetches = FetchWaits(client, keys=store.keys, store=store)  # id-only events wait for their record
        self._rejected_key = store.keys.consume_rejected
        self._max_backoff = max_backoff
        self._sleep = sleep
        self._outages = 0

    def get_consumers(self, consumer_cls: Callable[..., Consumer], channel: Any) -> list[Consumer]:
        # on_message: kombu hands over the raw message, undecoded, so no decoding error can ack it behind our back.
        return [consumer_cls(queues=[self._queue], on_message=self.on_message, prefetch_count=10)]

    def on_message(self, message: Message) -> None:
        try:
            results = self._take(message)
        except _OUTAGES as exc:
            self._wait_out(message, exc)
            return
        except ValueError as exc:  # not decodable, not a lead, not mappable: the message's own fault
            self._refuse(message, str(exc))
            return
        except Exception as exc:  # a bug must not loop or vanish: the message is kept with the reason
            log.exception("consume_failed")
            self._refuse(message, f"internal error: {type(exc).__name__}: {exc}")
            return
        self._outages = 0
        for result in results:
            log.info("lead_consumed", lead_id=result.id, status=result.status, duplicate=result.duplicate)
        message.ack()

    def _take(self, message: Message) -> tuple[IntakeResult, ...]:
        if self._mapping is None:
            item = decode_message(_raw(message))
            taken = take_item(item, store=self._store, enqueue=self._enqueue, source=self._source, pools=self._pools,
                              agents=self._agents)
            return (taken,)
        payload = decode_body(_raw(message), content_type=message.content_type)
        result = take_payload(self._mapping, payload, store=self._store, enqueue=self._enqueue, pools=self._pools,
                              agents=self._agents, fetches=self._fetches)
        return result.leads

    def _refuse(self, message: Message, reason: str) -> None:
        """Keep the message and why, then ack it; if it cannot be kept now, it goes back to the queue."""
        body = _raw(message)
        entry = json.dumps({
            "at": iso(), "reason": reason[:500], "content_type": message.content_type,
            **_body_text(body),
        })
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.lpush(self._rejected_key, entry)
            pipe.ltrim(self._rejected_key, 0, 999)
            pipe.execute()
        except redis.RedisError as exc:
            self._wait_out(message, exc)
            return
        log.warning("lead_message_rejected", reason=reason[:200])
        message.ack()

    def _wait_out(self, message: Message, exc: BaseException) -> None:
        """Put the message back and wait before the next one: an outage is waited out, not hot-looped."""
        self._outages += 1
        delay = random.uniform(0.5, 1.0) * min(self._max_backoff, 0.5 * 2 ** min(self._outages - 1, 16))
        log.warning("consume_waiting_out_outage", error=type(exc).__name__, detail=str(exc)[:200],
                    outages=self._outages, retry_in_seconds=round(delay, 2))
        broker_errors: tuple[type[BaseException], ...] = (KombuError, OSError, *self.connection.connection_errors)
        with contextlib.suppress(*broker_errors):  # the broker is away too: unacked, it comes back with the connection
            message.requeue()
        self._sleep(delay)


def _raw(message: Message) -> bytes:
    body = message.body
    if body is None:
        return b""
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _body_text(body: bytes) -> dict[str, str]:
    """The body for the rejected list: text when it is UTF-8, else base64 (nothing is lost either way)."""
    try:
        return {"body": body[:16_000].decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_base64": base64.b64encode(body[:16_000]).decode("ascii")}
