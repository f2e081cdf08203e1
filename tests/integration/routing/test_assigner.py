"""The assigner on real Redis (db 15, one key prefix per test): strategies, availability, capacity, rules."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from config.routing import RoutingConfig, load_routing
from workers.delivery.ledger import DeliveryLedger, Settlement
from workers.routing.agents import AgentStore
from workers.routing.assigner import Assigner, LeadFacts, Pick, Skip
from workers.store.keys import Keys
from workers.store.limiter import RateLimiter
from workers.store.records import LeadStore

T0 = 1_766_400_000.0  # Monday 2025-12-22 10:40 UTC


def make(client: redis.Redis, keys: Keys, spec: dict[str, Any], **options: Any) -> Assigner:
    assigner = Assigner(client, keys=keys, routing=RoutingConfig.model_validate(spec), **options)
    assigner.sync()
    return assigner


def pool(strategy: str, names: list[str], **extra: Any) -> dict[str, Any]:
    return {"agents": [{"name": name} for name in names],
            "pools": [{"name": "default", "members": names, "strategy": strategy, **extra}]}


def lead(n: int | str, **extra: Any) -> LeadFacts:
    return LeadFacts(lead_id=f"L{n}", number=extra.pop("number", f"+9198{n}"), fields=extra.pop("fields", {}),
                     **extra)


def agents(picks: list[Pick]) -> list[str | None]:
    return [pick.agent for pick in picks]


def test_round_robin_rotates_and_survives_a_restart(client: redis.Redis, keys: Keys) -> None:
    first = Assigner(client, keys=keys, routing=load_routing(path=None, agents=["ann", "bob", "cat"]))
    first.sync()
    picks = [first.pick(lead(i), now=T0) for i in range(4)]
    assert agents(picks) == ["ann", "bob", "cat", "ann"]
    assert picks[1] == Pick(outcome="assigned", agent="bob", agent_id=None, pool="default", rule=None,
                            strategy="round_robin", reason="next in rotation after ann")
    restarted = Assigner(client, keys=keys, routing=load_routing(path=None, agents=["ann", "bob", "cat"]))
    restarted.sync()
    assert restarted.pick(lead(9), now=T0).agent == "bob"


def test_a_second_pick_for_the_same_lead_returns_the_same_agent(client: redis.Redis, keys: Keys) -> None:
    assigner = make(client, keys, pool("round_robin", ["a", "b", "c"]))
    first = assigner.pick(lead(1), now=T0)
    again = assigner.pick(lead(1), now=T0 + 1)
    assert (again.agent, again.pool, again.strategy, again.reason) == (first.agent, "default", "round_robin",
                                                                        first.reason)
    assert assigner.pick(lead(2), now=T0).agent == "b"              # the cursor did not move
    assert AgentStore(client, keys=keys).get("a").open == 1         # one reservation, not two


def test_agents_added_or_removed_neither_reset_nor_skip(client: redis.Redis, keys: Keys) -> None:
    names = ["a", "b", "c", "d"]
    assert agents([make(client, keys, pool("round_robin", names)).pick(lead(i)) for i in range(2)]) == ["a", "b"]
    # b was last; c leaves: d is next, not a.
    assigner = make(client, keys, pool("round_robin", ["a", "b", "d"]))
    assert assigner.pick(lead(3)).agent == "d"
    # b (the cursor) leaves and e joins (ordinal after d): the rotation goes on after d → e, then a.
    assigner = make(client, keys, pool("round_robin", ["a", "d", "e"]))
    assert agents([assigner.pick(lead(i)) for i in range(4, 7)]) == ["e", "a", "d"]
    # c comes back with its old ordinal, between b and d.
    assigner = make(client, keys, pool("round_robin", ["a", "c", "d", "e"]))
    assert agents([assigner.pick(lead(i)) for i in range(7, 10)]) == ["e", "a", "c"]


def test_explicit_agent_wins_even_when_unknown_or_paused(client: redis.Redis, keys: Keys) -> None:
    spec = pool("round_robin", ["a", "b"])
    spec["agents"][1]["id"] = 42
    assigner = make(client, keys, spec)
    AgentStore(client, keys=keys).pause("b", reason="lunch")
    known = assigner.pick(lead(1, agent="b"), now=T0)
    assert (known.agent, known.agent_id, known.strategy, known.reason) == ("b", 42, "explicit", "explicit")
    unknown = assigner.pick(lead(2, agent="zoe"), now=T0)
    assert (unknown.outcome, unknown.agent, unknown.agent_id) == ("assigned", "zoe", None)
    assert AgentStore(client, keys=keys).get("b").open == 1
    assert assigner.release(lead_id="L2") and assigner.release(lead_id="L1")
    assert AgentStore(client, keys=keys).get("b").open == 0
    assert assigner.pick(lead(3), now=T0).agent == "a"               # explicit picks leave the cursor alone


def test_paused_agents_are_skipped_and_audited(client: redis.Redis, keys: Keys) -> None:
    assigner = make(client, keys, pool("round_robin", ["a", "b", "c"]))
    store = AgentStore(client, keys=keys)
    store.pause("b", reason="training")
    picks = [assigner.pick(lead(i), now=T0) for i in range(4)]
    assert agents(picks) == ["a", "c", "a", "c"]
    assert picks[0].skipped == (Skip("b", "paused"),)
    assert store.get("b").pause_reason == "training"
    store.resume("b")
    assert agents([assigner.pick(lead(i), now=T0) for i in range(5, 7)]) == ["a", "b"]


def test_capacity_fills_waits_and_a_release_frees_it(client: redis.Redis, keys: Keys) -> None:
    spec = pool("round_robin", ["a", "b"], retry_seconds=7, max_wait_seconds=60)
    spec["agents"] = [{"name": "a", "capacity": 1}, {"name": "b", "capacity": 1}]
    assigner = make(client, keys, spec)
    assert agents([assigner.pick(lead(i), now=T0) for i in range(2)]) == ["a", "b"]
    waiting = assigner.pick(lead(3), now=T0)
    assert (waiting.outcome, waiting.agent, waiting.retry_after_seconds) == ("wait", None, 7)
    assert waiting.skipped == (Skip("a", "at_capacity"), Skip("b", "at_capacity"))
    assert assigner.release(lead_id="L0", now=T0) is True
    assert assigner.release(lead_id="L0", now=T0) is False
    assert assigner.pick(lead(3), now=T0).agent == "a"
    assert assigner.pick(lead(4), now=T0).outcome == "wait"


def test_wrap_up_after_release(client: redis.Redis, keys: Keys) -> None:
    spec = pool("round_robin", ["a"], retry_seconds=60)
    spec["agents"] = [{"name": "a", "capacity": 1, "wrap_up_seconds": 30}]
    assigner = make(client, keys, spec)
    assert assigner.pick(lead(1), now=T0).agent == "a"
    assigner.release(lead_id="L1", now=T0 + 5)
    waiting = assigner.pick(lead(2), now=T0 + 10)
    assert waiting.outcome == "wait" and waiting.skipped == (Skip("a", "wrap_up"),)
    assert waiting.retry_after_seconds == pytest.approx(25)
    assert assigner.pick(lead(2), now=T0 + 35).agent == "a"


def test_reservations_time_out(client: redis.Redis, keys: Keys) -> None:
    spec = pool("round_robin", ["a"])
    spec["agents"] = [{"name": "a", "capacity": 1}]
    assigner = make(client, keys, spec, reservation_timeout_seconds=10)
    assigner.pick(lead(1), now=T0)
    assert assigner.expire_reservations(T0 + 9) == 0
    assert assigner.pick(lead(2), now=T0 + 9).outcome == "wait"
    assert assigner.expire_reservations(T0 + 11) == 1
    assert assigner.expire_reservations(T0 + 12) == 0
    assert assigner.pick(lead(2), now=T0 + 12).agent == "a"
    assert assigner.release(lead_id="L1") is False


def test_off_shift_agents_are_skipped_and_the_wait_hint_is_the_next_shift(
    client: redis.Redis, keys: Keys
) -> None:
    spec = pool("round_robin", ["day", "night"], retry_seconds=3600, max_wait_seconds=7200)
    spec["agents"] = [
        {"name": "day", "schedule": {"timezone": "UTC", "hours": ["09:00-17:00"]}},
        {"name": "night", "schedule": {"timezone": "UTC", "hours": ["22:00-06:00"]}},
    ]
    assigner = make(client, keys, spec)
    noon = assigner.pick(lead(1), now=T0)                            # 10:40 UTC
    assert noon.agent == "day" and noon.skipped == (Skip("night", "off_shift"),)
    evening = assigner.pick(lead(2), now=T0 + 10.5 * 3600)           # 21:10 UTC: nobody
    assert evening.outcome == "wait"
    assert evening.retry_after_seconds == pytest.approx(50 * 60)
    assert assigner.pick(lead(3), now=T0 + 12 * 3600).agent == "night"


def test_wait_then_overflow_then_ryng(client: redis.Redis, keys: Keys) -> None:
    spec = {
        "agents": [{"name": "a"}, {"name": "b"}],
        "pools": [
            {"name": "default", "members": ["a"], "when_empty": "wait", "max_wait_seconds": 60,
             "overflow": "spare"},
            {"name": "spare", "members": ["b"], "when_empty": "ryng"},
        ],
    }
    assigner = make(client, keys, spec)
    store = AgentStore(client, keys=keys)
    store.pause("a", reason="away")
    assert assigner.pick(lead(1), waited_seconds=30, now=T0).outcome == "wait"
    overflowed = assigner.pick(lead(1), waited_seconds=61, now=T0)
    assert (overflowed.agent, overflowed.pool) == ("b", "spare")
    assert overflowed.reason.startswith("overflow from 'default'") and overflowed.skipped == (Skip("a", "paused"),)
    store.pause("b", reason="away")
    ryng = assigner.pick(lead(2), waited_seconds=61, now=T0)
    assert (ryng.outcome, ryng.agent, ryng.pool) == ("ryng", None, "spare")
    assert ryng.skipped == (Skip("a", "paused"), Skip("b", "paused"))


def test_a_wait_that_runs_out_with_nowhere_to_overflow_is_unroutable_never_ryng(
    client: redis.Redis, keys: Keys
) -> None:
    spec = pool("round_robin", ["a"], when_empty="wait", max_wait_seconds=60)
    assigner = make(client, keys, spec)
    AgentStore(client, keys=keys).pause("a", reason="night")
    assert assigner.pick(lead(1), waited_seconds=59, now=T0).outcome == "wait"
    gave_up = assigner.pick(lead(1), waited_seconds=61, now=T0)
    assert (gave_up.outcome, gave_up.agent) == ("unroutable", None)  # a paused agent's lead never goes to Ryng
    assert "for 60 s" in gave_up.reason and gave_up.skipped == (Skip("a", "paused"),)


def test_a_settled_delivery_run_restarts_the_reservation_timeout(client: redis.Redis, keys: Keys) -> None:
    spec = pool("round_robin", ["a"])
    spec["agents"] = [{"name": "a", "capacity": 1}]
    assigner = make(client, keys, spec, reservation_timeout_seconds=10)
    start = time.time()
    assigner.pick(lead(1), now=start)
    LeadStore(client, keys=keys).accept(lead_id="L1", payload={"id": "L1"}, source="api")
    ledger = DeliveryLedger(client, keys=keys, limiter=RateLimiter(client, keys=keys, limit=5), lease_seconds=30,
                            lock_seconds=30, reservation_timeout_seconds=30, locked_retry_seconds=2)
    ledger.settle("L1", token="", settlement=Settlement(park_seconds=5))  # e.g. parked again by a backoff
    assert assigner.expire_reservations(start + 11) == 0  # would have expired without the settlement
    assert assigner.expire_reservations(start + 60) == 1


def test_cancel_frees_capacity_without_wrap_up_or_sticky_ownership(client: redis.Redis, keys: Keys) -> None:
    spec = pool("round_robin", ["a", "b"], sticky_seconds=3600)
    spec["agents"] = [{"name": "a", "capacity": 1, "wrap_up_seconds": 60}, {"name": "b"}]
    assigner = make(client, keys, spec)
    first = assigner.pick(lead(1, number="+919800000001"), now=T0)
    assert first.agent == "a"
    assert assigner.release(lead_id="L1", now=T0 + 1, cancel=True) is True  # the lead died before Ryng had it
    store = AgentStore(client, keys=keys)
    assert store.get("a").open == 0
    again = assigner.pick(lead(2, number="+919800000001"), now=T0 + 2)
    assert again.strategy != "sticky"                           # no sticky owner was left behind
    assert assigner.pick(lead(3), now=T0 + 3).agent == "a"      # and no wrap-up: a is eligible at once


def test_overflow_and_ryng_without_waiting(client: redis.Redis, keys: Keys) -> None:
    spec = {
        "agents": [{"name": "a"}, {"name": "b"}],
        "pools": [{"name": "default", "members": ["a"], "when_empty": "overflow", "overflow": "spare"},
                  {"name": "spare", "members": ["b"], "when_empty": "ryng"}],
    }
    assigner = make(client, keys, spec)
    AgentStore(client, keys=keys).pause("a", reason="x")
    assert assigner.pick(lead(1), now=T0).pool == "spare"
    assert assigner.pick(lead(2), now=T0, ).agent == "b"
    AgentStore(client, keys=keys).pause("b", reason="x")
    assert assigner.pick(lead(3), now=T0).outcome == "ryng"


def test_rules_choose_the_pool_and_explicit_pool_wins(client: redis.Redis, keys: Keys) -> None:
    spec = {
        "agents": [{"name": "life1"}, {"name": "life2"}, {"name": "gen"}],
        "pools": [{"name": "life", "members": ["life1", "life2"]}, {"name": "general", "members": ["gen"]}],
        "default_pool": "general",
        "rules": [{"name": "life-insurance", "pool": "life",
                   "when": {"field": "Product", "equals": "Life Insurance"}}],
    }
    assigner = make(client, keys, spec)
    life = assigner.pick(lead(1, fields={"Product": "Life Insurance"}), now=T0)
    assert (life.agent, life.pool, life.rule) == ("life1", "life", "life-insurance")
    other = assigner.pick(lead(2, fields={"Product": "Car"}), now=T0)
    assert (other.agent, other.pool, other.rule) == ("gen", "general", None)
    forced = assigner.pick(lead(3, fields={"Product": "Car"}, pool="life"), now=T0)
    assert (forced.agent, forced.pool) == ("life2", "life")
    assert assigner.pick(lead(1, fields={"Product": "Life Insurance"}), now=T0).rule == "life-insurance"


def test_sticky_owner_within_the_window_if_eligible(client: redis.Redis, keys: Keys) -> None:
    assigner = make(client, keys, pool("round_robin", ["a", "b", "c"], sticky_seconds=3600))
    assert assigner.pick(lead(1, number="+91 98000 11111"), now=T0).agent == "a"
    assert assigner.pick(lead(2), now=T0).agent == "b"
    repeat = assigner.pick(lead(3, number="+919800011111"), now=T0 + 60)
    assert (repeat.agent, repeat.strategy) == ("a", "sticky")
    assert assigner.pick(lead(4), now=T0 + 60).agent == "c"          # stickiness does not move the rotation
    AgentStore(client, keys=keys).pause("a", reason="x")
    assert assigner.pick(lead(5, number="+919800011111"), now=T0 + 120).agent == "b"
    assert assigner.pick(lead(6, number="+919800011111"), now=T0 + 180).agent == "b"   # now b owns it
    late = assigner.pick(lead(7, number="+919800011111"), now=T0 + 180 + 3601)
    assert late.strategy == "round_robin"


def test_weighted_is_smooth(client: redis.Redis, keys: Keys) -> None:
    spec = pool("weighted", ["a", "b", "c"])
    spec["agents"][0]["weight"] = 5
    assigner = make(client, keys, spec)
    assert "".join(str(pick.agent) for pick in (assigner.pick(lead(i)) for i in range(14))) == "aabacaa" * 2
    AgentStore(client, keys=keys).set("b", weight=5)                  # live override
    picks = "".join(str(assigner.pick(lead(i)).agent) for i in range(100, 111))
    assert picks.count("a") == 5 and picks.count("b") == 5 and picks.count("c") == 1


def test_least_busy_prefers_fewest_open_then_longest_idle(client: redis.Redis, keys: Keys) -> None:
    assigner = make(client, keys, pool("least_busy", ["a", "b", "c"]))
    assert agents([assigner.pick(lead(i), now=T0 + i) for i in range(3)]) == ["a", "b", "c"]
    assigner.release(lead_id="L1", now=T0 + 5)                        # b has fewest open
    assert assigner.pick(lead(4), now=T0 + 6).agent == "b"
    assert assigner.pick(lead(5), now=T0 + 7).agent == "a"            # all at 1: a idle longest


def test_least_busy_catch_up_feeds_a_returning_agent_gradually(client: redis.Redis, keys: Keys) -> None:
    assigner = make(client, keys, pool("least_busy", ["a", "b", "c"], catch_up=2))
    store = AgentStore(client, keys=keys)
    store.pause("c", reason="holiday")
    for i in range(6):
        assigner.pick(lead(i), now=T0 + i)                            # a and b: 3 open each
    store.resume("c")
    picks = [assigner.pick(lead(i), now=T0 + i) for i in range(10, 16)]
    assert agents(picks) == ["c", "c", "a", "c", "b", "c"]   # a 4 open, b 3, c 3: tie → b idle longer
    assert "catch-up" in str(picks[2].reason)


def test_longest_idle(client: redis.Redis, keys: Keys) -> None:
    assigner = make(client, keys, pool("longest_idle", ["a", "b", "c"]))
    assert agents([assigner.pick(lead(i), now=T0 + i) for i in range(3)]) == ["a", "b", "c"]
    AgentStore(client, keys=keys).pause("a", reason="x")
    assert assigner.pick(lead(4), now=T0 + 10).agent == "b"
    AgentStore(client, keys=keys).resume("a")
    assert agents([assigner.pick(lead(i), now=T0 + 10 + i) for i in range(5, 8)]) == ["a", "c", "b"]


def test_agent_store_lists_state_and_pools(client: redis.Redis, keys: Keys) -> None:
    spec = pool("weighted", ["a", "b"])
    spec["agents"][0].update(id=7, capacity=3, weight=2)
    assigner = make(client, keys, spec)
    assigner.pick(lead(1), now=T0)
    store = AgentStore(client, keys=keys)
    a, _ = store.agents()
    assert (a.name, a.agent_id, a.weight, a.capacity, a.open, a.assigned) == ("a", 7, 2, 3, 1, 1)
    assert a.last_assigned_at == pytest.approx(T0)
    assert store.set("a", capacity=5, weight=4).capacity == 5
    assert store.set("a", reset=True).capacity == 3
    (found,) = store.pools()
    assert (found.name, found.strategy, found.members) == ("default", "weighted", ["a", "b"])
    assert store.stats().reservations == 1
    make(client, keys, pool("weighted", ["b"]))
    assert [agent.name for agent in store.agents()] == ["b"]
    assert [agent.name for agent in store.agents(include_removed=True)] == ["a", "b"]
