"""Adaptive batching in the Deliverer, on a real Redis with Ryng on httpx.MockTransport (the rig of
test_deliverer): no backlog sends alone; a backlog waits once, then one run carries the waiting leads; a batch's
answer applies to all of them; a 4xx splits it; a run that dies mid-batch loses nothing."""

from __future__ import annotations

import pytest
import redis

from tests.unit.delivery.test_deliverer import Rig, build_rig, reply, timeout
from workers.delivery.ledger import DeliveryLedger
from workers.store.keys import Keys
from workers.store.limiter import RateLimiter

DELAY = 0.8


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


def batching_rig(client: redis.Redis, keys: Keys, *, rate_limit: int, max_batch: int = 10) -> Rig:
    return build_rig(client, keys, rate_limit=rate_limit, max_batch=max_batch, batch_delay_seconds=DELAY)


def accept(rig: Rig, count: int) -> list[str]:
    ids = [f"L{i}" for i in range(1, count + 1)]
    for index, lead_id in enumerate(ids):
        rig.accept(lead_id, number=f"+91980000{index:04d}")
    return ids


def waiting(rig: Rig, count: int) -> list[str]:
    """`count` leads, each run once: under the backlog they make, each waits for a batch."""
    ids = accept(rig, count)
    for lead_id in ids:
        assert rig.deliverer.run(lead_id) == "waiting-rate_limit"
    return ids


def test_with_no_backlog_a_lead_goes_alone_at_once(redis_client: redis.Redis, keys: Keys) -> None:
    rig = batching_rig(redis_client, keys, rate_limit=60)
    accept(rig, 1)
    rig.script += [reply(200)]
    assert rig.deliverer.run("L1") == "posted"
    assert len(rig.sent) == 1 and rig.sent[0]["agentMapping"] == "global" and rig.sent[0]["agents"] == ["alice"]
    assert rig.sleeps == [] and rig.record("L1").get("batch", "") == ""


def test_a_backlog_waits_once_then_one_request_carries_every_waiting_lead(
    redis_client: redis.Redis, keys: Keys
) -> None:
    rig = batching_rig(redis_client, keys, rate_limit=2)
    ids = accept(rig, 6)  # six leads for two free slots: a backlog
    for lead_id in ids:
        assert rig.deliverer.run(lead_id) == "waiting-rate_limit"
        parked = rig.parked_in(lead_id)
        assert parked is not None and 0 < parked <= DELAY
    assert rig.sent == [] and rig.counters.snapshot()["batch_deferred"] == 6
    assert redis_client.zcard(keys.ready) == 6
    rig.script += [reply(200)]
    assert rig.deliverer.run("L1") == "posted"  # its wait is over: it takes a slot and carries the others
    assert len(rig.sent) == 1
    body = rig.sent[0]
    assert body["agentMapping"] == "inline" and body["name"].startswith("batch-")
    rows = body["customerData"]["jsonData"]
    lead_slot = next(k.removesuffix("Name") for k, v in body["customFieldNames"].items() if v == "LeadId")
    assert sorted(row[lead_slot] for row in rows) == ids
    for row in rows:  # each row names the agent its own pick chose (fairness: alternating)
        assert row["agentsAssigned"] == [rig.record(row[lead_slot])["agent"]]
    assert sorted(rig.record(i)["agent"] for i in ids) == ["alice"] * 3 + ["bob"] * 3
    for lead_id in ids:
        record = rig.record(lead_id)
        assert record["status"] == "posted" and record["batch"] == body["name"] and record["batch_size"] == "6"
        assert record["attempts"] == "1" and record.get("possible_duplicate", "0") != "1"
        (attempt,) = rig.events(lead_id, "attempt")
        assert attempt["batch"] == body["name"] and attempt["batched_with"] == 5
        assert rig.parked_in(lead_id) is None
        assert redis_client.zscore(keys.pending, lead_id) is None
    assert redis_client.zcard(keys.ready) == 0
    assert rig.deliverer.run("L2") == "already-posted" and len(rig.sent) == 1
    assert rig.counters.snapshot()["batches"] == 1 and rig.counters.snapshot()["batched"] == 6


