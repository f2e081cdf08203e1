"""The start-up migration: a Redis written with the untagged layout (`lr:...`) keeps working under `{lr}:...`."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import redis

from config.routing import RoutingConfig
from workers.routing.agents import AgentStore
from workers.routing.assigner import Assigner, LeadFacts
from workers.store.connections import connect
from workers.store.keys import SCHEMA_VERSION, Keys
from workers.store.migrations import migrate
from workers.store.parking import Parking
from workers.store.records import LeadStore, fingerprint


@pytest.fixture
def keys(client: redis.Redis) -> Iterator[Keys]:
    """A prefix of this test's own; its keys in both layouts are deleted afterwards."""
    keys = Keys(f"mig-{uuid.uuid4().hex[:12]}")
    yield keys
    for pattern in (keys.match(), keys.legacy_match()):
        for key in client.scan_iter(pattern):
            client.delete(key)


def write_legacy(client: redis.Redis, prefix: str) -> None:
    """What the previous version left: a queued lead, a delivered one holding alice, a dead one, the rotation."""
    payload = {"id": "L1", "number": "998314242"}
    client.hset(f"{prefix}:lead:L1", mapping={
        "id": "L1", "status": "queued", "source": "api", "payload": json.dumps(payload, sort_keys=True),
        "fingerprint": fingerprint(payload), "attempts": "0", "crashes": "0",
    })
    client.rpush(f"{prefix}:events:L1", json.dumps({"at": "then", "event": "accepted"}))
    client.zadd(f"{prefix}:pending", {"L1": 10_000, "L2": 20_000})
    client.zadd(f"{prefix}:parked", {"L1": 5_000})
    client.set(f"{prefix}:lock:L1", "worker-1", px=600_000)
    client.hset(f"{prefix}:lead:L0", mapping={"id": "L0", "status": "dead", "dead_reason": "rejected"})
    client.zadd(f"{prefix}:dead", {"L0": 1_000})
    client.hset(f"{prefix}:metrics", mapping={"leads_accepted": "3"})
    client.hset(f"{prefix}:ryng:paused", mapping={"reason": "403", "since": "then"})
    routing = f"{prefix}:routing"
    client.hset(f"{routing}:ordinals", mapping={"alice": "1", "bob": "2"})
    client.set(f"{routing}:ordinal_seq", "2")
    client.sadd(f"{routing}:agents", "alice", "bob")
    client.sadd(f"{routing}:pools", "default")
    for name, ordinal, open_ in (("alice", 1, 1), ("bob", 2, 0)):
        client.hset(f"{routing}:agent:{name}", mapping={
            "ordinal": ordinal, "weight": 1, "capacity": 0, "wrap_up_ms": 0, "id": "", "open": open_,
            "assigned": open_,
        })
    client.zadd(f"{routing}:pool:default:members", {"alice": 1, "bob": 2})
    client.set(f"{routing}:pool:default:cursor", "alice")
    client.hset(f"{routing}:resv:L2", mapping={"agent": "alice", "pool": "default", "counted": "1", "number": ""})
    client.zadd(f"{routing}:reservations", {"L2": 9_999_999_999_999})


def routing() -> RoutingConfig:
    return RoutingConfig.model_validate({"agents": [{"name": "alice"}, {"name": "bob"}],
                                         "pools": [{"name": "default", "members": ["alice", "bob"]}]})


def test_old_data_is_read_through_the_new_keys_and_a_second_run_does_nothing(
    client: redis.Redis, keys: Keys
) -> None:
    write_legacy(client, keys.prefix)
    legacy = sorted(client.scan_iter(keys.legacy_match()))
    assert migrate(client, keys=keys) == len(legacy) == 19
    assert list(client.scan_iter(keys.legacy_match())) == []
    assert sorted(client.scan_iter(keys.match())) == sorted([*map(keys.from_legacy, legacy), keys.schema])
    assert client.get(keys.schema) == str(SCHEMA_VERSION)

    store = LeadStore(client, keys=keys)
    record = store.get("L1")
    assert record is not None and record.status == "queued"
    assert [event["event"] for event in store.events("L1")] == ["accepted"]
    assert store.accept(lead_id="L1", payload={"id": "L1", "number": "998314242"}, source="api").outcome == "exists"
    assert store.is_locked("L1") and 0 < client.pttl(keys.lead_lock("L1")) <= 600_000  # TTL kept
    parking = Parking(client, keys=keys, lease_seconds=30)
    assert parking.counts() == {"pending": 2, "parked": 1, "dead": 1}
    assert parking.dead_ids() == ["L0"]

    # The rotation goes on where it was (after alice), and alice's reservation for L2 is still hers to free.
    assigner = Assigner(client, keys=keys, routing=routing())
    assigner.sync()
    assert assigner.pick(LeadFacts(lead_id="L3", number="", fields={})).agent == "bob"
    agents = AgentStore(client, keys=keys)
    assert agents.get("alice").open == 1
    assert assigner.release(lead_id="L2")
    assert agents.get("alice").open == 0
    assert [pool.last_agent for pool in agents.pools()] == ["bob"]

    # Done: a second run (another process starting) moves nothing and writes nothing.
    before = {key: client.dump(key) for key in client.scan_iter(keys.match())}
    assert migrate(client, keys=keys) == 0
    assert {key: client.dump(key) for key in client.scan_iter(keys.match())} == before


def test_a_fresh_redis_is_only_marked(client: redis.Redis, keys: Keys) -> None:
    assert migrate(client, keys=keys) == 0
    assert list(client.scan_iter(keys.match())) == [keys.schema]


def test_an_index_written_before_the_migration_is_merged_and_nothing_is_overwritten(
    client: redis.Redis, keys: Keys
) -> None:
    """A process that wrote before migrating (an API started while Redis was down) loses no lead."""
    client.zadd(f"{keys.prefix}:pending", {"old": 10, "both": 30})
    client.zadd(keys.pending, {"new": 20, "both": 40})
    client.hset(f"{keys.prefix}:lead:X", "status", "queued")
    client.hset(keys.lead("X"), "status", "posted")
    assert migrate(client, keys=keys) == 1
    assert client.zrange(keys.pending, 0, -1, withscores=True) == [("old", 10), ("new", 20), ("both", 30)]
    assert client.hget(keys.lead("X"), "status") == "posted"
    assert list(client.scan_iter(keys.legacy_match())) == [f"{keys.prefix}:lead:X"]  # left for an operator


def test_keys_of_other_prefixes_are_left_alone(client: redis.Redis, keys: Keys) -> None:
    other = f"{keys.prefix}x:lead:L1"
    client.set(other, "1")
    try:
        assert migrate(client, keys=keys) == 0
        assert client.get(other) == "1"
    finally:
        client.delete(other)


def test_an_unreachable_redis_raises_unless_the_caller_starts_without_it() -> None:
    down = connect("redis://127.0.0.1:1/0", timeout=0.5)
    with pytest.raises(redis.ConnectionError):
        migrate(down, keys=Keys())
    assert migrate(down, keys=Keys(), unreachable_ok=True) == 0
