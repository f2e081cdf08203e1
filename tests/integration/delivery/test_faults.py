"""Fault tests on real processes (issue 4, items 1-6): kill -9, redelivery, long waits, Redis restart,
Ryng storms and SIGTERM. Real Redis (the session's database; test 4 its own Valkey with AOF), real Celery
workers, the sandbox over HTTP.

Every test checks the two promises: nothing accepted is lost, and a lead that reached Ryng more than once is
flagged `possible_duplicate` on its record.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from celery import Celery

from tests.harness import Stack, wait_until
from workers.routing.agents import AgentStore
from workers.store.embedded import start_embedded
from workers.store.keys import Keys

pytestmark = pytest.mark.fault

DELIVERED = ("posted", "connected", "completed")


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
    try:
        wait_until(lambda: wanted <= set(campaign_counts(stack)), timeout=timeout, interval=0.5,
                   what=f"campaigns for all of {len(wanted)} leads")
    except AssertionError:
        missing = sorted(wanted - set(campaign_counts(stack)))
        detail = {i: stack.lead(i) for i in missing[:3]}
        raise AssertionError(f"no campaign for {missing}: {detail}") from None
    for lead_id in ids:  # a killed worker's lead is held until its lock expires (2 x RYNG_TIMEOUT_SECONDS + 5)
        stack.wait_status(lead_id, *DELIVERED, timeout=60)
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
        score: float | None = client.zscore(keys(stack).pending, lead_id)
        return score


# --- 1. SIGKILL mid-burst ------------------------------------------------------------------------------
def test_sigkill_worker_mid_burst_loses_nothing(make_stack: Callable[..., Stack]) -> None:
    """The Redis transport's visibility timeout stays at its default hour: recovery comes from our leases.

    The first four requests are recorded by the sandbox at once but answered late, so the killed worker's
    two in-flight leads did reach Ryng: they are sent again, and must be flagged as possible duplicates.
    """
    stack = make_stack(ROUTER_LEASE_SECONDS="5", RYNG_TIMEOUT_SECONDS="5")
    assert "CELERY_VISIBILITY_TIMEOUT" not in stack.env
    stack.start_sandbox("--no-calls", "--rate-limit", "6000", "--latency-ms", "800")
    stack.start_api()
    victim = stack.start_worker(concurrency=2)
    stack.start_worker(concurrency=2)
    stack.faults(timeout_next=4, timeout_seconds=3)
    ids = [f"K{i:02d}" for i in range(30)]
    with ThreadPoolExecutor(1) as poster:  # posting goes on beside the kill, however slowly the API answers
        answers = poster.submit(post_all, stack, ids)
        # Four processes (two per worker) are now each waiting for a late answer to a recorded campaign.
        wait_until(lambda: len(stack.campaigns()) >= 4, timeout=20, what="four recorded campaigns")
        victim.kill()
        killed_at = time.monotonic()
        assert answers.result() == [202] * len(ids)

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
    """Limiter (3/min) and agent waits of 10-60 s with a 5 s visibility timeout: each lead posted once."""
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


# --- 4. Redis restarted under load ---------------------------------------------------------------------
def test_redis_restart_under_load_loses_no_accepted_lead(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    """AOF on; Valkey stopped and started again on the same port and data dir while leads keep coming."""
    data_dir = tmp_path / "valkey"
    server = start_embedded(data_dir=data_dir)
    port = server.port
    try:
        stack = make_stack(ROUTER_LEASE_SECONDS="5")
        stack.redis_url = f"redis://127.0.0.1:{port}/0"  # this test's own server, restarted below
        stack.start_sandbox("--no-calls", "--rate-limit", "6000")
        stack.start_api()
        stack.start_worker(concurrency=2)
        stack.start_worker(concurrency=2)

        answers: list[tuple[str, int | str, float, float]] = []  # id, answer, sent at, answered at
        stop = threading.Event()

        def post_continuously() -> None:
            with httpx.Client(timeout=15) as client:
                i = 0
                while not stop.is_set():
                    lead_id = f"RS{i:04d}"
                    sent = time.monotonic()
                    try:
                        code: int | str = client.post(f"{stack.api_url}/v1/leads", json=lead(lead_id, i)).status_code
                    except httpx.HTTPError as exc:
                        code = type(exc).__name__
                    answers.append((lead_id, code, sent, time.monotonic()))
                    i += 1
                    time.sleep(0.05)

        poster = threading.Thread(target=post_continuously, daemon=True)
        poster.start()
        time.sleep(2.5)
        server.stop()
        down_at = time.monotonic()
        time.sleep(3)
        restart_at = time.monotonic()
        server = start_embedded(data_dir=data_dir, port=port)
        up_at = time.monotonic()
        wait_until(lambda: any(code == 202 and sent > up_at for _, code, sent, _ in answers), timeout=30,
                   what="a 202 after the restart (the API reconnected)")
        time.sleep(2.5)
        stop.set()
        poster.join(20)

        codes = Counter(code for _, code, _, _ in answers)
        assert set(codes) <= {202, 503}, codes
        during = [code for _, code, sent, done in answers if down_at < sent and done < restart_at]
        assert during and set(during) == {503}, Counter(during)
        accepted = [lead_id for lead_id, code, _, _ in answers if code == 202]
        assert any(done < down_at for _, code, _, done in answers if code == 202)
        counts = wait_delivered(stack, accepted, timeout=60)
        assert_duplicates_flagged(stack, counts)
        assert list(data_dir.glob("**/*.aof")), "AOF was not on"
    finally:
        if server.is_running():
            server.stop()


# --- 5. Ryng storms ------------------------------------------------------------------------------------
STORM_SETTINGS = {
    "ROUTER_MAX_ATTEMPTS": "8",
    "ROUTER_BACKOFF_BASE_SECONDS": "0.5",
    "ROUTER_BACKOFF_MAX_SECONDS": "2",
    "RYNG_TIMEOUT_SECONDS": "1",
    "ROUTER_LEASE_SECONDS": "5",
}


def test_storms_of_timeouts_500s_and_429s_deliver_everything(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(**STORM_SETTINGS)
    stack.start_sandbox("--no-calls", "--rate-limit", "6000")
    stack.start_api()
    stack.start_worker(concurrency=2)
    stack.start_worker(concurrency=2)
    # Three requests are recorded but answered after the client's 1 s timeout; half of the rest fail.
    stack.faults(fail_rate=0.5, fail_status=500, timeout_next=3, timeout_seconds=2.5, seed=7)
    ids = [f"ST{i:02d}" for i in range(12)]
    assert post_all(stack, ids) == [202] * len(ids)
    time.sleep(2)
    stack.faults(fail_status=429)
    time.sleep(2)
    stack.faults(fail_rate=0.0)

    counts = wait_delivered(stack, ids, timeout=60)
    stats = stack.sandbox_stats()
    assert {"500", "429"} <= set(stats["by_status"]) and stats["timeouts_injected"] == 3, stats
    records = {lead_id: stack.lead(lead_id) for lead_id in ids}
    assert all(1 <= r["attempts"] <= 8 for r in records.values()), {i: r["attempts"] for i, r in records.items()}
    assert all(r["dead_reason"] is None for r in records.values())

    # A timed-out attempt that Ryng did record is sent again, and the lead says so.
    late = {str(c["name"]) for c in stack.campaigns() if c["response_delayed_seconds"] > 0}
    assert len(late) == 3
    for lead_id in late:
        assert counts[lead_id] >= 2 and records[lead_id]["possible_duplicate"] is True, records[lead_id]
        assert "ambiguous" in [e["outcome"] for e in events(records[lead_id], "attempt")]
    assert_duplicates_flagged(stack, counts)

    # Backoff is jittered: each delay is drawn from [base/2, min(max, base * 2**(attempt-1))].
    delays = [(e["attempt"], e["delay_seconds"]) for r in records.values() for e in events(r, "retry_scheduled")]
    assert len(delays) >= 6, delays
    for attempt, delay in delays:
        assert 0.25 <= delay <= min(2.0, 0.5 * 2 ** (attempt - 1)) + 1e-6, (attempt, delay)
    first = [delay for attempt, delay in delays if attempt == 1]
    assert len(first) >= 3 and len(set(first)) > len(first) // 2, first  # not one fixed delay


def test_4xx_are_not_retried_and_403_pauses_without_dead_letters(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(**(STORM_SETTINGS | {"ROUTER_MAX_ATTEMPTS": "3"}))
    stack.start_sandbox("--no-calls", "--rate-limit", "6000")
    stack.start_api()
    stack.start_worker(concurrency=2)

    # 400: dead at once, with Ryng's answer, after exactly one request.
    stack.faults(fail_next=1, fail_status=400)
    assert stack.post_lead(lead("BAD400")).status_code == 202
    dead = stack.wait_status("BAD400", "dead", timeout=15)
    assert "400" in dead["dead_reason"] and dead["attempts"] == 1, dead
    assert dead["last_message"] and dead["last_message"] in dead["dead_reason"]
    time.sleep(1.5)
    assert stack.sandbox_stats()["total_requests"] == 1

    # 500 for ever: retried, but only ROUTER_MAX_ATTEMPTS times, then dead.
    stack.faults(fail_next=3, fail_status=500)
    assert stack.post_lead(lead("EXH500", 1)).status_code == 202
    exhausted = stack.wait_status("EXH500", "dead", timeout=20)
    assert exhausted["attempts"] == 3 and "gave up after 3 attempts" in exhausted["dead_reason"], exhausted
    assert stack.sandbox_stats()["total_requests"] == 4

    # 403: delivery pauses; nothing is dead-lettered even though 403s outnumber ROUTER_MAX_ATTEMPTS.
    stack.faults(fail_next=4, fail_status=403)
    paused = ["P403A", "P403B", "P403C"]
    assert post_all(stack, paused) == [202] * 3
    for lead_id in paused:
        stack.wait_status(lead_id, "waiting", *DELIVERED, timeout=15)
    counts = wait_delivered(stack, paused, timeout=30)
    assert all(counts[lead_id] == 1 for lead_id in paused), counts
    for lead_id in paused:
        record = stack.lead(lead_id)
        assert record["dead_reason"] is None and record["attempts"] == 1, record
    assert stack.sandbox_stats()["by_status"].get("403") == 4
    with db(stack) as client:
        assert set(client.zrange(keys(stack).dead, 0, -1)) == {"BAD400", "EXH500"}


# --- 6. SIGTERM mid-burst ------------------------------------------------------------------------------
def test_sigterm_finishes_or_returns_the_current_lead(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(ROUTER_LEASE_SECONDS="5")
    stack.start_sandbox("--no-calls", "--rate-limit", "6000", "--latency-ms", "1500")
    stack.start_api()

    # SIGTERM to the main process (docker stop, Kubernetes, kill PID): soft shutdown finishes the leads.
    first = stack.start_worker(concurrency=2)
    ids = [f"TM{i:02d}" for i in range(10)]
    assert post_all(stack, ids) == [202] * len(ids)
    wait_until(lambda: stack.sandbox_stats()["total_requests"] >= 2, timeout=15, what="two requests in flight")
    in_flight = stack.sandbox_stats()["total_requests"]
    os.kill(first.pid, signal.SIGTERM)
    assert first.process is not None
    first.process.wait(30)
    time.sleep(0.5)
    assert len(campaign_counts(stack)) >= in_flight  # the leads it was posting were completed, not dropped
    second = stack.start_worker(concurrency=2)
    counts = wait_delivered(stack, ids, timeout=60)
    assert all(n == 1 for n in counts.values()), counts
    crashed = [lead_id for lead_id in ids if events(stack.lead(lead_id), "crash")]
    assert not crashed, crashed

    # SIGTERM to the whole process group (systemd's default KillMode): the pool children die mid-request,
    # so this is a crash, not a soft shutdown — the leases bring the leads back; duplicates are flagged.
    more = [f"TG{i:02d}" for i in range(10)]
    before = stack.sandbox_stats()["total_requests"]
    assert post_all(stack, more) == [202] * len(more)
    wait_until(lambda: stack.sandbox_stats()["total_requests"] >= before + 2, timeout=15, what="in flight")
    second.signal_group(signal.SIGTERM)
    assert second.process is not None
    second.process.wait(30)
    stack.start_worker(concurrency=2)
    counts = wait_delivered(stack, ids + more, timeout=60)
    assert_duplicates_flagged(stack, counts)
