"""The typed lead record: one parse of the stored hash, one dump back, and the store handing it out."""

from __future__ import annotations

import json

import pytest

from workers.store.keys import Keys
from workers.store.lead_record import FINAL, LeadRecord, Status
from workers.store.records import LeadStore

STORED = {
    "id": "L1", "status": "posted", "source": "api", "payload": json.dumps({"number": "+919812345678",
                                                                           "fields": {"Product": "Life", "n": 3}}),
    "attempts": "2", "crashes": "0", "in_task": "0", "possible_duplicate": "1", "agent": "alice",
    "agent_id": "11", "agent_mapping": "global", "waiting_since_ms": "1700000000000",
    "event_agent_connected_at": "2026-11-30T10:00:00.000Z",
}


def test_the_hash_parses_into_types() -> None:
    record = LeadRecord.from_hash(STORED)
    assert record.status is Status.POSTED and record.is_final
    assert (record.attempts, record.crashes, record.waiting_since_ms) == (2, 0, 1_700_000_000_000)
    assert record.possible_duplicate is True and record.in_task is False
    assert record.number == "+919812345678" and record.fields == {"Product": "Life", "n": "3"}
    assert record.agent_mapping == "global" and record.agent_id == "11"
    assert record.extra == {"event_agent_connected_at": "2026-11-30T10:00:00.000Z"}  # unknown fields are kept
    assert record.dead_reason == ""  # absent text reads as empty


def test_dump_is_the_inverse_of_parse() -> None:
    record = LeadRecord.from_hash(STORED)
    assert LeadRecord.from_hash(record.to_hash()) == record
    dumped = record.to_hash()
    assert dumped["status"] == "posted" and dumped["attempts"] == "2" and dumped["possible_duplicate"] == "1"
    assert json.loads(dumped["payload"]) == json.loads(STORED["payload"])


@pytest.mark.parametrize("payload", ["{not json", "[1, 2]"])
def test_an_unreadable_payload_is_an_error_to_deliver_and_empty_to_display(payload: str) -> None:
    record = LeadRecord.from_hash({"id": "L1", "status": "queued", "payload": payload})
    with pytest.raises(ValueError):  # delivery reads `payload`: a poison lead's crash names the cause
        _ = record.payload
    assert record.readable_payload == {} and record.number == "" and not record.is_final
    assert record.to_hash()["payload"] == payload  # kept as it was stored


def test_a_missing_payload_is_an_empty_lead() -> None:
    assert LeadRecord.from_hash({"id": "L1", "status": "queued"}).payload == {}
    nothing = LeadRecord.from_hash({})  # a purged lead's hash reads as an empty record, not a crash
    assert (nothing.id, nothing.payload, nothing.extra) == ("", {}, {})


def test_bad_numbers_and_statuses_do_not_crash_the_reader() -> None:
    record = LeadRecord.from_hash({"id": "L1", "status": "weird", "attempts": "x", "agent_mapping": "odd"})
    assert record.status is Status.ACCEPTED and record.attempts == 0 and record.agent_mapping == ""


def test_the_store_hands_out_typed_records(store: LeadStore) -> None:
    assert store.accept(lead_id="L1", payload={"id": "L1", "number": "+919812345678"}, source="csv").outcome == (
        "created")
    store.transition("L1", Status.DEAD, allowed=frozenset(Status), dead_reason="x")
    record = store.get("L1")
    assert record is not None and record.status is Status.DEAD and record.status in FINAL
    assert record.source == "csv" and record.dead_reason == "x" and record.number == "+919812345678"
    assert store.get("nobody") is None


@pytest.fixture
def store(redis_client: object, key_prefix: str) -> LeadStore:
    return LeadStore(redis_client, keys=Keys(key_prefix))  # type: ignore[arg-type]
