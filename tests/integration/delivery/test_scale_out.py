"""Scale-out: two API processes and three workers, each with its own environment as if on its own host, share
one Redis and one Ryng account. The guarantees hold across them: one campaign per lead, the rotation spread by
at most one, and Ryng's rate limit never exceeded (the sandbox enforces it and counts any 429).
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import httpx
import pytest

from tests.harness import Stack, cli, free_port, wait_http, wait_until

pytestmark = pytest.mark.fault

LIMIT = 15  # per minute: 2 x LIMIT leads need two windows, so the limiter really has to hold some back


def _host_env(stack: Stack, host: str, **own: str) -> dict[str, str]:
    """A process's environment on its own host: only REDIS_URL, the key prefix and the Ryng account are shared."""
    return stack.env | {"HOSTNAME": host, **own}


def test_two_apis_and_three_workers_keep_every_guarantee(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(RYNG_RATE_LIMIT_PER_MIN=str(LIMIT), ROUTER_AGENTS="alice,bob")
    stack.start_sandbox("--no-calls", "--rate-limit", str(LIMIT))
    api_urls = []
    for host in ("api-a", "api-b"):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        stack.spawn(host, cli("api", "--port", str(port)),
                    env=_host_env(stack, host, ROUTER_PORT=str(port), ROUTER_PUBLIC_URL=url))
        wait_http(f"{url}/healthz")
        api_urls.append(url)
    workers = []
    for host, concurrency in (("worker-a", 1), ("worker-b", 2), ("worker-c", 2)):
        proc = stack.spawn(host, cli("worker", "--concurrency", str(concurrency), "--hostname", f"{host}@%h"),
                           env=_host_env(stack, host))
        workers.append(proc)
    for proc in workers:
        wait_until(lambda proc=proc: "ready" in proc.log() or not proc.alive(), timeout=30, what="worker ready")
        assert proc.alive(), proc.log()

    ids = [f"S{i:03d}" for i in range(2 * LIMIT)]
    targets = itertools.cycle(api_urls)  # the load balancer: each request to the next API

    def send(pair: tuple[str, str]) -> int:
        lead_id, api = pair
        with httpx.Client(timeout=10) as client:
            return client.post(f"{api}/v1/leads", json={"id": lead_id, "number": f"9{lead_id[1:]:0>9}"}).status_code

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(send, zip(ids, targets, strict=False)))
    assert answers == [202] * len(ids)

    wait_until(lambda: len(stack.campaigns()) >= len(ids), timeout=150, interval=1.0,
               what=f"{len(ids)} campaigns (the second half after Ryng's minute)")
    campaigns = stack.campaigns()
    assert Counter(str(c["name"]) for c in campaigns) == Counter(ids)  # one campaign per lead, none twice
    per_agent = Counter(c["agents"][0] for c in campaigns)
    assert set(per_agent) == {"alice", "bob"} and max(per_agent.values()) - min(per_agent.values()) <= 1
    assert stack.sandbox_stats()["rate_limited"] == 0  # Ryng never had to refuse a request
    times = sorted(datetime.fromisoformat(str(c["received_at"]).replace("Z", "+00:00")) for c in campaigns)
    busiest = max(sum(1 for t in times if 0 <= (t - start).total_seconds() < 60) for start in times)
    assert busiest <= LIMIT, f"{busiest} requests within one minute (limit {LIMIT})"
    delivered_by = Counter(
        proc.name for proc in workers for line in proc.log().splitlines() if '"ryng_outcome": "accepted"' in line
    )
    assert len(delivered_by) >= 2, delivered_by  # the work was shared, not done by one host
