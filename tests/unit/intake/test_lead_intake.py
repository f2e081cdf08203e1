"""Taking a lead in: record, enqueue, duplicates, conflicts, unknown pools and agents, the webhook-id hint."""

from __future__ import annotations

import pytest
import redis

from config.sources_models import SourceConfig
from router.api.schemas import LeadIn
from router.intake.lead_intake import EnqueueFailed, IntakeConflict, UnknownAgent, UnknownPool, take_lead
from router.intake.sources.intake import Source, take_payload
from router.intake.sources.mapping import SourceMapping
from workers.store.keys import Keys
from workers.store.records import LeadStore


@pytest.fixture
def store(redis_client: redis.Redis, key_prefix: str) -> LeadStore:
    return LeadStore(redis_client, keys=Keys(key_prefix))


def lead(lead_id: str = "L1", number: str = "998314242", **extra: object) -> LeadIn:
    return LeadIn.model_validate({"id": lead_id, "number": number, **extra})


def test_recorded_then_queued_then_duplicate(store: LeadStore) -> None:
    queued: list[str] = []
    first = take_lead(lead(), store=store, enqueue=queued.append, source="api")
    assert (first.status, first.duplicate, queued) == ("queued", False, ["L1"])
    again = take_lead(lead(), store=store, enqueue=queued.append, source="api")
    assert (again.status, again.duplicate, queued) == ("queued", True, ["L1"])  # not queued a second time
    with pytest.raises(IntakeConflict, match="different payload"):
        take_lead(lead(number="998314243"), store=store, enqueue=queued.append, source="api")


def test_a_failed_enqueue_keeps_the_lead_and_the_retry_queues_it(store: LeadStore) -> None:
    def broken(_: str) -> None:
        raise ConnectionError("broker down")

    with pytest.raises(EnqueueFailed):
        take_lead(lead(), store=store, enqueue=broken, source="api")
    record = store.get("L1")
    assert record is not None and record.status == "accepted"
    queued: list[str] = []
    result = take_lead(lead(), store=store, enqueue=queued.append, source="api")
    assert (result.status, queued) == ("queued", ["L1"])


def test_unknown_pool_is_refused_before_anything_is_written(store: LeadStore) -> None:
    with pytest.raises(UnknownPool, match="unknown pool 'vip'"):
        take_lead(lead(pool="vip"), store=store, enqueue=lambda _: None, source="api", pools={"default"})
    assert store.get("L1") is None


def test_an_explicit_agent_the_routing_does_not_know_is_refused_before_anything_is_written(store: LeadStore) -> None:
    queued: list[str] = []
    with pytest.raises(UnknownAgent, match="agent: unknown agent 'zoe'; configured agents: alice, bob"):
        take_lead(lead(agent="zoe"), store=store, enqueue=queued.append, source="api", agents={"alice", "bob"})
    assert store.get("L1") is None and queued == []
    known = take_lead(lead(agent="bob"), store=store, enqueue=queued.append, source="api", agents={"alice", "bob"})
    assert (known.status, queued) == ("queued", ["L1"])
    # A routing that names no agents cannot tell: the lead goes on to Ryng, which knows its agents.
    anyone = take_lead(lead("L2", agent="zoe"), store=store, enqueue=queued.append, source="api", agents=frozenset())
    assert anyone.status == "queued"


def test_a_crm_payload_mapped_to_an_unknown_agent_is_refused_whole(store: LeadStore) -> None:
    config = SourceConfig.model_validate({"name": "crm", "auth": "none", "agent": {"field": "owner"}})
    source = Source(config=config, mapping=SourceMapping(config))
    payload = [{"id": "1", "phone": "998314242", "owner": "alice"}, {"id": "2", "phone": "998314243", "owner": "zoe"}]
    with pytest.raises(UnknownAgent, match="unknown agent 'zoe'"):
        take_payload(source, payload, store=store, enqueue=lambda _: None, agents={"alice"})
    assert store.get("crm:1") is None and store.get("crm:2") is None


def test_webhook_id_is_an_idempotency_hint(store: LeadStore) -> None:
    queued: list[str] = []
    take_lead(lead(), store=store, enqueue=queued.append, source="api", webhook_id="msg_1")
    # The CRM re-sends the same webhook: answered with the lead it carried, nothing queued again.
    again = take_lead(lead(), store=store, enqueue=queued.append, source="api", webhook_id="msg_1")
    assert (again.id, again.duplicate, queued) == ("L1", True, ["L1"])
    other = take_lead(lead("L2"), store=store, enqueue=queued.append, source="api", webhook_id="msg_2")
    assert (other.id, other.duplicate, queued) == ("L2", False, ["L1", "L2"])
