"""Batching: a burst of leads under Ryng's real limit (60 requests per minute), with `RYNG_MAX_BATCH=50`.

A worker (`lead-router worker --concurrency 2`) is up and idle; the burst (3,000 leads, as a CSV import or a
morning backlog would bring them) is recorded and queued at once, and the clock starts. The sandbox enforces 60
requests per rolling 60 s and counts every request over it (429); the router's limiter keeps its own 61-s window.
Printed: the time until the last lead reached the sandbox, requests made and over the limit, the per-agent spread,
and leads per minute delivered within the limit — beside what one lead per request would take at the same limit.

Run: `make bench`, or `.venv/bin/python -m pytest tests/bench/bench_batching.py -m bench -s -o
python_files='bench_*.py'`. Written to the `batching` section of BENCHMARKS.md. The window is Ryng's own
minute, not scaled. This is a benchmark, not a test: it asserts no timing.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from config.settings import Settings
from tests.bench.bench_delivery import _epoch, _publish, cleanup
from tests.harness import Stack, wait_until
from workers.services import Services

BURST = int(os.environ.get("BENCH_BATCH_LEADS", "3000"))
LIMIT = 60  # requests per minute: Ryng's
MAX_BATCH = 50
AGENTS = {"alice": 10, "bob": 20, "carol": 30, "dave": 40}


@dataclass(frozen=True)
class Figures:
    leads: int
    seconds_to_last: float
    seconds_to_median: float
    requests: int
    over_limit: int
    max_in_window: int
    spread: int
    per_agent: dict[str, int]
    largest_batch: int
    sizes: list[int]
    load_average: float

    @property
    def leads_per_minute(self) -> float:
        return self.leads / (self.seconds_to_last / 60)


def bench(*, redis_url: str, tmp: Path) -> Figures:
    load = os.getloadavg()[0]
    prefix = f"bb{uuid.uuid4().hex[:6]}"
    queue = f"{prefix}-leads"
    stack = Stack(redis_url=redis_url, tmp=tmp, settings={
        "ROUTER_AGENTS": ",".join(AGENTS), "ROUTER_KEY_PREFIX": prefix, "CELERY_QUEUE": queue,
        "RYNG_RATE_LIMIT_PER_MIN": str(LIMIT), "RYNG_MAX_BATCH": str(MAX_BATCH), "SANDBOX_TOKEN": "sandbox-token",
    })
    try:
        stack.start_sandbox("--no-calls", "--rate-limit", str(LIMIT),
                            "--agents", ",".join(f"{name}:{agent_id}" for name, agent_id in AGENTS.items()))
        settings = Settings(_env_file=None, redis_url=redis_url, router_key_prefix=prefix,  # type: ignore[call-arg]
                            router_agents=",".join(AGENTS))
        services = Services.from_settings(settings)
        services.assigner.sync()
        stack.start_worker(concurrency=2)
        ids = [f"K{i:05d}" for i in range(BURST)]
        started = time.time()
        for lead_id in ids:
            services.store.accept(lead_id=lead_id, payload={"id": lead_id, "number": f"9{lead_id[1:]:0>9}"},
                                  source="api")
        _publish(stack.redis_url, queue, "lead_router.deliver", ids)

        def arrivals() -> list[float] | None:
            campaigns = stack.campaigns()
            stamps = [_epoch(c["received_at"]) for c in campaigns for _ in c["rows"]]
            return stamps if len(stamps) >= BURST else None

        stamps = sorted(wait_until(arrivals, timeout=900, interval=1.0, what="every lead at the sandbox"))
        campaigns = stack.campaigns()
        stats = stack.sandbox_stats()
        services.close()
    finally:
        stack.stop()
        cleanup(redis_url, prefix)
    per_agent = dict(sorted(stats["assigned_by_agent"].items()))
    return Figures(
        leads=BURST, seconds_to_last=stamps[-1] - started, seconds_to_median=stamps[len(stamps) // 2] - started,
        requests=stats["total_requests"], over_limit=stats["rate_limited"],
        max_in_window=stats["max_requests_in_window"], spread=max(per_agent.values()) - min(per_agent.values()),
        per_agent=per_agent, largest_batch=max(len(c["rows"]) for c in campaigns),
        sizes=[len(c["rows"]) for c in campaigns], load_average=load,
    )


def markdown(figures: Figures) -> str:
    alone_minutes = figures.leads / LIMIT
    return "\n".join([
        f"A burst of {figures.leads:,} leads recorded and queued at once for an idle `lead-router worker "
        f"--concurrency 2`, `RYNG_MAX_BATCH={MAX_BATCH}`; the sandbox enforces Ryng's {LIMIT} requests per rolling "
        f"60 s (its real window, not scaled) and counts every request over it. {len(AGENTS)} agents in one "
        f"round-robin pool. Load average at the start: {figures.load_average:.1f} on {os.cpu_count()} cores.",
        "",
        "| | batching |",
        "| --- | ---: |",
        f"| time until the last lead reached Ryng | **{figures.seconds_to_last:.1f} s** |",
        f"| time until half the leads had | {figures.seconds_to_median:.1f} s |",
        f"| requests to Ryng (largest batch) | {figures.requests} ({figures.largest_batch} leads) |",
        f"| leads per request, in arrival order | {' '.join(map(str, figures.sizes))} |",
        f"| requests over the limit (429) | **{figures.over_limit}** (most in any 60 s: {figures.max_in_window}) |",
        f"| per-agent spread | **{figures.spread}** ({', '.join(f'{a} {n}' for a, n in figures.per_agent.items())}) |",
        f"| leads delivered per minute, within the limit | **{figures.leads_per_minute:,.0f}** |",
        "",
        f"One lead per request at the same limit would take {alone_minutes:.0f} minutes for the last lead "
        f"({LIMIT} leads/minute).",
    ])


@pytest.mark.bench
def test_bench_batching(redis_server_url: str, tmp_path: Path) -> None:
    from tests.bench.report import write_section

    figures = bench(redis_url=redis_server_url, tmp=tmp_path)
    text = markdown(figures)
    print("\n" + text)
    write_section("batching", "Batching: a burst under Ryng's limit", text)
    assert figures.requests > 0


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp_dir:
        url = sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/15"
        print(markdown(bench(redis_url=url, tmp=Path(tmp_dir))))
