"""The broker message of a delivery task, built in memory so the intake can write it in its own Redis call.

With Redis as Celery's broker, publishing a task is an `LPUSH` of a JSON envelope onto the queue's list, and
Celery's `task-sent` event (what Flower shows as "sent") is a `PUBLISH` on the event exchange's channel. Both
are built here as Celery and kombu build them (from a template made by Celery's own `create_task_message`,
in kombu's envelope), so the intake's one Lua call (`workers/lua/lead_intake.lua`) can record a lead and queue it
atomically, without a second round trip or a blocking publish. A worker cannot tell the difference.

Only for a Redis broker on the same Redis server and database as the lead store (`same_redis`); any other
broker (RabbitMQ, another Redis) is published to through Celery as usual.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from celery import Celery
from celery.utils.nodenames import anon_nodename
from celery.utils.saferepr import saferepr
from celery.utils.time import utcoffset
from kombu.serialization import dumps as serialize
from redis.connection import parse_url

from workers.store.keys import broker_queue

__all__ = ["DELIVER_TASK", "DeliveryMessages", "QueuedTask", "same_redis"]

#: The Celery name of the delivery task (workers/tasks.py).
DELIVER_TASK = "lead_router.deliver"

_EVENT_EXCHANGE = "celeryev"
_SENT = "task-sent"


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """What the intake writes: the task's envelope for `queue_key`, and the task-sent event for `event_channel`."""

    task_id: str
    queue_key: str
    message: str
    event_channel: str
    event: str  # '' when the app sends no task-sent events


def same_redis(store_url: str, broker_url: str) -> bool:
    """True when the broker URL names the same Redis server and database as the lead store's URL."""
    if not broker_url.startswith(("redis://", "rediss://", "unix://")):
        return False
    try:
        store, broker = parse_url(store_url), parse_url(broker_url)  # type: ignore[no-untyped-call]
    except ValueError:
        return False
    fields = ("host", "port", "path", "db", "username", "password")
    return all(store.get(name) == broker.get(name) for name in fields) and (
        store_url.startswith("rediss://") == broker_url.startswith("rediss://")
    )


class DeliveryMessages:
    """Builds the broker message (and task-sent event) of one task for a lead, as `task.apply_async` would.

    Celery's own `create_task_message` makes a template once; each lead's message fills in what changes (ids,
    the argument and its repr, the lead and request ids), so building one costs a few dictionary updates and
    one JSON encoding. `db` is the Redis database of the broker (kombu puts it in the event channel's name).
    Only the defaults of kombu's Redis transport are supported (no `global_keyprefix`, default fanout prefix,
    priority 0); `supported(app)` says whether the app's configuration keeps to them.
    """

    def __init__(self, app: Celery, *, task_name: str, db: int) -> None:
        self._app = app
        conf = app.conf
        self._queue = str(conf.task_default_queue)
        self._queue_key = broker_queue(self._queue)
        self._event_channel = f"/{db}.{_EVENT_EXCHANGE}/{_SENT.replace('-', '.')}"
        self._hostname = anon_nodename()
        self._pid = os.getpid()
        self._repr_max = int(app.amqp.argsrepr_maxsize)
        headers, properties, body, sent_event = app.amqp.create_task_message(
            "", task_name, ("",), {}, reply_to=app.thread_oid, create_sent_event=bool(conf.task_send_sent_event),
            ignore_result=True,
        )
        self._headers: dict[str, Any] = headers
        self._properties: dict[str, Any] = properties
        self._embed: dict[str, Any] = body[2]
        self._sent_event: dict[str, Any] | None = sent_event
        self._content_type, self._content_encoding, _ = serialize(body, serializer=str(conf.task_serializer))

    @staticmethod
    def supported(app: Celery) -> bool:
        """Whether the app's broker options keep to the transport defaults these messages assume."""
        options: dict[str, Any] = dict(app.conf.broker_transport_options or {})
        custom = {"global_keyprefix", "fanout_prefix", "fanout_patterns", "priority_steps", "sep"}
        return (
            not custom & set(options)
            and str(app.conf.event_exchange) == _EVENT_EXCHANGE
            and str(app.conf.task_serializer) == "json"
        )

    def for_lead(self, lead_id: str, *, request_id: str) -> QueuedTask:
        """The task `deliver(lead_id)`, with `lead_id` and `request_id` in its headers (as `enqueue` sends it)."""
        task_id = str(uuid.uuid4())
        args = [lead_id]
        argsrepr = saferepr((lead_id,), self._repr_max)
        headers = {
            **self._headers, "id": task_id, "root_id": task_id, "argsrepr": argsrepr,
            "lead_id": lead_id, "request_id": request_id,
        }
        properties = {
            **self._properties,
            "correlation_id": task_id,
            "delivery_mode": 2,  # persistent: the default queue's exchange
            "delivery_info": {"exchange": "", "routing_key": self._queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        }
        message = json.dumps({
            "body": _base64(json.dumps([args, {}, self._embed])),
            "content-encoding": self._content_encoding,
            "content-type": self._content_type,
            "headers": headers,
            "properties": properties,
        })
        event = ""
        if self._sent_event is not None:
            event = self._event({
                **self._sent_event, "uuid": task_id, "root_id": task_id, "args": argsrepr,
                "queue": self._queue, "exchange": "", "routing_key": self._queue,
            })
        return QueuedTask(
            task_id=task_id, queue_key=self._queue_key, message=message, event_channel=self._event_channel,
            event=event,
        )

    def _event(self, fields: dict[str, Any]) -> str:
        event = {
            **fields, "hostname": self._hostname, "utcoffset": utcoffset(), "pid": self._pid,
            "clock": self._app.clock.forward(),  # type: ignore[attr-defined]
            "timestamp": time.time(), "type": _SENT,
        }
        return json.dumps({
            "body": _base64(json.dumps(event)),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"hostname": self._hostname},
            "properties": {
                "delivery_mode": 1,  # transient, as Celery's event dispatcher sends events
                "delivery_info": {"exchange": _EVENT_EXCHANGE, "routing_key": _SENT.replace("-", ".")},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        })


def _base64(payload: bytes | str) -> str:
    raw = payload.encode() if isinstance(payload, str) else payload
    return base64.b64encode(raw).decode("ascii")
