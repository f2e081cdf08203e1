"""Concurrency on real Redis: 8 processes picking at once never skew the rotation or overfill capacity."""

from __future__ import annotations

import multiprocessing
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from config.routing import RoutingConfig
from workers.routing.agents import AgentStore
from workers.routing.assigner import Assigner, LeadFacts
from workers.store.connections import connect
from workers.store.keys import Keys

NAMES = ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]


def routing(capacity: int) -> RoutingConfig:
    return RoutingConfig.model_validate({
        "agents": [{"name": name, "capacity": capacity} for name in NAMES],
        "pools": [{"name": "default", "members": NAMES}],
    })


def _worker(url: str, prefix: str, worker: int, picks: int, capacity: int, release_every: int,
            queue: multiprocessing.Queue[Any]) -> None:
    client = connect(url)
    assigner = Assigner(client, keys=Keys(prefix), routing=routing(capacity))
    assigner.sync()                                        # every worker syncs at start-up, as in production
    got: list[str | None] = []
    for n in range(picks):
        lead_id = f"w{worker}-{n}"
        pick = assigner.pick(LeadFacts(lead_id=lead_id, number="", fields={}))
        got.append(pick.agent)
        if release_every and pick.agent and n % release_every == 0:
            assigner.release(lead_id=lead_id)
    queue.put(got)
    client.close()


def run(
    url: str, prefix: str, *, processes: int, picks: int, capacity: int, release_every: int = 0
) -> list[str | None]:
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[Any] = context.Queue()
    shares = [picks // processes + (1 if i < picks % processes else 0) for i in range(processes)]
    workers = [context.Process(target=_worker, args=(url, prefix, i, share, capacity, release_every, queue))
               for i, share in enumerate(shares)]
    for process in workers:
        process.start()
    results: list[str | None] = []
    for _ in workers:
        results.extend(queue.get(timeout=60))
    for process in workers:
        process.join(timeout=10)
        assert process.exitcode == 0
    return results


@pytest.fixture
def url(redis_server_url: str) -> str:
    return redis_server_url


@pytest.fixture
def prefix(url: str) -> Iterator[str]:
    name = f"conc-{uuid.uuid4().hex[:12]}"
    yield name
    client = connect(url)
    for key in client.scan_iter(Keys(name).match()):
        client.delete(key)
    client.close()


def test_ten_thousand_picks_by_eight_processes_stay_within_one(url: str, prefix: str) -> None:
    results = run(url, prefix, processes=8, picks=10_000, capacity=0)
    counts = Counter(results)
    assert sum(counts.values()) == 10_000 and None not in counts
    assert set(counts) == set(NAMES)
    assert max(counts.values()) - min(counts.values()) <= 1


def reservations(client: redis.Redis, prefix: str) -> Counter[str]:
    held: Counter[str] = Counter()
    for key in client.scan_iter(Keys(prefix).reservation("*")):
        held[str(client.hget(key, "agent"))] += 1
    return held


def test_no_reservation_past_capacity_under_contention(url: str, prefix: str) -> None:
    results = run(url, prefix, processes=8, picks=800, capacity=3)
    assigned = Counter(agent for agent in results if agent)
    assert assigned == Counter({name: 3 for name in NAMES})            # 21 slots, 779 told to wait
    client = connect(url)
    try:
        assert reservations(client, prefix) == assigned
        assert all(state.open == 3 for state in AgentStore(client, keys=Keys(prefix)).agents())
    finally:
        client.close()


def test_open_counts_match_reservations_with_concurrent_releases(url: str, prefix: str) -> None:
    run(url, prefix, processes=8, picks=4000, capacity=2, release_every=2)
    client = connect(url)
    try:
        held = reservations(client, prefix)
        for state in AgentStore(client, keys=Keys(prefix)).agents():
            assert state.open == held[state.name] <= 2
    finally:
        client.close()
