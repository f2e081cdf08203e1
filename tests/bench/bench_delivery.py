"""Delivery: `lead-router worker --concurrency 2` beside its peer, a Celery worker with the router's own Celery
configuration whose task does one Redis write (`tests/bench/peer_worker.py`) — same broker, same concurrency,
in turns in the same run; the sandbox stands in for Ryng with its limit (and the router's limiter) opened wide.

- **Drain**: a backlog of leads (recorded and queued while no worker runs) is drained by a worker started
  afterwards; the rate runs from the first lead posted to the last (the peer: first write to last).
- **Latency**: leads posted to the API at a steady rate, each timed from the POST to the sandbox receiving its
  campaign (p50, p99).
- **Memory**: resident memory (RSS) of each worker, main process and pool children, after its drain.
- **CPU per lead**: user + system CPU time of each worker (main process and pool children, from /proc) over its
  drain, divided by the leads it handled meanwhile — on a shared machine, steadier than a rate.

Run: `make bench`, or `.venv/bin/python -m pytest tests/bench/bench_delivery.py -m bench -s -o
python_files='bench_*.py'`. Printed, and written to the `delivery` section of BENCHMARKS.md. This is a
benchmark, not a test: it asserts no timing.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import redis
from celery import Celery

from config.settings import Settings
from tests.harness import Proc, Stack, wait_until
from workers.services import Services
from workers.store.keys import Keys

BACKLOG = 2000
RATE_PER_SECOND = 50
LATENCY_SECONDS = 10
CONCURRENCY = 2
WIDE_OPEN = "100000"


@dataclass(frozen=True)
class Figures:
    drain_per_second: float
    peer_drain_per_second: float
    latency_p50_ms: float
    latency_p99_ms: float
    rss_mib: float
    peer_rss_mib: float
    load_average: float
    cpu_us_per_lead: float
    peer_cpu_us_per_lead: float

    @property
    def drain_ratio(self) -> float:
        return self.drain_per_second / self.peer_drain_per_second

    @property
    def rss_ratio(self) -> float:
        return self.rss_mib / self.peer_rss_mib

    @property
    def cpu_ratio(self) -> float:
        """The peer's CPU per lead over the router's: like the drain ratio, higher is better."""
        return self.peer_cpu_us_per_lead / self.cpu_us_per_lead


def _tree(pid: int) -> list[int]:
    """A process and its descendants (a worker and its pool)."""
    found, pids = [], [pid]
    while pids:
        current = pids.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        found.append(current)
        pids += [int(child) for child in children]
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of a process and its children (the worker's pool), in MiB."""
    total_kib = 0
    for current in _tree(pid):
        with contextlib.suppress(OSError):
            status = Path(f"/proc/{current}/status").read_text()
            total_kib += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return total_kib / 1024


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its children (the worker's pool) have used, in seconds."""
    total_ticks = 0
    for current in _tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            total_ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total_ticks / os.sysconf("SC_CLK_TCK")


def _epoch(iso_text: str) -> float:
    return datetime.fromisoformat(iso_text.replace("Z", "+00:00")).timestamp()


def _rate(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (max(stamps) - min(stamps))


def _publish(broker_url: str, queue: str, task: str, ids: list[str]) -> None:
    with Celery("bench", broker=broker_url, set_as_current=False) as sender:
        for lead_id in ids:
            sender.send_task(task, args=[lead_id], queue=queue)


@dataclass(frozen=True)
class Drain:
    per_second: float
    rss_mib: float
    cpu_us_per_lead: float


def router_drain(stack: Stack, services: Services, queue: str) -> Drain:
    """Rate, worker RSS and CPU per lead for a backlog drained by a worker started after it was queued."""
    ids = [f"D{i:05d}" for i in range(BACKLOG)]
    for lead_id in ids:
        services.store.accept(lead_id=lead_id, payload={"id": lead_id, "number": f"9{lead_id[1:]:0>9}"},
                              source="api")
    _publish(stack.redis_url, queue, "lead_router.deliver", ids)
    worker = stack.start_worker(concurrency=CONCURRENCY)
    client = services.redis

    def posted() -> list[str | None]:
        pipe = client.pipeline(transaction=False)
        for lead_id in ids:
            pipe.hget(services.keys.lead(lead_id), "posted_at")
        return pipe.execute()

    def posted_at() -> list[float] | None:
        stamps = posted()
        return [_epoch(s) for s in stamps if s] if all(stamps) else None

    cpu_before, done_before = cpu_seconds(worker.pid), sum(1 for s in posted() if s)
    stamps = wait_until(posted_at, timeout=600, interval=0.2, what="the backlog drained")
    cpu = cpu_seconds(worker.pid) - cpu_before
    return Drain(_rate(stamps), rss_mib(worker.pid), cpu * 1e6 / max(1, BACKLOG - done_before))


def peer_drain(stack: Stack, queue: str) -> Drain:
    ids = [f"P{i:05d}" for i in range(BACKLOG)]
    done_key = f"bench-peer-{uuid.uuid4().hex[:8]}"
    _publish(stack.redis_url, queue, "peer.write", ids)
    env = stack.env | {"CELERY_QUEUE": queue, "PEER_DONE_KEY": done_key}
    # The router worker's own Celery options (and its log level).
    args = [sys.executable, "-m", "celery", "-A", "tests.bench.peer_worker", "worker", f"--concurrency={CONCURRENCY}",
            "--pool=prefork", f"--queues={queue}", "--without-gossip", "--without-mingle", "--loglevel=INFO"]
    peer: Proc = stack.spawn("peer-worker", args, env=env)
    client = redis.Redis.from_url(stack.redis_url)
    try:
        wait_until(lambda: client.hlen(done_key) > 0 or not peer.alive(), timeout=60, interval=0.02,
                   what="the peer started")
        cpu_before, done_before = cpu_seconds(peer.pid), client.hlen(done_key)
        wait_until(lambda: client.hlen(done_key) >= BACKLOG, timeout=600, interval=0.2, what="the peer drained")
        cpu = cpu_seconds(peer.pid) - cpu_before
        stamps = [float(v) for v in client.hvals(done_key)]
        return Drain(_rate(stamps), rss_mib(peer.pid), cpu * 1e6 / max(1, BACKLOG - done_before))
    finally:
        client.delete(done_key)
        client.close()
        peer.stop()


def latency(stack: Stack) -> tuple[float, float]:
    """(p50, p99) ms from the POST of a lead to the sandbox receiving its campaign, at RATE_PER_SECOND."""
    sent: dict[str, float] = {}
    total = RATE_PER_SECOND * LATENCY_SECONDS
    with httpx.Client(timeout=10) as client:
        start = time.perf_counter()
        for n in range(total):
            lead_id = f"T{n:05d}"
            pause = start + n / RATE_PER_SECOND - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent[lead_id] = time.time()
            answer = client.post(f"{stack.api_url}/v1/leads", json={"id": lead_id, "number": f"8{n:09d}"})
            assert answer.status_code == 202, answer.text

    def received() -> dict[str, float] | None:
        got = {c["name"]: _epoch(c["received_at"]) for c in stack.campaigns() if c["name"] in sent}
        return got if len(got) == total else None

    got = wait_until(received, timeout=120, interval=0.5, what="every timed lead at the sandbox")
    delays = sorted((got[lead_id] - at) * 1000 for lead_id, at in sent.items())
    return statistics.median(delays), delays[int(len(delays) * 0.99) - 1]


def bench(*, redis_url: str, tmp: Path) -> Figures:
    load = os.getloadavg()[0]  # on a shared machine, what else was running says how far the figures carry
    prefix = f"bd{uuid.uuid4().hex[:6]}"
    router_queue, peer_queue = f"{prefix}-leads", f"{prefix}-peer"
    stack = Stack(redis_url=redis_url, tmp=tmp, settings={
        "ROUTER_AGENTS": "alice,bob", "ROUTER_KEY_PREFIX": prefix, "CELERY_QUEUE": router_queue,
        "RYNG_RATE_LIMIT_PER_MIN": WIDE_OPEN, "SANDBOX_TOKEN": "sandbox-token",
    })
    try:
        stack.start_sandbox("--no-calls", "--rate-limit", WIDE_OPEN)
        settings = Settings(_env_file=None, redis_url=redis_url, router_key_prefix=prefix,  # type: ignore[call-arg]
                            router_agents="alice,bob")
        services = Services.from_settings(settings)
        services.assigner.sync()
        drained = router_drain(stack, services, router_queue)
        peer_drained = peer_drain(stack, peer_queue)
        stack.start_api()
        p50, p99 = latency(stack)
        services.close()
    finally:
        stack.stop()
        cleanup(redis_url, prefix)
    return Figures(drained.per_second, peer_drained.per_second, p50, p99, drained.rss_mib, peer_drained.rss_mib, load,
                   drained.cpu_us_per_lead, peer_drained.cpu_us_per_lead)


def cleanup(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        for pattern in (Keys(prefix).match(), f"{prefix}*"):  # the router's keys, then the queues
            for key in client.scan_iter(pattern):
                client.delete(key)
    finally:
        client.close()


def markdown(figures: Figures) -> str:
    return "\n".join([
        f"`lead-router worker --concurrency {CONCURRENCY}` beside a Celery worker with the router's Celery "
        "configuration whose task does one Redis write (same broker, same concurrency); the sandbox as Ryng, "
        f"its limit and the router's limiter opened wide. Load average at the start: {figures.load_average:.1f} "
        f"on {os.cpu_count()} cores.",
        "",
        "| | router | peer | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| drain of a {BACKLOG:,}-lead backlog, leads/s | {figures.drain_per_second:.0f} | "
        f"{figures.peer_drain_per_second:.0f} | {figures.drain_ratio:.2f}x |",
        f"| worker CPU per lead (main + {CONCURRENCY} children, user + system), µs | {figures.cpu_us_per_lead:.0f} | "
        f"{figures.peer_cpu_us_per_lead:.0f} | {figures.cpu_ratio:.2f}x |",
        f"| worker RSS (main + {CONCURRENCY} children), MiB | {figures.rss_mib:.0f} | {figures.peer_rss_mib:.0f} | "
        f"{figures.rss_ratio:.2f}x |",
        "",
        "CPU ratio: the peer's CPU per lead over the router's (as for the drain, higher is better).",
        "",
        f"Webhook → Ryng at a steady {RATE_PER_SECOND} leads/s ({RATE_PER_SECOND * LATENCY_SECONDS} leads, from "
        f"the POST to the sandbox receiving the campaign): **p50 {figures.latency_p50_ms:.0f} ms, "
        f"p99 {figures.latency_p99_ms:.0f} ms**.",
    ])


def report(figures: Figures, write: Callable[[str], None] | None = None) -> str:
    text = markdown(figures)
    print("\n" + text)
    if write is not None:
        write(text)
    return text


@pytest.mark.bench
def test_bench_delivery(redis_server_url: str, tmp_path: Path) -> None:
    from tests.bench.report import write_section

    figures = bench(redis_url=redis_server_url, tmp=tmp_path)
    report(figures, lambda text: write_section("delivery", "Delivery: drain, latency, worker memory", text))
    assert figures.drain_per_second > 0 and figures.peer_drain_per_second > 0


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as tmp_dir:
        report(bench(redis_url=sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/15", tmp=Path(tmp_dir)))
