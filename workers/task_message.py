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
import re
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


class _JsonTemplate:
    """A JSON document rendered once, with `"@@name@@"` strings as holes that `render` fills with JSON values.

    Filling a handful of holes in pre-rendered text costs a few small `json.dumps` calls instead of encoding the
    whole document (Celery's headers, properties and envelope) for every lead.
    """

    _HOLE = re.compile(r'"@@([a-z_]+)@@"')

    def __init__(self, document: Any) -> None:
        pieces = self._HOLE.split(json.dumps(document))
        self._literals = pieces[0::2]
        self._names = pieces[1::2]

    @staticmethod
    def hole(name: str) -> str:
        return f"@@{name}@@"

    def render(self, values: dict[str, Any]) -> str:
        literals, out = self._literals, [self._literals[0]]
        for index, name in enumerate(self._names):
            out.append(json.dumps(values[name]))
            out.append(literals[index + 1])
        return "".join(out)


class DeliveryMessages:
    """Builds the broker message (and task-sent event) of one task for a lead, as `task.apply_async` would.

    Celery's own `create_task_message` makes a template once; each lead's message fills in what changes (ids,
    the argument and its repr, the lead and request ids), so building one costs a few small JSON encodings and
    two base64 encodings. `db` is the Redis database of the broker (kombu puts it in the event channel's name).
    Only the defaults of kombu's Redis transport are supported (no `global_keyprefix`, default fanout prefix,
    priority 0); `supported(app)` says whether the app's configuration keeps to them.
    """

    def __init__(self, app: Celery, *, task_name: str, db: int) -> None:
        self._app = app
        conf = app.conf
        queue = str(conf.task_default_queue)
        self._queue_key = broker_queue(queue)
        self._event_channel = f"/{db}.{_EVENT_EXCHANGE}/{_SENT.replace('-', '.')}"
        self._repr_max = int(app.amqp.argsrepr_maxsize)
        headers, properties, body, sent_event = app.amqp.create_task_message(
            "", task_name, ("",), {}, reply_to=app.thread_oid, create_sent_event=bool(conf.task_send_sent_event),
            ignore_result=True,
        )
        hole = _JsonTemplate.hole
        content_type, content_encoding, _ = serialize(body, serializer=str(conf.task_serializer))
        self._body = _JsonTemplate([[hole("lead_id")], {}, body[2]])
        self._message = _JsonTemplate({
            "body": hole("body"),
            "content-encoding": content_encoding,
            "content-type": content_type,
            "headers": {
                **headers, "id": hole("task_id"), "root_id": hole("task_id"), "argsrepr": hole("argsrepr"),
                "lead_id": hole("lead_id"), "request_id": hole("request_id"),
            },
            "properties": {
                **properties,
                "correlation_id": hole("task_id"),
                "delivery_mode": 2,  # persistent: the default queue's exchange
                "delivery_info": {"exchange": "", "routing_key": queue},
                "priority": 0,
                "body_encoding": "base64",
                "delivery_tag": hole("tag"),
            },
        })
        self._sent: _JsonTemplate | None = None
        self._event: _JsonTemplate | None = None
        if sent_event is not None:
            hostname = anon_nodename()
            self._sent = _JsonTemplate({
                **sent_event, "uuid": hole("task_id"), "root_id": hole("task_id"), "args": hole("argsrepr"),
                "queue": queue, "exchange": "", "routing_key": queue, "hostname": hostname,
                "utcoffset": hole("utcoffset"), "pid": os.getpid(), "clock": hole("clock"),
                "timestamp": hole("timestamp"), "type": _SENT,
            })
            self._event = _JsonTemplate({
                "body": hole("body"),
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": {"hostname": hostname},
                "properties": {
                    "delivery_mode": 1,  # transient, as Celery's event dispatcher sends events
                    "delivery_info": {"exchange": _EVENT_EXCHANGE, "routing_key": _SENT.replace("-", ".")},
                    "priority": 0,
                    "body_encoding": "base64",
                    "delivery_tag": hole("tag"),
                },
            })

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
        argsrepr = saferepr((lead_id,), self._repr_max)
        message = self._message.render({
            "body": _base64(self._body.render({"lead_id": lead_id})), "task_id": task_id, "argsrepr": argsrepr,
            "lead_id": lead_id, "request_id": request_id, "tag": str(uuid.uuid4()),
        })
        event = ""
        if self._sent is not None and self._event is not None:
            sent = self._sent.render({
                "task_id": task_id, "argsrepr": argsrepr, "utcoffset": utcoffset(),
                "clock": self._app.clock.forward(),  # type: ignore[attr-defined]
                "timestamp": time.time(),
            })
            event = self._event.render({"body": _base64(sent), "tag": str(uuid.uuid4())})
        return QueuedTask(
            task_id=task_id, queue_key=self._queue_key, message=message, event_channel=self._event_channel,
            event=event,
        )


def _base64(payload: bytes | str) -> str:
    raw = payload.encode() if isinstance(payload, str) else payload
    return base64.b64encode(raw).decode("ascii")
