"""The Deliverer on a real Redis with a real Assigner over two agents and Ryng on httpx.MockTransport.

Nothing sleeps: the Deliverer's `sleep` is recorded. Each test drives `run(lead_id)` step by step, as the
Celery task would, and checks the record, the parked/pending/dead sets and what reached "Ryng".
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from config.routing import RoutingConfig
from config.settings import Settings
from tests.harness import free_port, wait_until
from workers.delivery.deliverer import Deliverer
from workers.delivery.policy import DeliveryPolicy
from workers.routing.assigner import Assigner, LeadFacts
from workers.services import Services
from workers.store.counters import Counters
from workers.store.embedded import start_embedded
from workers.store.keys import Keys
from workers.store.limiter import RateLimiter
from workers.store.parking import Parking
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore, Status

BASE_URL = "https://acme.ryng.in/rest-api/v1"
OK = {"error": False, "message": "Processing Campaign...", "data": {}}
Reply = httpx.Response | Callable[[httpx.Request], httpx.Response]


def reply(status: int, body: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    return httpx.Response(status, json=OK if body is None else body, headers=headers)


def timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out reading the answer", request=request)


def explode(request: httpx.Request) -> httpx.Response:
    raise RuntimeError("poison lead")


@dataclass
class Script:
    """Ryng's side: the replies it will give, in order, and the JSON bodies it received."""

    replies: list[Reply] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(json.loads(request.content))
        assert self.replies, "Ryng was called more often than the test scripted"
        step = self.replies.pop(0)
        return step(request) if callable(step) else step


@dataclass
class Rig:
    client: redis.Redis
    keys: Keys
    store: LeadStore
    parking: Parking
    pause: DeliveryPause
    assigner: Assigner
    counters: Counters
    deliverer: Deliverer
    script: list[Reply]  # Ryng's replies to come, in order
    sent: list[dict[str, Any]]  # the JSON bodies Ryng received
    sleeps: list[float]

    def accept(self, lead_id: str, **payload: Any) -> None:
        body = {"id": lead_id, "number": "+919812345678", "name": "Asha", "pool": None, "agent": None,
                "fields": {"Product": "Life"}} | payload
        assert self.store.accept(lead_id=lead_id, payload=body, source="api").outcome == "created"

    def record(self, lead_id: str) -> dict[str, str]:
        """The lead's hash as stored."""
        found: dict[str, str] = self.client.hgetall(self.keys.lead(lead_id))  # type: ignore[assignment]
        assert found
        return found

    def parked_in(self, lead_id: str) -> float | None:
        """Seconds until the lead is due, or None when it is not parked."""
        due = self.client.zscore(self.keys.parked, lead_id)
        return None if due is None else due / 1000 - time.time()

    def events(self, lead_id: str, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.store.events(lead_id) if e["event"] == kind]


def build_rig(client: redis.Redis, keys: Keys, *, capacity: int = 0, rate_limit: int = 1000,
              rate_window: float = 60.0, probe_seconds: float = 60.0, when_empty: str = "wait",
              max_wait_seconds: float = 300.0, **policy: Any) -> Rig:
    routing = RoutingConfig.model_validate({
        "agents": [{"name": "alice", "capacity": capacity}, {"name": "bob", "capacity": capacity}],
        "pools": [{"name": "default", "members": ["alice", "bob"], "when_empty": when_empty,
                   "max_wait_seconds": max_wait_seconds}],
    })
    script = Script()
    sleeps: list[float] = []
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        router_key_prefix=keys.prefix, router_lease_seconds=30, ryng_base_url=BASE_URL,
        ryng_access_token="tok-secret",  # type: ignore[arg-type]
    )
    # The composition root, as every process builds it; the rig swaps in what a unit test controls.
    services = Services.from_settings(
        settings, client=client, routing=routing, ryng_transport=httpx.MockTransport(script.answer),
        sleep=sleeps.append,
    )
    services.pause = DeliveryPause(client, keys=keys, probe_seconds=probe_seconds)
    services.limiter = RateLimiter(client, keys=keys, limit=rate_limit, window_seconds=rate_window)
    services.policy = DeliveryPolicy(**({"backoff_base_seconds": 2.0, "backoff_max_seconds": 30.0} | policy))
    services.assigner.sync()
    return Rig(client=client, keys=keys, store=services.store, parking=services.parking, pause=services.pause,
               assigner=services.assigner, counters=services.counters,
               deliverer=Pumped(services.deliverer, client, keys), script=script.replies,
               sent=script.sent, sleeps=sleeps)  # type: ignore[arg-type]


