"""Lead records on a real Redis: accept outcomes, fingerprints, guarded transitions, history, the lead lock."""

from __future__ import annotations

import json
import time

import pytest
import redis

from workers.store.keys import Keys
from workers.store.records import DELIVERED, FINAL, MAX_EVENTS, OPEN, LeadStore, Status, fingerprint

PAYLOAD = {"id": "L1", "number": "+919812345678", "name": "Asha", "pool": None, "agent": None,
           "fields": {"Product": "Life", "Brand": "Acme"}}


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def store(redis_client: redis.Redis, keys: Keys) -> LeadStore:
    return LeadStore(redis_client, keys=keys, lease_seconds=30)



def _stored(store: LeadStore, lead_id: str) -> dict[str, str] | None:
    """The lead's hash exactly as stored (field names and text values are the data other processes read)."""
    raw: dict[str, str] = store._redis.hgetall(store.keys.lead(lead_id))  # type: ignore[assignment]
    return raw or None

def test_accept_created_then_exists_then_conflict(store: LeadStore, redis_client: redis.Redis, keys: Keys) -> None:
    before = time.time() * 1000
    first = store.accept(lead_id="L1", payload=PAYLOAD, source="api")
    assert (first.outcome, first.status) == ("created", "accepted")
    record = _stored(store, "L1")
    assert record is not None
    assert record["status"] == "accepted" and record["source"] == "api"
    assert record["attempts"] == "0" and record["crashes"] == "0"
    assert json.loads(record["payload"]) == PAYLOAD
    assert record["fingerprint"] == fingerprint(PAYLOAD)
    # Accepted means kept *and* due: the pending lease is about lease_seconds away.
    lease = redis_client.zscore(keys.pending, "L1")
    assert lease is not None and before + 29_000 <= lease <= time.time() * 1000 + 30_000
    assert [e["event"] for e in store.events("L1")] == ["accepted"]

    store.transition("L1", Status.QUEUED)
    again = store.accept(lead_id="L1", payload=dict(reversed(list(PAYLOAD.items()))), source="csv")
    assert (again.outcome, again.status) == ("exists", "queued")
    changed = store.accept(lead_id="L1", payload={**PAYLOAD, "number": "+919800000000"}, source="api")
    assert (changed.outcome, changed.status) == ("conflict", "queued")
    # Neither repeat touched the record or wrote history.
    after = _stored(store, "L1")
    assert after is not None and after["source"] == "api" and json.loads(after["payload"]) == PAYLOAD
    assert len(store.events("L1")) == 1


def test_fingerprint_is_stable_and_sensitive() -> None:
    shuffled = {"fields": {"Brand": "Acme", "Product": "Life"}, "agent": None, "pool": None,
                "name": "Asha", "number": "+919812345678", "id": "L1"}
    assert fingerprint(PAYLOAD) == fingerprint(shuffled)
    assert fingerprint(PAYLOAD) == fingerprint(dict(PAYLOAD))  # deterministic across calls
    assert len(fingerprint(PAYLOAD)) == 64
    assert fingerprint(PAYLOAD) != fingerprint({**PAYLOAD, "fields": {"Product": "Life", "Brand": "acme"}})
    assert fingerprint(PAYLOAD) != fingerprint({**PAYLOAD, "name": None})
    assert fingerprint({"name": "José"}) != fingerprint({"name": "Jose"})


def test_get_unknown_lead_is_none(store: LeadStore) -> None:
    assert _stored(store, "nope") is None
    assert store.transition("nope", Status.QUEUED) is None
    assert _stored(store, "nope") is None  # a refused transition never creates a record


def test_transition_returns_previous_and_writes_fields(store: LeadStore) -> None:
    store.accept(lead_id="L1", payload=PAYLOAD, source="api")
    assert store.transition("L1", Status.ASSIGNED, agent="alice", attempts=3) == "accepted"
    record = _stored(store, "L1")
    assert record is not None
    assert record["status"] == "assigned" and record["agent"] == "alice" and record["attempts"] == "3"
    assert record["updated_at"].endswith("Z")


@pytest.mark.parametrize("final", sorted(FINAL))
@pytest.mark.parametrize("target", [Status.RETRYING, Status.WAITING, Status.QUEUED, Status.ASSIGNED])
def test_final_statuses_never_regress(store: LeadStore, final: Status, target: Status) -> None:
    store.accept(lead_id="L1", payload=PAYLOAD, source="api")
    path = {Status.POSTED: [Status.POSTED], Status.CONNECTED: [Status.POSTED, Status.CONNECTED],
            Status.COMPLETED: [Status.POSTED, Status.COMPLETED], Status.DEAD: [Status.DEAD]}[final]
    for step in path:
        assert store.transition("L1", step, allowed=frozenset(Status)) is not None
    assert store.transition("L1", target, wait_reason="rate_limit") is None
    record = _stored(store, "L1")
    assert record is not None and record["status"] == final and "wait_reason" not in record