def test_a_rejected_batch_is_split_and_one_bad_lead_sinks_only_itself(redis_client: redis.Redis, keys: Keys) -> None:
    rig = batching_rig(redis_client, keys, rate_limit=2)
    ids = waiting(rig, 3)
    rig.script += [reply(400, {"error": True, "message": "invalid number"})]
    assert rig.deliverer.run("L1") == "retrying"
    for lead_id in ids:
        record = rig.record(lead_id)
        assert record["status"] == "retrying" and record["batch_split"] == "1" and record["attempts"] == "0"
        assert rig.events(lead_id, "batch_split")
    rig.script += [reply(200), reply(400, {"error": True, "message": "invalid number"}), reply(200)]
    steps = []
    for lead_id in ids:
        redis_client.delete(keys.rate)  # the limiter's minute passes
        steps.append(rig.deliverer.run(lead_id))
    assert steps == ["posted", "dead", "posted"]
    assert [body["agentMapping"] for body in rig.sent[1:]] == ["global"] * 3  # each alone


def test_a_failed_batch_retries_all_and_an_ambiguous_one_flags_each_next_attempt(
    redis_client: redis.Redis, keys: Keys
) -> None:
    rig = batching_rig(redis_client, keys, rate_limit=2)
    ids = waiting(rig, 3)
    rig.script += [timeout]
    assert rig.deliverer.run("L1") == "retrying"
    for lead_id in ids:
        record = rig.record(lead_id)
        assert record["status"] == "retrying" and record["last_outcome"] == "ambiguous"
        assert rig.parked_in(lead_id) is not None
    rig.script += [reply(200)] * 3
    for lead_id in ids:
        redis_client.delete(keys.rate)
        assert rig.deliverer.run(lead_id) == "posted"
        assert rig.record(lead_id)["possible_duplicate"] == "1"


def test_a_run_that_dies_holding_a_batch_loses_no_lead(redis_client: redis.Redis, keys: Keys) -> None:
    rig = batching_rig(redis_client, keys, rate_limit=2)
    ids = waiting(rig, 4)
    # A run gathers L2..L4 and dies before Ryng answers (its process killed): locks and leases are all there is.
    ledger = DeliveryLedger(redis_client, keys=keys, limiter=RateLimiter(redis_client, keys=keys, limit=2),
                            lease_seconds=30, lock_seconds=30, reservation_timeout_seconds=3600,
                            locked_retry_seconds=2)
    gathered = ledger.gather("L1", token="dead-run", limit=9)
    assert sorted(g.lead_id for g in gathered) == ["L2", "L3", "L4"]
    assert all(rig.record(i)["in_task"] == "1" and rig.record(i)["last_outcome"] == "sending" for i in ids[1:])
    for lead_id in ids[1:]:  # the lock and the lease run out
        redis_client.delete(keys.lead_lock(lead_id))
        redis_client.zadd(keys.pending, {lead_id: 1})
    assert sorted(rig.parking.claim_expired()) == ["L2", "L3", "L4"]
    rig.script += [reply(200)] * 4
    for lead_id in ids:
        redis_client.delete(keys.rate)
        assert rig.deliverer.run(lead_id) == "posted"
    for lead_id in ids[1:]:
        record = rig.record(lead_id)
        assert record["possible_duplicate"] == "1" and record["crashes"] == "1"


def test_a_batch_past_its_last_attempt_is_dead_lettered_whole(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, rate_limit=2, max_batch=10, batch_delay_seconds=DELAY, max_attempts=1)
    ids = waiting(rig, 3)
    rig.script += [reply(500, {"error": True, "message": "Failed to create Campaign"})]
    assert rig.deliverer.run("L1") == "dead"
    for lead_id in ids:
        record = rig.record(lead_id)
        assert record["status"] == "dead" and "gave up after 1 attempts" in record["dead_reason"]
        assert not redis_client.exists(keys.lead_lock(lead_id))
    assert len(rig.sent) == 1


def test_a_403_to_a_batch_pauses_delivery_and_every_lead_waits(redis_client: redis.Redis, keys: Keys) -> None:
    rig = batching_rig(redis_client, keys, rate_limit=2)
    ids = waiting(rig, 3)
    rig.script += [reply(403, {"error": True, "message": "Unauthorized Token"})]
    assert rig.deliverer.run("L1") == "waiting-ryng_unauthorized"
    assert rig.pause.state() is not None
    for lead_id in ids:
        record = rig.record(lead_id)
        assert record["status"] == "waiting" and record["wait_reason"] == "ryng_unauthorized"
        assert record["attempts"] == "0" and redis_client.sismember(keys.paused_held, lead_id)