class Pumped:
    """The deliverer as the pump drives it: a parked lead is claimed (its time has come) before it runs again.

    `stray` runs it as a stray copy of the message would, without the claim.
    """

    def __init__(self, deliverer: Deliverer, client: redis.Redis, keys: Keys) -> None:
        self._deliverer, self._client, self._keys = deliverer, client, keys

    def run(self, lead_id: str) -> str:
        self._client.zrem(self._keys.parked, lead_id)
        return self._deliverer.run(lead_id)

    def stray(self, lead_id: str) -> str:
        return self._deliverer.run(lead_id)


@pytest.fixture
def keys(key_prefix: str) -> Keys:
    return Keys(key_prefix)


@pytest.fixture
def rig(redis_client: redis.Redis, keys: Keys) -> Iterator[Rig]:
    yield build_rig(redis_client, keys)


def test_accepted_lead_is_posted_to_the_picked_agent(rig: Rig) -> None:
    rig.accept("L1")
    rig.accept("L2")
    rig.script += [reply(200), reply(200)]
    assert rig.deliverer.run("L1") == "posted"
    assert rig.deliverer.run("L2") == "posted"
    # The round robin crosses campaigns: each request names the next agent.
    assert [body["agents"] for body in rig.sent] == [["alice"], ["bob"]]
    assert rig.sent[0]["agentMapping"] == "global"
    assert rig.sent[0]["customerData"]["jsonData"][0]["customField8"] == "L1"
    record = rig.record("L1")
    assert record["status"] == "posted" and record["agent"] == "alice" and record["attempts"] == "1"
    assert record["pool"] == "default" and record["strategy"] == "round_robin"
    assert record["in_task"] == "0" and record.get("possible_duplicate") != "1"
    assert record["last_outcome"] == "accepted" and record["posted_at"]
    assert rig.parking.counts() == {"pending": 0, "parked": 0, "dead": 0}
    assert [e["event"] for e in rig.store.events("L1")] == ["accepted", "pick", "attempt"]
    assert not rig.store.is_locked("L1")
    assert rig.counters.snapshot()["posted"] == 2 and rig.sleeps == []


def test_server_error_parks_the_lead_with_jittered_backoff(rig: Rig) -> None:
    rig.accept("L1")
    rig.script += [reply(500, {"error": True, "message": "Failed to create Campaign"})]
    assert rig.deliverer.run("L1") == "retrying"
    record = rig.record("L1")
    assert record["status"] == "retrying" and record["attempts"] == "1"
    assert record["last_status_code"] == "500" and record["last_message"] == "Failed to create Campaign"
    # Attempt 1 backs off within [base/2, base] = [1, 2] s, and the parked due time says so.
    delay = float(record["retry_in_seconds"])
    assert 1.0 <= delay <= 2.0
    parked = rig.parked_in("L1")
    assert parked is not None and delay - 0.2 <= parked <= delay + 0.01  # retry_in_seconds is rounded
    assert rig.sleeps == [] and len(rig.sent) == 1
    # The second attempt goes to the same agent (picked once) and backs off longer.
    rig.script += [reply(503, {"error": True, "message": "busy"})]
    assert rig.deliverer.run("L1") == "retrying"
    assert rig.sent[1]["agents"] == rig.sent[0]["agents"] == ["alice"]
    assert 1.0 <= float(rig.record("L1")["retry_in_seconds"]) <= 4.0
    assert len(rig.events("L1", "pick")) == 1


def test_backoff_is_jittered_and_bounded() -> None:
    policy = DeliveryPolicy(backoff_base_seconds=2.0, backoff_max_seconds=30.0)
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(30.0, 2.0 * 2 ** (attempt - 1))
        delays = [policy.backoff(attempt, rng=rng) for _ in range(200)]
        assert all(1.0 <= d <= ceiling for d in delays), attempt
        assert len({round(d, 6) for d in delays}) > 100  # jittered, not a fixed step
    assert max(policy.backoff(50, rng=rng) for _ in range(200)) <= 30.0
    tiny = DeliveryPolicy(backoff_base_seconds=2.0, backoff_max_seconds=0.5)
    assert all(d == 0.5 for d in (tiny.backoff(3, rng=rng) for _ in range(20)))


