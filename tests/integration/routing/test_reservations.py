"""Reservations on real Redis: a release reads the reservation, then frees it in one script that checks it did not
change in between; the same holds for syncing pools and claiming expired leases."""

from __future__ import annotations

from typing import Any

import pytest
import redis

from config.routing import RoutingConfig
from workers.lua import load_script
from workers.routing.agents import AgentStore
from workers.routing.assigner import Assigner, LeadFacts
from workers.routing.reservations import Reservations
from workers.store.keys import Keys
from workers.store.parking import Parking

T0 = 1_766_400_000.0


def config(pools: tuple[str, ...] = ("default",)) -> RoutingConfig:
    return RoutingConfig.model_validate({
        "agents": [{"name": "ann"}, {"name": "bob"}],
        "pools": [{"name": name, "members": ["ann", "bob"]} for name in pools],
        "default_pool": pools[0],
    })


def make(client: redis.Redis, keys: Keys, pools: tuple[str, ...] = ("default",)) -> Assigner:
    assigner = Assigner(client, keys=keys, routing=config(pools))
    assigner.sync()
    return assigner


def lead(lead_id: str, agent: str | None = None) -> LeadFacts:
    return LeadFacts(lead_id=lead_id, number="+919800000001", fields={}, agent=agent)


def release(client: redis.Redis, keys: Keys, lead_id: str, *, agent: str, number: str, mode: str = "leads",
            now_ms: int = int(T0 * 1000)) -> list[int]:
    script = load_script(client, "reservation_release")
    result: list[int] = script(
        keys=[keys.reservations, keys.reservation(lead_id), keys.agent(agent), keys.sticky(number)],
        args=[now_ms, mode, lead_id, agent, number],
    )
    return result


def test_a_release_built_on_a_stale_read_changes_nothing(client: redis.Redis, keys: Keys) -> None:
    assigner = make(client, keys)
    assert assigner.pick(lead("L1"), now=T0).agent == "ann"
    assert release(client, keys, "L1", agent="bob", number="+919800000001") == [0, 1]   # it names ann now
    assert release(client, keys, "L1", agent="ann", number="+91") == [0, 1]             # and another number
    assert AgentStore(client, keys=keys).get("ann").open == 1
    assert release(client, keys, "L1", agent="ann", number="+919800000001") == [1, 0]
    assert AgentStore(client, keys=keys).get("ann").open == 0
    assert release(client, keys, "L1", agent="ann", number="+919800000001") == [0, 0]   # nothing held: no-op


def test_a_pick_racing_a_release_is_read_again(client: redis.Redis, keys: Keys,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Between the read and the script another worker frees L1 (from ann) and picks it again (bob)."""
    assigner = make(client, keys)
    assert assigner.pick(lead("L1"), now=T0).agent == "ann"
    reservations = Reservations(client, keys=keys)
    script, calls = reservations._release, []

    def racing(**call: Any) -> Any:
        if not calls:
            assert assigner.release(lead_id="L1", now=T0) and assigner.pick(lead("L1"), now=T0).agent == "bob"
        calls.append(call)
        return script(**call)

    monkeypatch.setattr(reservations, "_release", racing)
    assert reservations.release("L1", now_ms=int(T0 * 1000)) is True
    assert len(calls) == 2                      # the stale attempt, then one on a fresh read
    agents = AgentStore(client, keys=keys)
    assert (agents.get("ann").open, agents.get("bob").open, agents.stats().reservations) == (0, 0, 0)


def test_an_expiry_leaves_a_reservation_extended_meanwhile(client: redis.Redis, keys: Keys,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assigner = make(client, keys)
    assigner.pick(lead("L1"), now=T0)
    assigner.pick(lead("L2"), now=T0)
    reservations = Reservations(client, keys=keys)
    script = reservations._release

    def extending(**call: Any) -> Any:  # as a delivery run settling meanwhile moves L1's deadline
        later = int((T0 + 2 * 3600) * 1000)
        client.hset(keys.reservation("L1"), "deadline", later)
        client.zadd(keys.reservations, {"L1": later})
        return script(**call)

    monkeypatch.setattr(reservations, "_release", extending)
    assert reservations.expire(now_ms=int((T0 + 3601) * 1000), limit=10) == 1     # L2 only
    assert client.zrange(keys.reservations, 0, -1) == ["L1"]
    assert release(client, keys, "L1", agent="ann", number="+919800000001", mode="expired",
                   now_ms=int((T0 + 3601) * 1000)) == [0, 0]                     # not due: left alone


def test_sync_reads_again_when_another_process_registered_a_pool(client: redis.Redis, keys: Keys,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    make(client, keys, pools=("default", "old"))
    assigner = Assigner(client, keys=keys, routing=config())  # "old" is gone from the file
    script, calls = assigner._sync, []

    def racing(**call: Any) -> Any:
        if not calls:  # another process, with another file, registers "other" after this one read the pools
            client.sadd(keys.pools, "other")
            client.set(keys.pool_config("other"), "{}")
        calls.append(call)
        return script(**call)

    monkeypatch.setattr(assigner, "_sync", racing)
    assigner.sync()
    assert len(calls) == 2
    assert [pool.name for pool in AgentStore(client, keys=keys).pools()] == ["default"]
    assert not client.exists(keys.pool_config("other"), keys.pool_config("old"), keys.pool_members("old"))


def test_a_lease_renewed_after_the_read_is_not_claimed(client: redis.Redis, keys: Keys,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    parking = Parking(client, keys=keys, lease_seconds=30)
    client.zadd(keys.pending, {"L1": 1, "L2": 1})
    script = parking._claim_expired

    def renewing(**call: Any) -> Any:
        parking.renew("L1")  # a worker took L1 meanwhile
        return script(**call)

    monkeypatch.setattr(parking, "_claim_expired", renewing)
    assert parking.claim_expired() == ["L2"]
    lease = client.zscore(keys.pending, "L1")
    assert lease is not None and lease > 1
