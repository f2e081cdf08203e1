"""Adaptive batching end to end: real API and worker processes, the sandbox enforcing Ryng's limit (on a short
window, so the test is quick). A burst reaches the sandbox in far fewer requests than leads, never over the limit,
every lead exactly once with the rotation kept, and the sandbox's per-row callbacks complete every lead. A batch
the sandbox refuses (4xx) is split: each lead goes alone, and only the bad one is dead-lettered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.harness import Stack, wait_until

LIMIT = 10  # requests per window
WINDOW = 5.0  # the sandbox's window; the router's limiter keeps a half-second margin on it
BURST = 150


def batching_stack(make_stack: Callable[..., Stack], *, limit: int = LIMIT, **settings: str) -> Stack:
    return make_stack(
        RYNG_RATE_LIMIT_PER_MIN=str(limit), RYNG_RATE_WINDOW_SECONDS=str(WINDOW + 0.5), RYNG_MAX_BATCH="25",
        RYNG_BATCH_DELAY_SECONDS="0.5", **settings,
    )


def lead_ids_by_campaign(stack: Stack) -> list[list[str]]:
    return [[row["fields"]["LeadId"] for row in campaign["rows"]] for campaign in stack.campaigns()]


def test_a_burst_rides_few_requests_under_the_limit_and_every_lead_completes(
    make_stack: Callable[..., Stack],
) -> None:
    stack = batching_stack(make_stack, ROUTER_AGENTS="alice,bob")
    stack.start_sandbox("--rate-limit", str(LIMIT), "--rate-window", str(WINDOW), "--call-delay", "0.3",
                        "--callback-retry", "0.5")
    stack.start_api()
    stack.start_worker(concurrency=2)
    ids = [f"B{i:03d}" for i in range(BURST)]

    def send(index: int) -> int:
        lead = {"id": ids[index], "number": f"98{index:08d}", "name": f"Lead {index}"}
        return stack.post_lead(lead).status_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(send, range(BURST))) == [202] * BURST
    wait_until(lambda: sum(map(len, lead_ids_by_campaign(stack))) >= BURST, timeout=90, interval=0.5,
               what="every lead at the sandbox")

    batches = lead_ids_by_campaign(stack)
    carried = Counter(lead_id for batch in batches for lead_id in batch)
    assert sorted(carried) == ids and set(carried.values()) == {1}  # every lead exactly once
    stats = stack.sandbox_stats()
    assert stats["rate_limited"] == 0 and stats["max_requests_in_window"] <= LIMIT
    assert stats["total_requests"] <= BURST // 5, stats  # far fewer requests than leads
    assert any(len(batch) > 1 for batch in batches)
    spread = stats["assigned_by_agent"]
    assert set(spread) == {"alice", "bob"} and abs(spread["alice"] - spread["bob"]) <= 1, spread

    # Callbacks come per row and still find their lead: each completes, called by the agent its pick chose.
    def completed(lead_id: str) -> dict[str, Any] | None:
        record = stack.lead(lead_id)
        return record if record["status"] == "completed" else None

    for batch in batches:
        for lead_id in batch:
            record = wait_until(lambda lead_id=lead_id: completed(lead_id), timeout=60, what=f"{lead_id} completed")
            terminal = [e for e in record["history"] if e["event"] == "callback_terminal"]
            assert len(terminal) == 1 and terminal[0]["agent"] == record["agent"], record
            if len(batch) > 1:
                assert record["batch_size"] == len(batch) and record["batch"].startswith("batch-"), record
                attempt = [e for e in record["history"] if e["event"] == "attempt"][-1]
                assert attempt["batched_with"] == len(batch) - 1

    # /metrics: one Ryng request per campaign (a batch counts once), one time to posted per lead.
    metrics = {family.name: family for family in text_string_to_metric_families(
        httpx.get(f"{stack.api_url}/metrics", timeout=10).text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in metrics.values() for s in family.samples}
    requests = samples[("lead_router_ryng_request_duration_seconds_count", (("outcome", "accepted"),))]
    assert requests == len(batches) == stats["total_requests"]
    assert samples[("lead_router_webhook_to_posted_seconds_count", ())] == BURST



def test_a_refused_batch_is_split_and_only_the_bad_lead_is_dead(make_stack: Callable[..., Stack]) -> None:
    # The router rotates over three agents, the sandbox knows two: a row for carol makes the whole batch a 400.
    # Six leads for three free slots: a backlog, so they wait for a batch.
    stack = batching_stack(make_stack, limit=3, ROUTER_AGENTS="alice,bob,carol", RYNG_BODY_FORMAT="form")
    stack.start_sandbox("--no-calls", "--rate-limit", "3", "--rate-window", str(WINDOW))
    stack.start_api()
    ids = [f"S{i}" for i in range(6)]
    for index, lead_id in enumerate(ids):  # a backlog: recorded and queued before any worker runs
        assert stack.post_lead({"id": lead_id, "number": f"97{index:08d}"}).status_code == 202
    stack.start_worker(concurrency=1)  # one run at a time: the first to get a slot carries all the others

    records = {lead_id: stack.wait_status(lead_id, "posted", "dead", timeout=60) for lead_id in ids}
    by_agent = {lead_id: record["agent"] for lead_id, record in records.items()}
    assert sorted(by_agent.values()) == ["alice", "alice", "bob", "bob", "carol", "carol"]
    for lead_id, record in records.items():
        assert record["status"] == ("dead" if by_agent[lead_id] == "carol" else "posted"), record
        assert any(e["event"] == "batch_split" for e in record["history"]), record
    assert stack.sandbox_stats()["by_status"].get("400", 0) >= 3  # the batch, then each carol lead alone
    posted = [lead_id for batch in lead_ids_by_campaign(stack) for lead_id in batch]
    assert sorted(posted) == sorted(i for i in ids if by_agent[i] != "carol")  # alone, once each
    assert all(len(batch) == 1 for batch in lead_ids_by_campaign(stack))


def test_a_worker_killed_holding_a_batch_loses_none_of_it(make_stack: Callable[..., Stack]) -> None:
    """The first batch is recorded by the sandbox but answered late; its worker is SIGKILLed meanwhile. Every lead
    of the batch comes back by its lease, is sent again, and is flagged a possible duplicate; nothing is lost."""
    stack = batching_stack(make_stack, limit=3, ROUTER_LEASE_SECONDS="5", RYNG_TIMEOUT_SECONDS="5")
    stack.start_sandbox("--no-calls", "--rate-limit", "3", "--rate-window", str(WINDOW))
    stack.start_api()
    stack.faults(timeout_next=1, timeout_seconds=30)
    ids = [f"K{i}" for i in range(8)]
    for index, lead_id in enumerate(ids):  # a backlog: eight leads for three free slots
        assert stack.post_lead({"id": lead_id, "number": f"96{index:08d}"}).status_code == 202
    victim = stack.start_worker(concurrency=1)  # its first request is the batch carrying the backlog
    first = wait_until(lambda: next(iter(lead_ids_by_campaign(stack)), None), timeout=30, what="the first batch")
    assert len(first) > 1
    victim.kill()
    stack.start_worker(concurrency=2)

    records = {lead_id: stack.wait_status(lead_id, "posted", timeout=90) for lead_id in ids}
    carried = Counter(lead_id for batch in lead_ids_by_campaign(stack) for lead_id in batch)
    assert set(carried) == set(ids)
    for lead_id in first:  # reached Ryng, answer never seen: sent again, flagged, its crash counted
        record = records[lead_id]
        assert carried[lead_id] == 2 and record["possible_duplicate"] is True, record
        assert any(e["event"] == "crash" for e in record["history"]), record
    for lead_id in set(ids) - set(first):  # another batch the kill may have caught: twice only if flagged
        assert carried[lead_id] == 1 or records[lead_id]["possible_duplicate"] is True, records[lead_id]
    assert stack.sandbox_stats()["rate_limited"] == 0