def test_retry_after_stretches_the_backoff_up_to_the_maximum(rig: Rig) -> None:
    rig.accept("L1")
    rig.script += [reply(429, {"error": True, "message": "slow down"}, **{"Retry-After": "20"})]
    assert rig.deliverer.run("L1") == "retrying"
    assert 20.0 <= float(rig.record("L1")["retry_in_seconds"]) <= 22.0  # Retry-After plus up to base of jitter
    delays = []
    for _ in range(6):
        rig.script += [reply(429, {"error": True, "message": "slow down"}, **{"Retry-After": "9999"})]
        assert rig.deliverer.run("L1") in ("retrying", "dead")
        delays.append(float(rig.record("L1")["retry_in_seconds"]))
    assert all(30.0 <= delay <= 32.0 for delay in delays)  # capped by backoff_max_seconds, then jittered
    assert len(set(delays)) > 1


def test_ambiguous_then_accepted_is_flagged_possible_duplicate(rig: Rig) -> None:
    rig.accept("L1")
    rig.script += [timeout]
    assert rig.deliverer.run("L1") == "retrying"
    record = rig.record("L1")
    assert record["last_outcome"] == "ambiguous" and record.get("possible_duplicate") != "1"
    rig.script += [reply(200)]
    assert rig.deliverer.run("L1") == "posted"
    record = rig.record("L1")
    assert record["status"] == "posted" and record["possible_duplicate"] == "1" and record["attempts"] == "2"
    assert rig.events("L1", "possible_duplicate")[0]["previous"] == "ambiguous"
    assert rig.sent[0]["agents"] == rig.sent[1]["agents"]


def test_plain_retry_then_accepted_is_not_a_duplicate(rig: Rig) -> None:
    rig.accept("L1")
    rig.script += [reply(500, {"error": True, "message": "Failed"}), reply(200)]
    rig.deliverer.run("L1")
    assert rig.deliverer.run("L1") == "posted"
    assert rig.record("L1").get("possible_duplicate") != "1"


def test_unauthorized_pauses_delivery_and_the_probe_resumes_it(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, probe_seconds=1.0)
    rig.accept("L1")
    rig.accept("L2")
    rig.script += [reply(403, {"error": True, "message": "Unauthorized Token"})]
    assert rig.deliverer.run("L1") == "waiting-ryng_unauthorized"
    record = rig.record("L1")
    assert record["status"] == "waiting" and record["wait_reason"] == "ryng_unauthorized"
    assert record["attempts"] == "0"  # not the lead's fault: not counted
    state = rig.pause.state()
    assert state is not None and "403" in state["reason"]
    parked = rig.parked_in("L1")
    assert parked is not None and 0.5 < parked <= 1.0
    # While paused nothing is sent, for this lead or any other, until the probe interval has passed.
    assert rig.deliverer.run("L2") == "waiting-ryng_unauthorized"
    assert rig.deliverer.run("L1") == "waiting-ryng_unauthorized"
    assert len(rig.sent) == 1
    time.sleep(1.05)
    rig.script += [reply(200)]
    assert rig.deliverer.run("L1") == "posted"  # the one probe
    assert rig.pause.state() is None
    assert rig.record("L1")["attempts"] == "1" and rig.record("L1").get("possible_duplicate") != "1"
    assert rig.events("L1", "delivery_resumed")
    rig.script += [reply(200)]
    assert rig.deliverer.run("L2") == "posted"
    assert len(rig.sent) == 3


def test_an_operator_resume_wakes_the_held_leads_at_once(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, probe_seconds=60.0)
    rig.accept("L1")
    rig.script += [reply(403, {"error": True, "message": "Unauthorized Token"})]
    assert rig.deliverer.run("L1") == "waiting-ryng_unauthorized"
    assert rig.parking.claim_due() == []  # parked for the whole probe interval
    assert rig.pause.resume() is True
    assert rig.parking.claim_due() == ["L1"]  # due now, not in a minute
    rig.script += [reply(200)]
    assert rig.deliverer.run("L1") == "posted"