def test_posted_never_goes_back_to_dead_by_default(store: LeadStore) -> None:
    store.accept(lead_id="L1", payload=PAYLOAD, source="api")
    store.transition("L1", Status.POSTED)
    assert store.transition("L1", Status.DEAD, dead_reason="late") is None
    record = _stored(store, "L1")
    assert record is not None and record["status"] == "posted" and "dead_reason" not in record


def test_allowed_set_restricts_the_move(store: LeadStore) -> None:
    store.accept(lead_id="L1", payload=PAYLOAD, source="api")
    assert store.transition("L1", Status.CONNECTED, allowed=DELIVERED) is None  # still accepted
    store.transition("L1", Status.POSTED)
    assert store.transition("L1", Status.CONNECTED, allowed=DELIVERED) == "posted"
    assert store.transition("L1", Status.POSTED, allowed=frozenset({Status.POSTED})) is None


def test_open_statuses_move_freely(store: LeadStore) -> None:
    store.accept(lead_id="L1", payload=PAYLOAD, source="api")
    previous = "accepted"
    for status in [Status.QUEUED, Status.WAITING, Status.ASSIGNED, Status.RETRYING, Status.WAITING]:
        assert status in OPEN
        assert store.transition("L1", status) == previous
        previous = status


def test_update_and_incr_keep_status(store: LeadStore) -> None:
    store.accept(lead_id="L1", payload=PAYLOAD, source="api")
    store.update("L1", last_outcome="retry", last_status_code=500)
    assert store.incr("L1", "attempts") == 1
    assert store.incr("L1", "attempts", 2) == 3
    assert store.incr("L1", "attempts", -1) == 2
    record = _stored(store, "L1")
    assert record is not None
    assert (record["status"], record["last_outcome"], record["last_status_code"], record["attempts"]) == (
        "accepted", "retry", "500", "2")


def test_history_is_bounded_to_the_newest(store: LeadStore) -> None:
    store.accept(lead_id="L1", payload=PAYLOAD, source="api")
    for n in range(MAX_EVENTS + 25):
        store.event("L1", "attempt", attempt=n, note={"nested": n})
    events = store.events("L1")
    assert len(events) == MAX_EVENTS
    assert events[0]["attempt"] == 25 and events[-1]["attempt"] == MAX_EVENTS + 24
    assert events[-1]["event"] == "attempt" and events[-1]["note"] == {"nested": MAX_EVENTS + 24}
    assert all(e["at"].endswith("Z") for e in events)


def test_lock_is_exclusive_and_only_the_owner_unlocks(store: LeadStore, redis_client: redis.Redis,
                                                      keys: Keys) -> None:
    assert store.lock("L1", token="a") is True
    assert store.is_locked("L1")
    assert store.lock("L1", token="b") is False
    store.unlock("L1", token="b")  # not the owner: no effect
    assert store.is_locked("L1") and redis_client.get(keys.lead_lock("L1")) == "a"
    ttl = redis_client.pttl(keys.lead_lock("L1"))
    assert 0 < ttl <= 30_000
    store.unlock("L1", token="a")
    assert not store.is_locked("L1")
    assert store.lock("L1", token="b") is True


def test_lock_expires_with_its_lease(redis_client: redis.Redis, keys: Keys) -> None:
    short = LeadStore(redis_client, keys=keys, lease_seconds=0.1)
    assert short.lock("L1", token="a")
    assert not short.lock("L1", token="b")
    time.sleep(0.15)
    assert short.lock("L1", token="b")


def test_bury_is_atomic_and_never_touches_a_delivered_lead(redis_client: redis.Redis, keys: Keys) -> None:
    store = LeadStore(redis_client, keys=keys)
    for lead_id in ("open", "done"):
        store.accept(lead_id=lead_id, payload={"id": lead_id}, source="api")
    redis_client.zadd(keys.parked, {"open": 1})
    assert store.bury("open", dead_reason="Ryng said 400") == "accepted"
    record = _stored(store, "open")
    assert record is not None and record["status"] == "dead" and record["dead_reason"] == "Ryng said 400"
    assert redis_client.zscore(keys.dead, "open") is not None
    assert redis_client.zscore(keys.pending, "open") is None and redis_client.zscore(keys.parked, "open") is None
    assert store.bury("open", dead_reason="again") is None  # already dead: nothing changes
    store.transition("done", Status.POSTED)
    assert store.bury("done", dead_reason="stale worker") is None
    done = _stored(store, "done")
    assert done is not None and done["status"] == "posted" and redis_client.zscore(keys.dead, "done") is None
