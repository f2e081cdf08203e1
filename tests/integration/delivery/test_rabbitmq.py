"""The pipeline and the worker-kill fault test with RabbitMQ as the broker (quorum queues, publisher confirms).

Redis still holds the router's state; only Celery's messages go through RabbitMQ. Skipped, saying so, where no
RabbitMQ answers on 127.0.0.1:5672 (set LEAD_ROUTER_TEST_AMQP_URL to use another).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
from kombu import Connection

from tests.harness import Stack
from tests.integration.delivery import test_faults

AMQP_URL = os.environ.get("LEAD_ROUTER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def _rabbitmq_answers() -> bool:
    try:
        with Connection(AMQP_URL, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
            return True
    except Exception:
        return False


@pytest.fixture
def rabbit_stack(make_stack: Callable[..., Stack]) -> Iterator[Callable[..., Stack]]:
    if not _rabbitmq_answers():
        pytest.skip(f"no RabbitMQ answers at {AMQP_URL}: the RabbitMQ broker tests are skipped")
    queue = f"leads-test-{uuid.uuid4().hex[:8]}"  # a queue of this test's own on the shared broker

    def build(**settings: str) -> Stack:
        return make_stack(**({"CELERY_BROKER_URL": AMQP_URL, "CELERY_QUEUE": queue} | settings))

    yield build
    with Connection(AMQP_URL) as connection:  # leave nothing behind on the broker
        channel = connection.channel()
        try:
            channel.queue_delete(queue)
        finally:
            channel.close()


def test_the_pipeline_runs_over_rabbitmq_on_a_quorum_queue(rabbit_stack: Callable[..., Stack]) -> None:
    stack = rabbit_stack()
    stack.start_sandbox("--call-delay", "0.3", "--callback-retry", "0.2")
    stack.start_api()
    stack.start_worker()
    ids = [f"R{i:02d}" for i in range(20)]
    assert test_faults.post_all(stack, ids) == [202] * len(ids)
    for lead_id in ids:
        stack.wait_status(lead_id, "connected", "completed", timeout=60)
    campaigns = stack.campaigns()
    assert Counter(str(c["name"]) for c in campaigns) == Counter(ids)  # one campaign per lead
    assert Counter(c["agents"][0] for c in campaigns) == {"alice": 10, "bob": 10}
    with Connection(stack.settings["CELERY_BROKER_URL"]) as connection:
        declared = connection.channel().queue_declare(stack.settings["CELERY_QUEUE"], passive=True)
        assert declared.message_count == 0  # every message acknowledged
    assert "quorum" in _queue_type(stack.settings["CELERY_QUEUE"])


@pytest.mark.fault
def test_sigkill_of_a_worker_mid_burst_loses_nothing_over_rabbitmq(rabbit_stack: Callable[..., Stack]) -> None:
    test_faults.test_sigkill_worker_mid_burst_loses_nothing(rabbit_stack)


def _queue_type(queue: str) -> str:
    """The queue's type as RabbitMQ declared it: redeclaring a quorum queue as classic is refused."""
    with Connection(AMQP_URL) as connection:
        channel = connection.channel()
        try:
            channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "classic"})
        except Exception as exc:
            return f"quorum (a classic redeclaration was refused: {type(exc).__name__})"
        finally:
            with contextlib.suppress(Exception):
                channel.close()
    return "classic"
