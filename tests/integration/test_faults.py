"""Fault tests on real processes (issue 4, items 1–6): kill -9, redelivery, long waits, Redis restart,
Ryng storms and SIGTERM. Real Redis (an embedded Valkey per module), real Celery workers, the sandbox over HTTP.

Every test checks the two promises: nothing accepted is lost, and a lead that reached Ryng more than once is
flagged `possible_duplicate` on its record.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from tests.harness import Stack, embedded_redis, wait_until
from workers.agents import AgentStore
from workers.keys import Keys

pytestmark = pytest.mark.fault

DELIVERED = ("posted", "connected", "completed")


@pytest.fixture(scope="module")
def redis_server_url() -> Iterator[str]:
    """Our own server: these tests restart and flood it, so they never share one with other suites."""
    configured = os.environ.get("LEAD_ROUTER_TEST_REDIS_URL")
    if configured:
        yield configured.rstrip("/")
        return
    with embedded_redis() as server:
        yield f"redis://127.0.0.1:{server.port}"


# --- helpers -------------------------------------------------------------------------------------------
def lead(lead_id: str, i: int = 0) -> dict[str, object]:
    return {"id": lead_id, "number": f"9{i:09d}", "fields": {"Product": "Motor"}}


def post_all(stack: Stack, ids: Sequence[str], *, threads: int = 8) -> list[int]:
    def send(item: tuple[int, str]) -> int:
        with httpx.Client(timeout=10) as client:
            return client.post(f"{stack.api_url}/v1/leads", json=lead(item[1], item[0])).status_code

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(send, enumerate(ids)))


def campaign_counts(stack: Stack) -> Counter[str]:
    return Counter(str(c["name"]) for c in stack.campaigns())


def wait_delivered(stack: Stack, ids: Sequence[str], *, timeout: float) -> Counter[str]:
    """Until every id has a campaign in the sandbox and a delivered record; returns campaigns per name."""
    wanted = set(ids)
    wait_until(lambda: wanted <= set(campaign_counts(stack)), timeout=timeout, interval=0.5,
               what=f"campaigns for all of {len(wanted)} leads")
    for lead_id in ids:
        stack.wait_status(lead_id, *DELIVERED, timeout=15)
    return campaign_counts(stack)


def assert_duplicates_flagged(stack: Stack, counts: Counter[str]) -> list[str]:
    """Every lead with more than one campaign carries possible_duplicate; returns those leads."""
    dups = sorted(name for name, n in counts.items() if n > 1)
    for name in dups:
        record = stack.lead(name)
        assert record["possible_duplicate"] is True, (name, counts[name], record["history"])
    return dups


def events(record: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e for e in record["history"] if e["event"] == kind]


def send_task_again(stack: Stack, lead_id: str, *, times: int) -> None:
    with Celery("probe", broker=stack.redis_url, set_as_current=False) as sender:
        for _ in range(times):
            sender.send_task("lead_router.deliver", args=[lead_id], queue="leads")


def keys(stack: Stack) -> Keys:
    return Keys(stack.settings["ROUTER_KEY_PREFIX"])


def db(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.redis_url, decode_responses=True)


def expire_lease(stack: Stack, lead_id: str) -> None:
    """Make the lead look lost: its lease ran out long ago (as after a crash nobody noticed)."""
    with db(stack) as client:
        client.zadd(keys(stack).pending, {lead_id: 1})


def lease_of(stack: Stack, lead_id: str) -> float | None:
    with db(stack) as client:
        score: float | None = client.zscore(keys(stack).pending, lead_id)  # type: ignore[assignment]
        return score


# --- 1. SIGKILL mid-burst ------------------------------------------------------------------------------
def test_sigkill_worker_mid_burst_loses_nothing(make_stack: Callable[..., Stack]) -> None:
    """The Redis transport's visibility timeout stays at its default hour: recovery comes from our leases.

    The first four requests are recorded by the sandbox at once but answered late, so the killed worker's
    two in-flight leads did reach Ryng: they are sent again, and must be flagged as possible duplicates.
    """
    stack = make_stack(ROUTER_LEASE_SECONDS="5")
    assert "CELERY_VISIBILITY_TIMEOUT" not in stack.env
    stack.start_sandbox("--no-calls", "--rate-limit", "6000", "--latency-ms", "800")
    stack.start_api()
    victim = stack.start_worker(concurrency=2)
    stack.start_worker(concurrency=2)
    stack.faults(timeout_next=4, timeout_seconds=3)
    ids = [f"K{i:02d}" for i in range(30)]
    assert post_all(stack, ids) == [202] * len(ids)
    # Four processes (two per worker) are now each waiting for a late answer to a recorded campaign.
    wait_until(lambda: len(stack.campaigns()) >= 4, timeout=20, what="four recorded campaigns")
    victim.kill()
    killed_at = time.monotonic()

    counts = wait_delivered(stack, ids, timeout=120)
    assert time.monotonic() - killed_at < 120
    assert set(counts) == set(ids)
    dups = assert_duplicates_flagged(stack, counts)
    assert dups, "the killed worker's recorded campaigns were never sent again"
    crashed = [i for i in ids if events(stack.lead(i), "crash")]
    assert set(dups) <= set(crashed), (dups, crashed)
    unflagged = [i for i in ids if not stack.lead(i)["possible_duplicate"]]
    assert all(counts[i] == 1 for i in unflagged)


# --- 2. Redelivery of a posted lead --------------------------------------------------------------------
def test_redelivery_of_an_accepted_lead_posts_nothing(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(ROUTER_LEASE_SECONDS="5")
    stack.start_sandbox("--no-calls", "--rate-limit", "6000", "--latency-ms", "1500")
    stack.start_api()
    stack.start_worker(concurrency=3)
    assert stack.post_lead(lead("RD1")).status_code == 202
    # While its one request is in flight: more messages, and a lease that looks expired.
    wait_until(lambda: stack.sandbox_stats()["total_requests"] >= 1, timeout=10, what="first request")
    send_task_again(stack, "RD1", times=3)
    expire_lease(stack, "RD1")
    stack.wait_status("RD1", *DELIVERED, timeout=20)
    # After Ryng accepted it: again messages, an expired lease, and a stale "in task" flag.
    send_task_again(stack, "RD1", times=5)
    expire_lease(stack, "RD1")
    with db(stack) as client:
        client.hset(keys(stack).lead("RD1"), "in_task", "1")
    wait_until(lambda: lease_of(stack, "RD1") is None, timeout=15,
               what="the expired lease claimed and closed")
    time.sleep(2)
    assert campaign_counts(stack) == Counter({"RD1": 1})
    record = stack.lead("RD1")
    assert record["attempts"] == 1 and record["possible_duplicate"] is False
    assert record["status"] in DELIVERED
# --- 3. Waits longer than the visibility timeout -------------------------------------------------------
def test_waits_longer_than_the_visibility_timeout_post_once(make_stack: Callable[..., Stack]) -> None:
    """Limiter (3/min) and agent waits of 10–60 s with a 5 s visibility timeout: each lead posted once."""
    stack = make_stack(RYNG_RATE_LIMIT_PER_MIN="3", CELERY_VISIBILITY_TIMEOUT="5", ROUTER_LEASE_SECONDS="5")
    stack.start_sandbox("--no-calls", "--rate-limit", "3")
    stack.start_api()
    stack.start_worker(concurrency=2)
    limited = ["LIM0", "LIM1", "LIM2", "LIM3"]
    assert post_all(stack, limited) == [202] * 4
    wait_until(lambda: len(stack.campaigns()) == 3, timeout=15, what="three campaigns")
    first = {c["name"] for c in stack.campaigns()}
    (late,) = set(limited) - first
    assert stack.wait_status(late, "waiting", timeout=10)["wait_reason"] == "rate_limit"

    agents = AgentStore(db(stack), keys=keys(stack))
    for name in ("alice", "bob"):
        agents.pause(name, reason="fault test")
    waiting = ["AGT0", "AGT1"]
    assert post_all(stack, waiting) == [202] * 2
    for lead_id in waiting:
        assert stack.wait_status(lead_id, "waiting", timeout=10)["wait_reason"] == "no_agent_eligible"
    time.sleep(10)  # twice the visibility timeout, with no agent
    assert {c["name"] for c in stack.campaigns()} == first
    for name in ("alice", "bob"):
        agents.resume(name)

    counts = wait_delivered(stack, limited + waiting, timeout=90)
    assert counts == Counter({lead_id: 1 for lead_id in limited + waiting})
    for lead_id in limited + waiting:
        assert stack.lead(lead_id)["attempts"] == 1
    stats = stack.sandbox_stats()
    assert stats["rate_limited"] == 0 and "429" not in stats["by_status"], stats
    assert stats["max_requests_in_window"] <= 3, stats
    assert stats["total_requests"] == 6, stats
