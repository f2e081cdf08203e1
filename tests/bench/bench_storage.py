"""Storage figures: Redis memory per lead (full record vs tombstone), and what `ROUTER_REDIS_MIN_REPLICAS=1`
costs an accept (a primary and a replica on local ports, beside the same accept without waiting).

Run with `make bench`. Each figure is measured on a private server started for the purpose.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from tests.bench.report import write_section
from tests.harness import embedded_redis, free_port, online_replicas, redis_answers, wait_until
from workers.store.connections import connect
from workers.store.keys import Keys
from workers.store.lead_record import Status
from workers.store.records import LeadStore
from workers.store.retention import Retention, RetentionPolicy

LEADS = 2000


def _payload(lead_id: str) -> dict[str, object]:
    return {"id": lead_id, "number": "+919812345678", "name": "Asha Verma", "pool": None, "agent": None,
            "fields": {"Product": "Life Insurance", "Campaign": "Diwali 2026", "City": "Pune"}}


def memory_per_lead() -> tuple[float, float]:
    """Bytes of Redis memory per lead as a delivered full record (with a typical history), then as a tombstone."""
    with embedded_redis() as server:
        client = connect(f"redis://127.0.0.1:{server.port}/0")
        keys = Keys("mem")
        store = LeadStore(client, keys=keys)
        before = int(client.info("memory")["used_memory"])
        for n in range(LEADS):
            lead_id = f"CRM-{n:07d}"
            store.accept(lead_id=lead_id, payload=_payload(lead_id), source="api")
            store.transition(lead_id, Status.POSTED, allowed=frozenset(Status), agent="alice", agent_id="11",
                             pool="default", strategy="round_robin", reason="next in rotation after bob",
                             posted_at="2026-11-30T10:00:00.000Z", last_outcome="accepted")
            for kind in ("pick", "attempt", "callback_connect", "callback_terminal"):
                store.event(lead_id, kind, agent="alice", outcome="accepted", status_code=200)
            client.zrem(keys.pending, lead_id)
        full = (int(client.info("memory")["used_memory"]) - before) / LEADS
        Retention(client, keys=keys, policy=RetentionPolicy(keep_full_seconds=0.001, batch=LEADS)).sweep(force=True)
        tombstone = (int(client.info("memory")["used_memory"]) - before) / LEADS
        client.close()
    return full, tombstone


def _replica_pair(tmp: Path) -> tuple[subprocess.Popen[bytes], subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    assert binary is not None
    primary_port, replica_port = free_port(), free_port()
    common = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    primary = subprocess.Popen([binary, "--port", str(primary_port), "--dir", str(tmp), *common],
                               stdout=subprocess.DEVNULL)
    wait_until(lambda: redis_answers(f"redis://127.0.0.1:{primary_port}"), timeout=10)
    replica = subprocess.Popen([binary, "--port", str(replica_port), "--dir", str(tmp), *common,
                                "--replicaof", "127.0.0.1", str(primary_port)], stdout=subprocess.DEVNULL)
    wait_until(lambda: online_replicas(primary_port) == 1, timeout=15)
    return primary, replica, primary_port


def accept_latency(tmp: Path, accepts: int = 1000) -> dict[int, tuple[float, float]]:
    """p50 and p99 (ms) of one accept with 0 and with 1 replica acknowledgement, same servers, interleaved."""
    primary, replica, port = _replica_pair(tmp)
    try:
        client = connect(f"redis://127.0.0.1:{port}/0")
        stores = {n: LeadStore(client, keys=Keys(f"w{n}"), min_replicas=n) for n in (0, 1)}
        samples: dict[int, list[float]] = {0: [], 1: []}
        for i in range(accepts):
            for replicas, store in stores.items():
                started = time.perf_counter()
                store.accept(lead_id=f"L{i}", payload=_payload(f"L{i}"), source="api")
                samples[replicas].append((time.perf_counter() - started) * 1000)
        client.close()
    finally:
        for proc in (replica, primary):
            proc.kill()
            proc.wait(10)
    return {n: (statistics.median(s), statistics.quantiles(s, n=100)[98]) for n, s in samples.items()}


@pytest.mark.bench
def test_bench_storage(tmp_path: Path) -> None:
    full, tombstone = memory_per_lead()
    lines = [
        f"Memory per lead ({LEADS} delivered leads with a typical history, private Valkey): "
        f"full record **{full:,.0f} B**, tombstone **{tombstone:,.0f} B** ({tombstone / full:.2f}x of full).",
        "",
    ]
    print(f"\nmemory per lead: full {full:.0f} B, tombstone {tombstone:.0f} B")
    if shutil.which("redis-server"):
        latency = accept_latency(tmp_path)
        (p50_0, p99_0), (p50_1, p99_1) = latency[0], latency[1]
        lines += [
            "| accept (one lead) | p50 ms | p99 ms |",
            "| --- | ---: | ---: |",
            f"| `ROUTER_REDIS_MIN_REPLICAS=0` | {p50_0:.2f} | {p99_0:.2f} |",
            f"| `ROUTER_REDIS_MIN_REPLICAS=1` (WAIT for a replica) | {p50_1:.2f} | {p99_1:.2f} |",
            f"| cost of waiting | {p50_1 / p50_0:.2f}x | {p99_1 / p99_0:.2f}x |",
        ]
        print(f"accept p50/p99 ms: no wait {p50_0:.2f}/{p99_0:.2f}, WAIT 1 {p50_1:.2f}/{p99_1:.2f}")
    else:
        lines.append("(no redis-server binary: the replica-acknowledgement cost was not measured)")
    write_section("storage", "Storage: memory per lead, replica acknowledgement", "\n".join(lines))
    assert full > tombstone > 0