def test_a_failed_probe_keeps_the_pause(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, probe_seconds=1.0)
    rig.accept("L1")
    rig.pause.pause(reason="operator")
    rig.client.delete(keys.probe)  # the probe is due now
    rig.script += [reply(403, {"error": True, "message": "Unauthorized Token"})]
    assert rig.deliverer.run("L1") == "waiting-ryng_unauthorized"
    state = rig.pause.state()
    assert state is not None and state["reason"] == "operator"
    assert rig.record("L1")["attempts"] == "0"
    assert rig.deliverer.run("L1") == "waiting-ryng_unauthorized" and len(rig.sent) == 1


def test_rejected_lead_is_dead_with_the_answer_and_capacity_released(redis_client: redis.Redis,
                                                                     keys: Keys) -> None:
    rig = build_rig(redis_client, keys, capacity=1)
    for lead_id in ("L1", "L2", "L3"):
        rig.accept(lead_id)
    rig.script += [reply(400, {"error": True, "message": "number is invalid"}), reply(200), reply(200)]
    assert rig.deliverer.run("L1") == "dead"
    record = rig.record("L1")
    assert record["status"] == "dead" and record["in_task"] == "0" and record["dead_at"]
    assert "400" in record["dead_reason"] and "number is invalid" in record["dead_reason"]
    assert rig.events("L1", "attempt")[0]["body"] == json.dumps(
        {"error": True, "message": "number is invalid"}, separators=(",", ":"))
    assert rig.parking.dead_ids() == ["L1"]
    assert rig.parking.counts() == {"pending": 2, "parked": 0, "dead": 1}
    # alice's one unit of capacity came back: after bob takes L2, L3 can still go to alice.
    assert rig.deliverer.run("L2") == "posted"
    assert rig.deliverer.run("L3") == "posted"
    assert [body["agents"] for body in rig.sent] == [["alice"], ["bob"], ["alice"]]
    # Both agents now hold a lead: a fourth waits instead of overloading anyone.
    rig.accept("L4")
    assert rig.deliverer.run("L4") == "waiting-no_agent_eligible" and len(rig.sent) == 3


def test_capacity_is_held_by_a_retrying_lead(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, capacity=1)
    rig.accept("L1")
    rig.script += [reply(500, {"error": True, "message": "Failed"})]
    rig.deliverer.run("L1")
    pick = rig.assigner.pick(LeadFacts(lead_id="other", number="+919800000001", fields={}))
    assert pick.agent == "bob"


def test_nobody_free_lets_ryng_choose_once_and_for_all(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, capacity=1, when_empty="ryng")
    for lead_id in ("L1", "L2", "L3"):
        rig.accept(lead_id)
    rig.script += [reply(200), reply(200), reply(500, {"error": True, "message": "Failed"}), reply(200)]
    assert [rig.deliverer.run(lead_id) for lead_id in ("L1", "L2", "L3")] == ["posted", "posted", "retrying"]
    assert rig.sent[2]["agentMapping"] == "all-agents" and "agents" not in rig.sent[2]
    assert rig.record("L3")["agent_mapping"] == "all-agents"
    assert rig.deliverer.run("L3") == "posted"
    assert rig.sent[3]["agentMapping"] == "all-agents" and len(rig.events("L3", "pick")) == 1


def test_a_pool_wait_that_runs_out_buries_the_lead_instead_of_letting_ryng_choose(
    redis_client: redis.Redis, keys: Keys
) -> None:
    rig = build_rig(redis_client, keys, capacity=1, max_wait_seconds=0.5)
    for lead_id in ("L1", "L2", "L3"):
        rig.accept(lead_id)
    rig.script += [reply(200), reply(200)]
    assert [rig.deliverer.run(lead_id) for lead_id in ("L1", "L2")] == ["posted", "posted"]
    assert rig.deliverer.run("L3") == "waiting-no_agent_eligible"
    time.sleep(0.6)
    assert rig.deliverer.run("L3") == "dead"
    record = rig.record("L3")
    assert "nobody eligible" in record["dead_reason"] and record["wait_reason"] == ""
    assert len(rig.sent) == 2  # never posted to "all agents"


def test_max_attempts_then_dead(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, max_attempts=3)
    rig.accept("L1")
    rig.script += [reply(500, {"error": True, "message": "Failed to create Campaign"})] * 3
    assert [rig.deliverer.run("L1") for _ in range(3)] == ["retrying", "retrying", "dead"]
    record = rig.record("L1")
    assert record["status"] == "dead" and record["attempts"] == "3"
    assert record["dead_reason"].startswith("gave up after 3 attempts")
    assert rig.parked_in("L1") is None and rig.parking.dead_ids() == ["L1"]
    assert rig.deliverer.run("L1") == "already-dead" and len(rig.sent) == 3


