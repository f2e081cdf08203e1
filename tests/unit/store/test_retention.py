"""Retention on a real Redis: finished leads shrink to tombstones after the retention period (exported first),
tombstones still answer idempotency, then go; open leads are never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from workers.store.keys import Keys
from workers.store.lead_record import Status
from workers.store.records import LeadStore
from workers.store.retention import Retention, RetentionPolicy

DAY = 86_400.0


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _lead(lead_id: str) -> dict[str, object]:
    return {"id": lead_id, "number": "+919812345678", "name": "Asha", "fields": {"Product": "Life"}}


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def store(redis_client: redis.Redis, keys: Keys) -> LeadStore:
    return LeadStore(redis_client, keys=keys)


def _retention(redis_client: redis.Redis, keys: Keys, clock: Clock, **policy: object) -> Retention:
    options = {"keep_full_seconds": 30 * DAY, "keep_tombstone_seconds": 180 * DAY} | policy
    return Retention(redis_client, keys=keys, policy=RetentionPolicy(**options), clock=clock)  # type: ignore[arg-type]


def test_finished_leads_shrink_open_ones_stay(
    redis_client: redis.Redis, keys: Keys, store: LeadStore, tmp_path: Path
) -> None:
    for lead_id in ("done", "dead", "open"):
        store.accept(lead_id=lead_id, payload=_lead(lead_id), source="api")
    store.transition("done", Status.POSTED, allowed=frozenset(Status), agent="alice", pool="default")
    store.bury("dead", dead_reason="Ryng said 400")
    store.transition("open", Status.RETRYING)
    clock = Clock()
    export = tmp_path / "export" / "outcomes.jsonl"
    retention = _retention(redis_client, keys, clock, export_file=str(export), export_stream=True)

    assert retention.sweep(force=True).shrunk == 0  # nothing is old enough yet
    clock.now += 31 * DAY
    result = retention.sweep(force=True)
    assert (result.shrunk, result.still_open) == (2, 1)

    done = redis_client.hgetall(keys.lead("done"))
    assert done["tombstone"] == "1" and done["status"] == "posted" and done["agent"] == "alice"
    assert "payload" not in done and not redis_client.exists(keys.lead_events("done"))
    assert redis_client.zscore(keys.dead, "dead") is None  # a shrunk dead letter leaves the dead letters
    assert redis_client.hget(keys.lead("open"), "payload")  # open leads keep everything
    # Exported before shrinking, with the whole history: to the file and to the stream.
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    assert sorted(row["id"] for row in rows) == ["dead", "done"]
    dead_row = next(row for row in rows if row["id"] == "dead")
    assert dead_row["dead_reason"] == "Ryng said 400" and dead_row["number"] == "+919812345678"
    assert [event["event"] for event in dead_row["history"]] == ["accepted"]
    assert redis_client.xlen(keys.export_stream) == 2

    # A tombstone answers idempotency: the CRM's retry weeks later is "exists", not a second lead.
    again = store.accept(lead_id="done", payload=_lead("done"), source="api")
    assert (again.outcome, again.status) == ("exists", "posted")
    assert store.accept(lead_id="done", payload=_lead("other"), source="api").outcome == "conflict"

    clock.now += 181 * DAY
    assert retention.sweep(force=True).dropped == 2
    assert not redis_client.exists(keys.lead("done"))
    assert store.accept(lead_id="done", payload=_lead("done"), source="api").outcome == "created"


def test_an_open_lead_is_looked_at_again_a_period_later(
    redis_client: redis.Redis, keys: Keys, store: LeadStore
) -> None:
    store.accept(lead_id="slow", payload=_lead("slow"), source="api")
    clock = Clock()
    retention = _retention(redis_client, keys, clock)
    clock.now += 31 * DAY
    assert retention.sweep(force=True).still_open == 1
    store.transition("slow", Status.POSTED, allowed=frozenset(Status))
    assert retention.sweep(force=True).shrunk == 0  # not until a period after it was last looked at
    clock.now += 31 * DAY
    assert retention.sweep(force=True).shrunk == 1


def test_sweeps_take_turns_across_processes(redis_client: redis.Redis, keys: Keys) -> None:
    clock = Clock()
    first = _retention(redis_client, keys, clock, every_seconds=60)
    second = _retention(redis_client, keys, clock, every_seconds=60)
    assert first.sweep().ran is True
    assert second.sweep().ran is False  # another process swept within the minute


def test_leads_recorded_before_retention_are_indexed_once(
    redis_client: redis.Redis, keys: Keys, store: LeadStore
) -> None:
    store.accept(lead_id="old", payload=_lead("old"), source="api")
    redis_client.delete(keys.created)  # as written by a router without retention
    retention = _retention(redis_client, keys, Clock())
    assert retention.index_existing() == 1
    assert redis_client.zscore(keys.created, "old") is not None
    assert retention.index_existing() == 0  # done once per Redis


def test_indexing_reads_only_this_routers_lead_records(redis_client: redis.Redis, key_prefix: str) -> None:
    # A prefix that would be a glob pattern if not matched literally: `<p>*` must not match `<p>-other`.
    mine, other = Keys(f"{key_prefix}*"), Keys(f"{key_prefix}-other")
    for keys, lead_id in ((mine, "a:1"), (other, "b")):
        LeadStore(redis_client, keys=keys).accept(lead_id=lead_id, payload=_lead(lead_id), source="api")
        redis_client.delete(keys.created)
    try:
        assert _retention(redis_client, mine, Clock()).index_existing() == 1
        assert redis_client.zrange(mine.created, 0, -1) == ["a:1"]  # the id whole, ':' and all
        assert list(redis_client.scan_iter(mine.match("lead:*"))) == [mine.lead("a:1")]
    finally:
        for keys in (mine, other):
            redis_client.delete(*redis_client.scan_iter(keys.match()))
