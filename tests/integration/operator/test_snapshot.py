"""The operator's snapshot over real Redis: agents, pools with the next agent, waits, recent and dead leads."""

from __future__ import annotations

import time
from datetime import datetime

import redis

from config.routing import RoutingConfig
from workers.fetch.waits import FetchWaits
from workers.operator.snapshot import SnapshotReader
from workers.routing.agents import AgentStore
from workers.routing.assigner import Assigner, LeadFacts
from workers.ryng.callbacks import CallbackRecorder
from workers.store.keys import Keys
from workers.store.lead_record import Status
from workers.store.limiter import RateLimiter
from workers.store.parking import Parking
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore

ROUTING = {
    "agents": [{"name": "ann", "capacity": 1}, {"name": "bob"}, {"name": "cy"},
               {"name": "dee", "wrap_up_seconds": 600}],
    "pools": [{"name": "default", "members": ["ann", "bob", "cy"]}, {"name": "vip", "members": ["dee", "bob"]}],
}


def _reader(client: redis.Redis, keys: Keys, assigner: Assigner, *, limit: int = 5) -> SnapshotReader:
    return SnapshotReader(client, keys=keys, assigner=assigner, limit=limit, window_seconds=60.0, queue="q-test")


def test_the_snapshot_shows_agents_pools_waits_and_dead_letters(client: redis.Redis, keys: Keys) -> None:
    assigner = Assigner(client, keys=keys, routing=RoutingConfig.model_validate(ROUTING))
    assigner.sync()
    agents = AgentStore(client, keys=keys)
    store = LeadStore(client, keys=keys, lease_seconds=30)

    first = _reader(client, keys, assigner).take()
    assert [agent.name for agent in first.agents] == ["ann", "bob", "cy", "dee"]
    assert {agent.state for agent in first.agents} == {"available"}
    assert {pool.name: pool.next_agent for pool in first.pools} == {"default": "ann", "vip": "bob"}

    # ann takes a lead (she is now at capacity); bob takes one; dee takes one and is released into wrap-up;
    # cy is paused.
    for lead_id in ("L1", "L2"):
        store.accept(lead_id=lead_id, payload={"number": "+15550001", "fields": {}}, source="api")
    pick = assigner.pick(LeadFacts(lead_id="L1", number="", fields={}))
    store.transition("L1", Status.ASSIGNED, agent=pick.agent or "", pool=pick.pool, rule="r1", reason=pick.reason)
    assert assigner.pick(LeadFacts(lead_id="V1", number="", fields={}, pool="vip")).agent == "bob"
    assert assigner.pick(LeadFacts(lead_id="V2", number="", fields={}, pool="vip")).agent == "dee"
    assigner.release(lead_id="V2")
    agents.pause("cy", reason="lunch")

    # Waiting leads: two for the rate limit, one for no agent; the limiter is spent; delivery is paused.
    parking = Parking(client, keys=keys, lease_seconds=30)
    for lead_id, reason, delay in (("W1", "rate_limit", 5), ("W2", "rate_limit", 9), ("W3", "no_agent_eligible", 2)):
        client.hset(keys.lead(lead_id), mapping={"status": "waiting", "wait_reason": reason})
        parking.park(lead_id, delay_seconds=delay)
    limiter = RateLimiter(client, keys=keys, limit=5, window_seconds=60.0)
    for _ in range(5):
        assert limiter.acquire().granted
    DeliveryPause(client, keys=keys, probe_seconds=5).pause(reason="Ryng answered 403")
    store.bury("L2", dead_reason="Ryng rejected the lead", dead_at="x")
    CallbackRecorder(client, keys=keys).unmatched(b"{}", kind="call_started")
    client.rpush("q-test", "m1", "m2")

    snap = _reader(client, keys, assigner).take()
    states = {agent.name: agent.state for agent in snap.agents}
    assert states == {"ann": "at_capacity", "bob": "available", "cy": "paused", "dee": "wrap_up"}
    ann = next(agent for agent in snap.agents if agent.name == "ann")
    assert (ann.open, ann.picks_today, ann.picks_total) == (1, 1, 1) and ann.last_pick_at
    cy = next(agent for agent in snap.agents if agent.name == "cy")
    assert cy.pause_reason == "lunch"
    pools = {pool.name: pool for pool in snap.pools}
    assert pools["default"].next_agent == "bob"
    assert {(skip.agent, skip.reason) for skip in pools["default"].skipped} == {("ann", "at_capacity"),
                                                                                 ("cy", "paused")}
    assert pools["vip"].next_agent == "bob" and pools["vip"].members == ["bob", "dee"]
    assert snap.waiting_total == 3
    assert {group.reason: group.count for group in snap.waiting} == {"rate_limit": 2, "no_agent_eligible": 1}
    assert (snap.budget.used, snap.budget.remaining) == (5, 0) and snap.budget.next_slot_in_seconds > 0
    assert snap.queue_depth == 2
    assert snap.drain_eta_seconds > 0
    assert snap.delivery_paused and snap.pause_reason == "Ryng answered 403"
    assert snap.dead_total == 1 and snap.dead_latest[0].id == "L2"
    assert snap.dead_latest[0].reason == "Ryng rejected the lead"
    assert snap.callbacks_unmatched == 1
    recent = {lead.id: lead for lead in snap.recent}
    assert set(recent) == {"L1", "L2"}
    assert recent["L1"].agent == "ann" and recent["L1"].reason == pick.reason
    assert "+15550001" not in snap.model_dump_json()  # no customer data


def test_the_snapshot_counts_leads_waiting_for_their_crm_record(client: redis.Redis, keys: Keys) -> None:
    assigner = Assigner(client, keys=keys, routing=RoutingConfig.model_validate(ROUTING))
    assigner.sync()
    empty = _reader(client, keys, assigner).take()
    assert (empty.fetching, empty.fetching_next_due_at) == (0, None)

    waits = FetchWaits(client, keys=keys, store=LeadStore(client, keys=keys), lease_seconds=600)
    for lead_id in ("F1", "F2"):
        assert waits.accept(lead_id=lead_id, crm_id=f"crm-{lead_id}", source="hubspot").outcome == "created"
    waits.retry_later("F2", attempts=1, error="CRM answered 503", delay_seconds=3600)
    snap = _reader(client, keys, assigner).take()
    assert snap.fetching == 2 and snap.fetching_next_due_at is not None
    assert _seconds_from_now(snap.fetching_next_due_at) <= 1  # F1: due at once
    assert snap.waiting_total == 0 and snap.in_flight == 0  # not parked, not pending: no number yet

    assert waits.claim_due() == ["F1"]  # a read under way: F1 is due again when its lease ends
    due = _reader(client, keys, assigner).take().fetching_next_due_at
    assert due is not None and 590 <= _seconds_from_now(due) <= 600
    assert waits.fill("F1", payload={"id": "F1", "number": "+15550002"}, attempts=1, source="hubspot")
    snap = _reader(client, keys, assigner).take()
    assert snap.fetching == 1 and snap.fetching_next_due_at is not None
    assert 3590 <= _seconds_from_now(snap.fetching_next_due_at) <= 3600  # F2, after its backoff
    assert "crm-F" not in snap.model_dump_json()


def _seconds_from_now(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() - time.time()