def test_crashing_lead_is_parked_then_dead_after_max(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, max_crashes=3)
    rig.accept("L1")
    rig.script += [explode] * 3
    assert rig.deliverer.run("L1") == "crashed"
    record = rig.record("L1")
    assert record["crashes"] == "1" and record["in_task"] == "0" and "RuntimeError" in record["last_error"]
    parked = rig.parked_in("L1")
    assert parked is not None and 0.5 < parked <= 2.0  # backoff, never a hot loop
    assert not rig.store.is_locked("L1")
    assert rig.deliverer.run("L1") == "crashed"
    assert rig.deliverer.run("L1") == "dead"
    record = rig.record("L1")
    assert record["status"] == "dead" and record["crashes"] == "3" and "crashed 3 times" in record["dead_reason"]
    assert rig.parking.dead_ids() == ["L1"]


def test_a_run_that_never_finished_counts_as_a_crash(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, max_crashes=2)
    rig.accept("L1")
    rig.store.update("L1", in_task="1")  # a worker died mid-run (SIGKILL): the flag stayed up
    rig.script += [reply(200)]
    assert rig.deliverer.run("L1") == "posted"
    assert rig.record("L1")["crashes"] == "1"
    # A resend after an unrecorded send is flagged too.
    rig.accept("L2")
    rig.store.update("L2", in_task="1", last_outcome="sending", attempts=1, agent="bob", agent_mapping="global")
    rig.script += [reply(200)]
    assert rig.deliverer.run("L2") == "posted"
    assert rig.record("L2")["possible_duplicate"] == "1" and rig.sent[-1]["agents"] == ["bob"]
    # At the limit the lead is buried without another request.
    rig.accept("L3")
    rig.store.update("L3", in_task="1", crashes=1)
    assert rig.deliverer.run("L3") == "dead"
    assert "crashed 2 times" in rig.record("L3")["dead_reason"] and len(rig.sent) == 2


def test_lock_held_elsewhere_means_no_work(rig: Rig) -> None:
    rig.accept("L1")
    assert rig.store.lock("L1", token="another-worker")
    assert rig.deliverer.run("L1") == "locked"
    record = rig.record("L1")
    assert record["status"] == "accepted" and "in_task" not in record and record["attempts"] == "0"
    assert rig.sent == [] and rig.store.is_locked("L1")  # and the other worker's lock is untouched


@pytest.mark.parametrize("final", [Status.POSTED, Status.CONNECTED, Status.COMPLETED, Status.DEAD])
def test_final_status_sends_nothing(rig: Rig, final: Status) -> None:
    rig.accept("L1")
    rig.store.transition("L1", final, allowed=frozenset(Status))
    assert rig.deliverer.run("L1") == f"already-{final}"
    assert rig.sent == [] and rig.parking.counts()["pending"] == 0
    assert rig.record("L1")["status"] == final


def test_unknown_lead_is_dropped_from_the_sets(rig: Rig) -> None:
    rig.parking.park("ghost", delay_seconds=0)
    assert rig.deliverer.run("ghost") == "unknown"
    assert rig.parking.counts() == {"pending": 0, "parked": 0, "dead": 0} and rig.sent == []


def test_short_rate_limit_wait_is_slept_longer_one_parked(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, rate_limit=1, rate_window=1.0)
    rig.accept("L1")
    rig.accept("L2")
    rig.script += [reply(200)]
    assert rig.deliverer.run("L1") == "posted"
    # One slot per second: L2 sleeps the short wait once (recorded, not slept), then parks for the rest.
    assert rig.deliverer.run("L2") == "waiting-rate_limit"
    assert len(rig.sleeps) == 1 and 0.5 < rig.sleeps[0] <= 1.0
    parked = rig.parked_in("L2")
    assert parked is not None and 0.5 < parked <= 1.0
    assert rig.record("L2")["wait_reason"] == "rate_limit" and len(rig.sent) == 1
    assert rig.counters.snapshot()["rate_limited"] == 1


