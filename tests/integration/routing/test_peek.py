"""`Assigner.peek`: the agent the next plain lead would get, by the pick script itself, changing nothing."""

from __future__ import annotations

import pytest
import redis

from config.routing import RoutingConfig
from workers.routing.agents import AgentStore
from workers.routing.assigner import STRATEGIES, Assigner, LeadFacts
from workers.store.keys import Keys


def _state(client: redis.Redis, keys: Keys) -> dict[str, bytes | None]:
    return {key: client.dump(key) for key in sorted(client.scan_iter(keys.match()))}


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_peek_names_the_next_pick_and_writes_nothing(client: redis.Redis, keys: Keys, strategy: str) -> None:
    routing = RoutingConfig.model_validate({
        "agents": [{"name": "ann", "weight": 3}, {"name": "bob"}, {"name": "cy", "capacity": 1}],
        "pools": [{"name": "default", "members": ["ann", "bob", "cy"], "strategy": strategy}],
    })
    assigner = Assigner(client, keys=keys, routing=routing)
    assigner.sync()
    agents = AgentStore(client, keys=keys)
    for n in range(12):
        if n == 5:
            agents.pause("bob", reason="lunch")
        if n == 9:
            agents.resume("bob")
        before = _state(client, keys)
        peek = assigner.peek("default")
        assert _state(client, keys) == before, "a peek must not write"
        pick = assigner.pick(LeadFacts(lead_id=f"L{n}", number="", fields={}))
        assert peek.agent == pick.agent, (n, peek, pick)
        if n % 3 == 0:
            assigner.release(lead_id=f"L{n}")


def test_peek_says_who_is_skipped_when_nobody_is_eligible(client: redis.Redis, keys: Keys) -> None:
    routing = RoutingConfig.model_validate({
        "agents": [{"name": "ann"}, {"name": "bob"}], "pools": [{"name": "default", "members": ["ann", "bob"]}],
    })
    assigner = Assigner(client, keys=keys, routing=routing)
    assigner.sync()
    agents = AgentStore(client, keys=keys)
    agents.pause("ann", reason="x")
    agents.pause("bob", reason="y")
    peek = assigner.peek("default")
    assert peek.agent is None
    assert {(skip.agent, skip.reason) for skip in peek.skipped} == {("ann", "paused"), ("bob", "paused")}


def test_picks_today_counts_each_pick(client: redis.Redis, keys: Keys) -> None:
    routing = RoutingConfig.model_validate({"agents": [{"name": "ann"}], "pools": [{"name": "default",
                                                                                   "members": ["ann"]}]})
    assigner = Assigner(client, keys=keys, routing=routing)
    assigner.sync()
    for n in range(3):
        assigner.pick(LeadFacts(lead_id=f"L{n}", number="", fields={}))
    state = AgentStore(client, keys=keys).get("ann")
    assert (state.picks_today, state.assigned) == (3, 3)
    client.hset(keys.agent("ann"), "picks_day", "1")  # a pick on an earlier day does not count today
    assert AgentStore(client, keys=keys).get("ann").picks_today == 0
    assigner.pick(LeadFacts(lead_id="L9", number="", fields={}))
    assert AgentStore(client, keys=keys).get("ann").picks_today == 1
