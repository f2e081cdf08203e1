"""The intake's hand-built task message is the message Celery itself publishes (on a real Redis broker)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from celery import Celery

from workers.task_message import DELIVER_TASK, DeliveryMessages

_VARYING_HEADERS = {"id", "root_id", "origin"}  # a new task id, and the publishing process's node name
_VARYING_PROPERTIES = {"correlation_id", "delivery_tag"}
_VARYING_EVENT = {"uuid", "root_id", "hostname", "pid", "clock", "timestamp", "utcoffset"}


@pytest.fixture
def celery_app(redis_url: str) -> Iterator[Celery]:
    app = Celery("task-message-test", broker=redis_url, set_as_current=False)
    app.conf.update(
        task_default_queue="leads", task_serializer="json", accept_content=["json"], task_send_sent_event=True,
        task_ignore_result=True, broker_connection_retry_on_startup=True,
    )
    yield app
    app.close()


def _decoded(raw: str | bytes) -> dict[str, Any]:
    envelope: dict[str, Any] = json.loads(raw)
    envelope["body"] = json.loads(base64.b64decode(envelope["body"]))
    return envelope


def _without(envelope: dict[str, Any], headers: set[str], properties: set[str]) -> dict[str, Any]:
    return {
        **envelope,
        "headers": {k: v for k, v in envelope["headers"].items() if k not in headers},
        "properties": {k: v for k, v in envelope["properties"].items() if k not in properties},
    }


@pytest.mark.parametrize("lead_id", ["L-1", "a:b c/\u00e9\u4e2d\"'\\", "x" * 300])
def test_the_message_and_sent_event_are_those_celery_publishes(
    celery_app: Celery, redis_client: redis.Redis, lead_id: str
) -> None:
    events = redis_client.pubsub()
    db = int(redis_client.connection_pool.connection_kwargs.get("db", 0))
    channel = f"/{db}.celeryev/task.sent"  # kombu names the event channel after the broker's database
    events.subscribe(channel)
    assert events.get_message(timeout=2) is not None  # the subscription is confirmed

    celery_app.send_task(
        DELIVER_TASK, args=(lead_id,), headers={"lead_id": lead_id, "request_id": "req-1"},
        ignore_result=True,  # as the deliver task is declared
    )
    published = redis_client.lpop("leads")
    assert published is not None
    sent = None
    deadline = time.monotonic() + 5
    while sent is None and time.monotonic() < deadline:
        message = events.get_message(timeout=0.5)
        if message and message["type"] == "message":
            sent = message["data"]
    events.close()
    assert sent is not None, "Celery published no task-sent event"

    ours = DeliveryMessages(celery_app, task_name=DELIVER_TASK, db=db).for_lead(lead_id, request_id="req-1")
    assert ours.queue_key == "leads" and ours.event_channel == channel
    theirs_message, our_message = _decoded(published), _decoded(ours.message)
    assert our_message["headers"]["id"] == our_message["headers"]["root_id"] == our_message["properties"][
        "correlation_id"] == ours.task_id
    assert _without(our_message, _VARYING_HEADERS, _VARYING_PROPERTIES) == _without(
        theirs_message, _VARYING_HEADERS, _VARYING_PROPERTIES)

    theirs_event, our_event = _decoded(sent), _decoded(ours.event)
    assert our_event["body"]["uuid"] == ours.task_id
    assert {k: v for k, v in our_event["body"].items() if k not in _VARYING_EVENT} == {
        k: v for k, v in theirs_event["body"].items() if k not in _VARYING_EVENT}
    envelope = {**_without(our_event, {"hostname"}, {"delivery_tag"}), "body": None}
    assert envelope == {**_without(theirs_event, {"hostname"}, {"delivery_tag"}), "body": None}