def test_long_rate_limit_wait_is_parked_without_sleeping(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, rate_limit=1, rate_window=60.0)
    rig.accept("L1")
    rig.accept("L2")
    rig.script += [reply(200)]
    rig.deliverer.run("L1")
    assert rig.deliverer.run("L2") == "waiting-rate_limit"
    assert rig.sleeps == []
    parked = rig.parked_in("L2")
    assert parked is not None and 58 < parked <= 60
    # The agent was picked before the wait and is kept for the post.
    assert rig.record("L2")["agent"] == "bob"


def test_a_stray_copy_of_the_message_does_not_cut_the_backoff_short(rig: Rig) -> None:
    rig.accept("L1")
    rig.script += [reply(500, {"error": True, "message": "Failed"})]
    assert rig.deliverer.run("L1") == "retrying"
    assert rig.deliverer.stray("L1") == "not-due"  # e.g. the lease sweep or a redelivered message
    assert len(rig.sent) == 1 and rig.record("L1")["attempts"] == "1"


def test_a_message_for_a_locked_lead_comes_back_shortly(rig: Rig) -> None:
    rig.accept("L1")
    assert rig.store.lock("L1", token="another-worker")
    assert rig.deliverer.run("L1") == "locked"
    parked = rig.parked_in("L1")
    assert parked is not None and 0 < parked <= 2.0  # not dropped until the lease runs out


def test_redis_errors_are_not_the_leads_crashes(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    rig.accept("L1")

    def redis_away(*_: Any, **__: Any) -> None:
        raise redis.ConnectionError("failover")

    monkeypatch.setattr(rig.assigner, "pick", redis_away)
    with pytest.raises(redis.ConnectionError):
        rig.deliverer.run("L1")
    assert rig.record("L1")["crashes"] == "0" and not rig.events("L1", "crash")


def test_resume_does_not_cut_a_later_backoff_short(redis_client: redis.Redis, keys: Keys) -> None:
    rig = build_rig(redis_client, keys, probe_seconds=0.2)
    rig.accept("L1")
    rig.script += [reply(403, {"error": True, "message": "Unauthorized Token"})]
    assert rig.deliverer.run("L1") == "waiting-ryng_unauthorized"  # held by the pause
    time.sleep(0.25)
    rig.script += [reply(500, {"error": True, "message": "Failed"})]
    assert rig.deliverer.run("L1") == "retrying"  # the probe: not a 403, so delivery resumed; now a backoff
    rig.pause.pause(reason="operator test")
    rig.pause.resume()
    parked = rig.parked_in("L1")
    assert parked is not None and parked > 0.5  # its backoff stands


#: Redis round trips of one delivered lead: claim, pick, begin the send, settle (each one Lua call).
DELIVERY_ROUND_TRIPS = 4


def test_a_delivered_lead_costs_four_redis_commands(tmp_path: Path, keys: Keys) -> None:
    # A private server, so that MONITOR shows this delivery's commands and nothing else.
    server = start_embedded(port=free_port())
    client = redis.Redis(port=server.port, decode_responses=True)
    watcher = redis.Redis(port=server.port, decode_responses=True)
    try:
        rig = build_rig(client, keys)
        rig.accept("WARM")
        rig.accept("L1")
        rig.script += [reply(200), reply(200)]
        assert rig.deliverer.run("WARM") == "posted"  # Redis has learnt the scripts
        seen: list[dict[str, Any]] = []
        started = threading.Event()

        def watch() -> None:
            with watcher.monitor() as monitor:
                started.set()
                for command in monitor.listen():
                    if command["command"] == "ECHO end-of-delivery":
                        return
                    seen.append(command)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        started.wait(10)
        wait_until(lambda: client.ping() and any(c["command"] == "PING" for c in seen), timeout=10)
        seen.clear()
        assert rig.deliverer.stray("L1") == "posted"  # as the task runs it (L1 is not parked: no pump claim)
        client.echo("end-of-delivery")
        thread.join(10)
        from_client = [c["command"].split()[0].upper() for c in seen if c.get("client_type") != "lua"]
        inside_scripts = [c for c in seen if c.get("client_type") == "lua"]
        assert from_client == ["EVALSHA"] * DELIVERY_ROUND_TRIPS, from_client
        assert inside_scripts  # the work happened, inside the four calls
        record = rig.record("L1")
        assert record["status"] == "posted" and record["in_task"] == "0" and record["attempts"] == "1"
        assert client.zscore(keys.pending, "L1") is None and not rig.store.is_locked("L1")
    finally:
        client.close()
        watcher.close()
        server.stop()
