"""Random interleavings of deliveries, stray redeliveries, killed workers, Ryng's answers, callbacks and dead-letter
replays, against the real Redis (the Deliverer as `test_deliverer.py`'s rig builds it), with the invariants
checked after every step:

- a lead is in exactly one place: delivered (in no set), dead (in the dead letters only) or open (pending, and
  perhaps parked);
- a lead that may have two campaigns at Ryng (sends accepted, or unanswered) carries the possible-duplicate flag;
- each agent's open-lead counter equals the reservations counted against it.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.unit.delivery.test_deliverer import Rig, build_rig, reply
from workers.ryng.callbacks import CallbackRecorder, read_callback
from workers.store.dead_letters import DeadLetters
from workers.store.keys import Keys
from workers.store.lead_record import DELIVERED

LEADS = ("C1", "C2", "C3")
ANSWERS = ("accepted", "server_error", "timeout", "rejected")


class Killed(BaseException):
    """The worker died while its request was out (after Ryng recorded the campaign)."""


def answer(kind: str) -> Any:
    if kind == "accepted":
        return reply(200)
    if kind == "server_error":
        return reply(500, {"error": True, "message": "Failed"})
    if kind == "rejected":
        return reply(400, {"error": True, "message": "Invalid number"})

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out reading the answer", request=request)

    return timeout


def killed(request: httpx.Request) -> httpx.Response:
    raise Killed


class Deliveries(RuleBasedStateMachine):
    client: redis.Redis

    def __init__(self) -> None:
        super().__init__()
        self.keys = Keys(f"pc{uuid.uuid4().hex[:8]}")
        self.rig: Rig = build_rig(self.client, self.keys, capacity=2, max_attempts=3, max_crashes=3)
        self.recorder = CallbackRecorder(self.client, keys=self.keys)
        self.dead = DeadLetters(self.client, keys=self.keys, lease_seconds=30, enqueue=lambda lead_id: None,
                                release=lambda lead_id: self.rig.assigner.release(lead_id=lead_id, cancel=True))
        self.calls = 0
        #: Campaigns Ryng has, or may have, per lead: sends it accepted, or whose answer never came.
        self.campaigns: Counter[str] = Counter()
        for lead_id in LEADS:
            self.rig.accept(lead_id)

    def teardown(self) -> None:
        for key in self.client.scan_iter(self.keys.match()):
            self.client.delete(key)

    def _run(self, lead_id: str, ryng: Any, *, stray: bool, creates: bool) -> None:
        self.rig.script[:] = [ryng]
        before = len(self.rig.sent)
        try:
            (self.rig.deliverer.stray if stray else self.rig.deliverer.run)(lead_id)  # type: ignore[attr-defined]
        except Killed:
            self.client.delete(self.keys.lead_lock(lead_id))  # its lock runs out
        self.rig.script.clear()
        if creates and len(self.rig.sent) > before:
            self.campaigns[lead_id] += 1

    @rule(lead_id=st.sampled_from(LEADS), kind=st.sampled_from(ANSWERS), stray=st.booleans())
    def deliver(self, lead_id: str, kind: str, stray: bool) -> None:
        self._run(lead_id, answer(kind), stray=stray, creates=kind in ("accepted", "timeout"))

    @rule(lead_id=st.sampled_from(LEADS))
    def worker_killed_mid_request(self, lead_id: str) -> None:
        self._run(lead_id, killed, stray=False, creates=True)

    @rule(lead_id=st.sampled_from(LEADS), kind=st.sampled_from(("connect", "terminal")), repeat=st.booleans())
    def callback(self, lead_id: str, kind: str, repeat: bool) -> None:
        if not repeat:
            self.calls += 1
        body = {"callID": str(self.calls), "event": "call-ended" if kind == "terminal" else "agent-connected",
                "customFieldNames": {"customField8Name": "LeadId"}, "customFields": {"customField8": lead_id}}
        callback = read_callback(body, kind=kind, lead_id_slot=8)  # type: ignore[arg-type]
        result = self.recorder.apply(callback, body=json.dumps(body).encode(), body_digest="d")
        if result in ("applied", "duplicate") and kind == "terminal":
            self.rig.assigner.release(lead_id=lead_id)  # as the callback route does

    @rule(lead_id=st.sampled_from(LEADS))
    def replay(self, lead_id: str) -> None:
        self.dead.replay([lead_id])

    @invariant()
    def each_lead_is_in_exactly_one_place(self) -> None:
        pending, parked, dead = (set(self.client.zrange(key, 0, -1))
                                 for key in (self.keys.pending, self.keys.parked, self.keys.dead))
        for lead_id in LEADS:
            status = self.client.hget(self.keys.lead(lead_id), "status")
            where = (lead_id in pending, lead_id in parked, lead_id in dead)
            if status in DELIVERED:
                assert where == (False, False, False), (lead_id, status, where)
            elif status == "dead":
                assert where == (False, False, True), (lead_id, status, where)
            else:
                assert where[0] and not where[2], (lead_id, status, where)

    @invariant()
    def a_lead_sent_twice_is_flagged(self) -> None:
        for lead_id, times in self.campaigns.items():
            if times > 1:
                flag = self.client.hget(self.keys.lead(lead_id), "possible_duplicate")
                assert flag == "1", (lead_id, times)

    @invariant()
    def capacity_counters_equal_open_reservations(self) -> None:
        held: Counter[str] = Counter()
        for lead_id in self.client.zrange(self.keys.reservations, 0, -1):
            reservation: dict[str, str] = self.client.hgetall(self.keys.reservation(str(lead_id)))  # type: ignore[assignment]
            if reservation.get("counted") == "1":
                held[reservation["agent"]] += 1
        for agent in ("alice", "bob"):
            counted = int(self.client.hget(self.keys.agent(agent), "open") or 0)
            assert counted == held[agent], (agent, counted, dict(held))


@pytest.fixture
def machine(redis_client: redis.Redis) -> type[Deliveries]:
    Deliveries.client = redis_client
    return Deliveries


def test_random_interleavings_keep_every_invariant(machine: type[Deliveries]) -> None:
    run_state_machine_as_test(machine, settings=settings(
        max_examples=25, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]))
