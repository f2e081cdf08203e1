"""The parked / pending / dead sets on a real Redis: due claims exactly once, lease expiry, dead letters."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from workers.store.connections import connect
from workers.store.keys import Keys
from workers.store.parking import Parking
from workers.store.records import LeadStore


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def parking(redis_client: redis.Redis, keys: Keys) -> Parking:
    return Parking(redis_client, keys=keys, lease_seconds=30)


def now_ms() -> int:
    return int(time.time() * 1000)


def test_park_sets_due_time_and_extends_the_lease(parking: Parking, redis_client: redis.Redis,
                                                  keys: Keys) -> None:
    before = now_ms()
    due = parking.park("L1", delay_seconds=5)
    assert before + 5000 <= due <= now_ms() + 5000
    assert redis_client.zscore(keys.parked, "L1") == due
    assert redis_client.zscore(keys.pending, "L1") == due + 30_000
    assert parking.claim_due() == []  # not due yet
    # Parking again replaces the due time rather than adding a second entry.
    again = parking.park("L1", delay_seconds=0)
    assert again < due and parking.counts() == {"pending": 1, "parked": 1, "dead": 0}
    # A negative delay is "now", never in the past.
    assert parking.park("L2", delay_seconds=-10) >= before


def test_claim_due_takes_only_due_leads_and_gives_them_a_lease(parking: Parking, redis_client: redis.Redis,
                                                               keys: Keys) -> None:
    parking.park("soon", delay_seconds=0)
    parking.park("later", delay_seconds=60)
    time.sleep(0.01)
    before = now_ms()
    assert parking.claim_due() == ["soon"]
    assert parking.claim_due() == []
    assert redis_client.zscore(keys.parked, "soon") is None
    lease = redis_client.zscore(keys.pending, "soon")
    assert lease is not None and before + 29_000 <= lease <= now_ms() + 30_000
    assert redis_client.zscore(keys.parked, "later") is not None


def test_claim_due_respects_limit_and_order(parking: Parking) -> None:
    for n in range(5):
        parking.park(f"L{n}", delay_seconds=0)
        time.sleep(0.002)
    assert parking.claim_due(limit=2) == ["L0", "L1"]
    assert parking.claim_due(limit=10) == ["L2", "L3", "L4"]


def test_claim_due_is_exactly_once_under_concurrent_claimers(parking: Parking, redis_url: str,
                                                             keys: Keys) -> None:
    ids = [f"L{n}" for n in range(400)]
    for lead_id in ids:
        parking.park(lead_id, delay_seconds=0)
    start = threading.Barrier(8)
    claimed: list[list[str]] = [[] for _ in range(8)]

    def claimer(out: list[str]) -> None:
        client = connect(redis_url)
        mine = Parking(client, keys=keys, lease_seconds=30)
        start.wait()
        try:
            while batch := mine.claim_due(limit=7):
                out.extend(batch)
        finally:
            client.close()

    threads = [threading.Thread(target=claimer, args=(out,)) for out in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    every = [lead_id for out in claimed for lead_id in out]
    assert sorted(every) == sorted(ids)  # each exactly once: no loss, no double claim
    assert sum(1 for out in claimed if out) >= 2
    assert parking.counts() == {"pending": 400, "parked": 0, "dead": 0}


def test_claim_expired_skips_locked_and_parked_leads(redis_client: redis.Redis, keys: Keys) -> None:
    parking = Parking(redis_client, keys=keys, lease_seconds=0.05)
    store = LeadStore(redis_client, keys=keys, lease_seconds=30)  # locks last long
    for lead_id in ("lost", "locked", "parked", "fresh"):
        redis_client.zadd(keys.pending, {lead_id: 0})
        parking.renew(lead_id)
    parking.park("parked", delay_seconds=0)
    assert store.lock("locked", token="worker-1")
    time.sleep(0.1)
    parking.renew("fresh")
    before = now_ms()
    assert parking.claim_expired() == ["lost"]
    # The lost lead got a new lease: it is not claimed twice in a row.
    assert parking.claim_expired() == []
    lost = redis_client.zscore(keys.pending, "lost")
    assert lost is not None and lost >= before + 40
    # The locked lead's lease was pushed on; the overdue parked one gets a lease from now, not from its past
    # due time, so it does not crowd every later sweep (claim_due, not the sweep, takes it).
    locked = redis_client.zscore(keys.pending, "locked")
    assert locked is not None and locked >= before + 40
    due = redis_client.zscore(keys.parked, "parked")
    parked_lease = redis_client.zscore(keys.pending, "parked")
    assert due is not None and parked_lease is not None and parked_lease >= max(due, before) + 50
    # Once unlocked and expired again, the locked lead is claimed.
    store.unlock("locked", token="worker-1")
    time.sleep(0.1)
    assert sorted(parking.claim_expired()) == ["fresh", "locked", "lost"]
    assert parking.claim_due() == ["parked"]


def test_renew_never_creates_a_lease(parking: Parking, redis_client: redis.Redis, keys: Keys) -> None:
    parking.renew("ghost")
    assert redis_client.zscore(keys.pending, "ghost") is None


def test_buried_leads_leave_the_delivery_sets_and_list_oldest_first(
    parking: Parking, redis_client: redis.Redis, keys: Keys
) -> None:
    store = LeadStore(redis_client, keys=keys)
    for lead_id in ("L1", "L2", "L3"):
        store.accept(lead_id=lead_id, payload={"id": lead_id}, source="api")
        parking.park(lead_id, delay_seconds=10)
    store.bury("L1", dead_reason="x")
    time.sleep(0.002)
    store.bury("L3", dead_reason="y")
    assert parking.counts() == {"pending": 1, "parked": 1, "dead": 2}
    assert parking.dead_ids() == ["L1", "L3"]  # oldest death first
    assert parking.dead_ids(limit=1) == ["L1"]
    assert parking.claim_due() == [] and redis_client.zscore(keys.pending, "L1") is None
