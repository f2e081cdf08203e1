"""The queue consumer on a real broker (Redis transport, and RabbitMQ where one answers) and a real Redis store.

The consumer runs in a thread of the test; its waits are recorded instead of slept.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from amqp.exceptions import ChannelError
from kombu import Connection, Exchange, Producer, Queue

from config.sources_models import SourceConfig
from router.intake.queue_consumer import LeadConsumer
from router.intake.sources.intake import Source
from router.intake.sources.mapping import SourceMapping
from tests.fixtures import crm
from tests.harness import Stack, cli, free_port, wait_until
from workers.store.embedded import start_embedded
from workers.store.keys import Keys
from workers.store.records import LeadStore

CREATED: list[str] = []
AMQP_URL = os.environ.get("LEAD_ROUTER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

#: Fourteen messages no lead can be made of, as queues deliver them: (body, content type, encoding).
UNDECODABLE: list[tuple[bytes, str, str]] = [
    (b"\x00\x01\x02\xff", "application/octet-stream", "binary"),
    (b'{"id": "U1", "number": ', "application/json", "utf-8"),
    (b'{"id": "U2", "number": NaN}', "application/json", "utf-8"),
    (b"[" * 50_000, "application/json", "utf-8"),
    (b"\xff\xfe\xfa", "application/json", "utf-8"),
    (b'["not", "an", "object"]', "application/json", "utf-8"),
    (b'"just a string"', "application/json", "utf-8"),
    (b"", "application/json", "utf-8"),
    (b"hello there", "text/plain", "utf-8"),
    (b"<lead><id>U3</id></lead>", "application/xml", "utf-8"),
    (b"id=U4&number=998314242", "application/x-www-form-urlencoded", "utf-8"),
    (b'{"id": "U5"}', "application/json", "utf-8"),
    (b'{"id": "U6", "number": "12"}', "application/json", "utf-8"),
    (b'{"id": "U7", "number": "998314242", "colour": "red"}', "application/json", "utf-8"),
]


class Recorder:
    def __init__(self) -> None:
        self.waits: list[float] = []
        self.on_wait: Callable[[int], None] = lambda _: None

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.on_wait(len(self.waits))


@contextmanager
def running(consumer: LeadConsumer) -> Iterator[LeadConsumer]:
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        yield consumer
    finally:
        consumer.should_stop = True
        thread.join(15)


def publish(url: str, queue: str, messages: list[tuple[bytes, str, str]]) -> None:
    with Connection(url) as connection:
        target = Queue(queue, exchange=Exchange(queue, type="direct"), routing_key=queue, durable=True)
        producer = Producer(connection.channel(), exchange=target.exchange, routing_key=queue)
        target.maybe_bind(connection)
        target.declare()
        for body, content_type, encoding in messages:
            producer.publish(body, content_type=content_type, content_encoding=encoding, declare=[target],
                             retry=True)


@pytest.fixture
def store(redis_url: str, key_prefix: str) -> Iterator[tuple[LeadStore, redis.Redis]]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield LeadStore(client, keys=Keys(key_prefix)), client
    client.close()


def consumer_for(url: str, queue: str, store: LeadStore, client: redis.Redis, queued: list[str],
                 recorder: Recorder, mapping: Source | None = None) -> LeadConsumer:
    connection = Connection(url)
    return LeadConsumer(connection, queue=queue, store=store, enqueue=queued.append, client=client, source="queue",
                        mapping=mapping, sleep=recorder)


def rejected(client: redis.Redis, key_prefix: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in client.lrange(Keys(key_prefix).consume_rejected, 0, -1)]


def messages_left(url: str, queue: str) -> int:
    with Connection(url) as connection:
        channel = connection.channel()
        try:
            return int(channel.queue_declare(queue, passive=True).message_count)
        except ChannelError:  # the Redis transport has no empty queue to declare passively
            return 0
        finally:
            channel.close()


def check_nothing_vanishes(url: str, store: tuple[LeadStore, redis.Redis], key_prefix: str) -> None:
    lead_store, client = store
    queue = f"crm-{uuid.uuid4().hex[:8]}"
    CREATED.append(queue)
    good = [(json.dumps({"id": f"G{n}", "number": f"99831424{n}"}).encode(), "application/json", "utf-8")
            for n in range(3)]
    publish(url, queue, UNDECODABLE + good)
    queued: list[str] = []
    recorder = Recorder()
    with running(consumer_for(url, queue, lead_store, client, queued, recorder)):
        wait_until(lambda: len(rejected(client, key_prefix)) == len(UNDECODABLE) and len(queued) == 3, timeout=30,
                   what="every message settled")
    kept = rejected(client, key_prefix)
    assert sorted(queued) == ["G0", "G1", "G2"] and recorder.waits == []
    assert all(entry["reason"] for entry in kept)
    assert sum("body_base64" in entry for entry in kept) == 2  # the binary bodies are kept too, in base64
    assert messages_left(url, queue) == 0  # and nothing is left unacked or requeued


def test_no_undecodable_message_vanishes_on_the_redis_transport(
    redis_url: str, store: tuple[LeadStore, redis.Redis], key_prefix: str
) -> None:
    check_nothing_vanishes(redis_url, store, key_prefix)


def test_no_undecodable_message_vanishes_on_rabbitmq(store: tuple[LeadStore, redis.Redis], key_prefix: str) -> None:
    try:
        with Connection(AMQP_URL, connect_timeout=2) as connection:
            connection.ensure_connection(max_retries=1, timeout=2)
    except Exception:
        pytest.skip(f"no RabbitMQ answers at {AMQP_URL}: the RabbitMQ consumer test is skipped")
    check_nothing_vanishes(AMQP_URL, store, key_prefix)


@pytest.fixture(autouse=True)
def _leave_no_queue_on_rabbitmq(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "rabbitmq" not in request.node.name:
        return
    with Connection(AMQP_URL, connect_timeout=2) as connection:
        channel = connection.channel()
        for queue in CREATED:
            with contextlib.suppress(Exception):
                channel.queue_delete(queue)
        channel.close()
    CREATED.clear()


def test_a_source_maps_each_message_by_its_content_type(
    redis_url: str, store: tuple[LeadStore, redis.Redis], key_prefix: str
) -> None:
    lead_store, client = store
    config = SourceConfig.model_validate({"name": "lsq", "preset": "leadsquared", "auth": "none",
                                          "country_code": "+91"})
    source = Source(config=config, mapping=SourceMapping(config))
    queue = f"crm-{uuid.uuid4().hex[:8]}"
    form = b"ProspectID=f-1&FirstName=Ravi&Mobile=98450%2098450"
    publish(redis_url, queue, [
        (json.dumps(crm.LEADSQUARED_CREATE).encode(), "application/json", "utf-8"),
        (form, "application/x-www-form-urlencoded", "utf-8"),
        (json.dumps({"ProspectID": "no-phone"}).encode(), "text/plain", "utf-8"),
    ])
    queued: list[str] = []
    with running(consumer_for(redis_url, queue, lead_store, client, queued, Recorder(), mapping=source)):
        wait_until(lambda: len(queued) == 2 and rejected(client, key_prefix), timeout=30, what="three settled")
    assert queued == ["lsq:5d0b6b8e-7d3b-11ee-b962-0242ac120002", "lsq:f-1"]
    record = lead_store.get("lsq:f-1")
    assert record is not None and record.number == "+919845098450" and record.source == "lsq"
    assert "no phone number: tried 'Mobile', 'Phone'" in rejected(client, key_prefix)[0]["reason"]


def test_an_id_only_event_is_kept_waiting_for_its_record_and_acked(
    redis_url: str, store: tuple[LeadStore, redis.Redis], key_prefix: str
) -> None:
    lead_store, client = store
    config = SourceConfig.model_validate({"name": "hs", "preset": "hubspot", "auth": "none",
                                          "fetch": {"token_env": "HUBSPOT_TOKEN"}})
    source = Source(config=config, mapping=SourceMapping(config))
    queue = f"crm-{uuid.uuid4().hex[:8]}"
    publish(redis_url, queue, [(json.dumps(crm.HUBSPOT_APP_CREATION).encode(), "application/json", "utf-8")])
    queued: list[str] = []
    with running(consumer_for(redis_url, queue, lead_store, client, queued, Recorder(), mapping=source)):
        wait_until(lambda: lead_store.get("hs:65059681032"), timeout=30, what="the id-only event kept")
    record = lead_store.get("hs:65059681032")
    assert record is not None and record.status == "fetching" and record.number == ""
    assert client.zscore(Keys(key_prefix).fetches_due, "hs:65059681032") is not None
    assert queued == [] and rejected(client, key_prefix) == []  # not delivered before its record is read
    assert messages_left(redis_url, queue) == 0


def test_a_redis_outage_is_waited_out_with_backoff_and_loses_nothing(
    redis_url: str, store: tuple[LeadStore, redis.Redis], key_prefix: str
) -> None:
    lead_store, client = store
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2, decode_responses=True)
    queue = f"crm-{uuid.uuid4().hex[:8]}"
    publish(redis_url, queue, [(json.dumps({"id": f"O{n}", "number": "998314242"}).encode(), "application/json",
                                "utf-8") for n in range(3)])
    queued: list[str] = []
    recorder = Recorder()
    consumer = consumer_for(redis_url, queue, LeadStore(dead, keys=Keys(key_prefix)), dead, queued, recorder)

    def recover(waits: int) -> None:
        if waits == 6:  # Redis is back: the consumer's store answers again
            consumer._store, consumer._redis = lead_store, client

    recorder.on_wait = recover
    with running(consumer):
        wait_until(lambda: len(queued) == 3, timeout=60, what="the three leads taken after the outage")
    assert sorted(queued) == ["O0", "O1", "O2"]
    assert len(recorder.waits) == 6 and rejected(client, key_prefix) == []
    ceilings = [min(30.0, 0.5 * 2 ** n) for n in range(6)]
    assert all(ceiling / 2 <= wait <= ceiling for wait, ceiling in zip(recorder.waits, ceilings, strict=True))
    dead.close()


@pytest.mark.fault
def test_the_consumer_rides_out_a_broker_and_redis_restart(
    make_stack: Callable[..., Stack], tmp_path: Path, key_prefix: str
) -> None:
    """`lead-router consume` on an embedded Valkey (its broker and its store), stopped and started again."""
    data_dir = tmp_path / "valkey"
    server = start_embedded(data_dir=data_dir)
    port = server.port
    url = f"redis://127.0.0.1:{port}/0"
    try:
        stack = make_stack()
        stack.redis_url = url
        consumer = stack.spawn("consumer", cli("consume", "--queue", "crm-restart"))
        client = redis.Redis.from_url(url, decode_responses=True)
        messages = [(json.dumps({"id": f"B{n}", "number": "998314242"}).encode(), "application/json", "utf-8")
                    for n in range(4)]
        publish(url, "crm-restart", messages[:2])
        wait_until(lambda: client.exists(Keys(key_prefix).lead("B0"), Keys(key_prefix).lead("B1")) == 2, timeout=30,
                   what="the first two leads")
        server.stop()
        time.sleep(3)  # an outage of a few seconds: the consumer must neither exit nor spin
        server = start_embedded(data_dir=data_dir, port=port)
        client = redis.Redis.from_url(url, decode_responses=True)
        publish(url, "crm-restart", messages[2:])
        wait_until(lambda: client.exists(*(Keys(key_prefix).lead(f"B{n}") for n in range(4))) == 4, timeout=60,
                   what="all four leads after the restart")
        assert consumer.alive(), consumer.log()[-3000:]
        log = consumer.log()
        assert "Connection to broker lost" in log  # the outage was seen, and waited out:
        assert 1 <= log.count("Broker connection error, trying again") <= 10, log[-3000:]
    finally:
        server.stop()
