"""Intake: `lead-router api` beside its peer, a bare FastAPI endpoint that validates the same lead with pydantic
and does one Redis `LPUSH` — one process each, the router's uvicorn settings for both, the same Redis, the
same load (32 connections posting leads with unique ids), in turns in the same run.

Run: `make bench`, or `.venv/bin/python -m pytest tests/bench/bench_intake.py -m bench -s -o
python_files='bench_*.py'`. The load comes from `wrk -t2 -c32` when it is installed (`make bench` installs it
on Debian), else from a Python asyncio generator with the same 32 connections (the section says which).
Printed, and written to the `intake` section of BENCHMARKS.md: requests/s, p50 and p99 of each, the ratio,
the server's CPU time per request (a figure that other load on the machine disturbs less), and the API
process's memory (RSS) after its run. This is a benchmark, not a test: it asserts no timing.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.bench.report import write_section
from tests.harness import Proc, Stack, free_port, wait_http

CONNECTIONS = 32
THREADS = 2
WARMUP_SECONDS = 3
SECONDS = 10
ROUNDS = 3
SCRIPT = Path(__file__).with_name("intake_post.lua")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: int  # non-2xx answers and socket errors

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class Run:
    name: str
    load: Load
    cpu_us_per_request: float
    rss_mib: float


def _ms(text: str) -> float:
    match = re.fullmatch(r"([0-9.]+)(us|ms|s)", text)
    assert match, text
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, seconds: int) -> Load:
    wrk_bin = shutil.which("wrk")
    assert wrk_bin is not None
    out = subprocess.run(
        [wrk_bin, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", str(SCRIPT), url],
        capture_output=True, text=True, check=True,
    ).stdout
    total = re.search(r"(\d+) requests in ([0-9.]+)(s|m)", out)
    assert total, out
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Load(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * (60 if total.group(3) == "m" else 1),
        p50_ms=_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        p99_ms=_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),  # type: ignore[union-attr]
        failures=errors + (int(non_2xx.group(1)) if non_2xx else 0),
    )


async def _python_load(host: str, port: int, seconds: float) -> Load:
    """The same load as wrk's: CONNECTIONS keep-alive connections, each posting the next lead when answered."""
    latencies: list[float] = []
    failures = 0
    prefix = f"p{uuid.uuid4().hex[:8]}"
    stop_at = time.perf_counter() + seconds

    async def connection(number: int) -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection(host, port)
        sent = 0
        while time.perf_counter() < stop_at:
            sent += 1
            body = (f'{{"id":"{prefix}-{number}-{sent}","number":"+91 98123 45678","name":"James",'
                    '"fields":{"Product":"Life Insurance","Source":"web"}}').encode()
            started = time.perf_counter()
            writer.write(b"POST /v1/leads HTTP/1.1\r\nHost: bench\r\ncontent-type: application/json\r\n"
                         b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            failures += not head.startswith((b"HTTP/1.1 200", b"HTTP/1.1 202"))
        writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(connection(n) for n in range(CONNECTIONS)))
    elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return Load(requests=len(latencies), seconds=elapsed, p50_ms=cuts[49], p99_ms=cuts[98], failures=failures)


def load(url: str, seconds: int) -> Load:
    if shutil.which("wrk"):
        return wrk(url, seconds)
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    return asyncio.run(_python_load(host, int(port), seconds))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(name: str, proc: Proc, url: str) -> Run:
    wait_http(url.replace("/v1/leads", "/healthz"))
    load(url, WARMUP_SECONDS)
    cpu_before = _cpu_seconds(proc.pid)
    result = load(url, SECONDS)
    cpu = _cpu_seconds(proc.pid) - cpu_before
    per_request = cpu * 1e6 / max(result.requests, 1)
    run = Run(name=name, load=result, cpu_us_per_request=per_request, rss_mib=_rss_mib(proc.pid))
    proc.stop()
    return run


def bench(*, redis_url: str, tmp: Path) -> list[tuple[Run, Run]]:
    rounds: list[tuple[Run, Run]] = []
    for number in range(ROUNDS):
        stack = Stack(redis_url=redis_url, tmp=tmp, settings={
            "ROUTER_KEY_PREFIX": f"bench{uuid.uuid4().hex[:6]}", "ROUTER_AGENTS": "alice,bob",
            "ROUTER_CALLBACK_SECRET": uuid.uuid4().hex, "LOG_LEVEL": "INFO",
        })
        try:
            port = free_port()
            peer_proc = stack.spawn(f"peer{number}", [sys.executable, "-m", "tests.bench.peer_app", str(port)])
            peer = measure("peer", peer_proc, f"http://127.0.0.1:{port}/v1/leads")
            router_proc = stack.start_api()
            router = measure("router", router_proc, f"{stack.api_url}/v1/leads")
        finally:
            stack.stop()
        rounds.append((peer, router))
        print(f"round {number + 1}: peer {peer.load.per_second:.0f}/s p99 {peer.load.p99_ms:.1f} ms, "
              f"router {router.load.per_second:.0f}/s p99 {router.load.p99_ms:.1f} ms", flush=True)
    return rounds


def report(rounds: list[tuple[Run, Run]], *, generator: str, load_before: tuple[float, float, float]) -> str:
    lines = [
        f"{CONNECTIONS} connections ({generator}), {SECONDS} s per run after {WARMUP_SECONDS} s of warm-up, each "
        "lead a new id. Peer: a bare FastAPI endpoint, pydantic validation of the same lead, one `LPUSH` "
        "(redis.asyncio). Router: `lead-router api` (signature check, validation, one Lua call that records the "
        "lead, its history and lease, marks it queued and puts the Celery task and its task-sent event on the "
        "broker, one JSON log line; served by a pure-ASGI endpoint, start-up objects frozen out of the garbage "
        "collector's way — `gc.freeze()`, which took its p99 from about 65 ms to 15 ms). Both with the router's "
        "uvicorn settings, one process, the same Redis, in "
        "turns. CPU is the server process's own CPU time per request. Load average when the benchmark started: "
        f"{', '.join(f'{value:.1f}' for value in load_before)} (on a machine shared with other work the absolute "
        "figures suffer; the ratios much less).",
        "",
        "| round | server | requests/s | p50 ms | p99 ms | failures | CPU µs/request | RSS MiB after |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for number, pair in enumerate(rounds, 1):
        for run in pair:
            lines.append(
                f"| {number} | {run.name} | {run.load.per_second:.0f} | {run.load.p50_ms:.1f} | "
                f"{run.load.p99_ms:.1f} | {run.load.failures} | {run.cpu_us_per_request:.0f} | {run.rss_mib:.0f} |"
            )
    ratios = [router.load.per_second / peer.load.per_second for peer, router in rounds]
    cpu_ratios = [peer.cpu_us_per_request / router.cpu_us_per_request for peer, router in rounds]
    best = max(rounds, key=lambda pair: pair[1].load.per_second)
    lines += [
        "",
        f"Router / peer, requests/s: {', '.join(f'{r:.2f}x' for r in ratios)} (median "
        f"{statistics.median(ratios):.2f}x). By CPU time per request: median {statistics.median(cpu_ratios):.2f}x.",
        f"Router p99: {', '.join(f'{pair[1].load.p99_ms:.1f} ms' for pair in rounds)} "
        f"(best round: {best[1].load.per_second:.0f}/s, p99 {best[1].load.p99_ms:.1f} ms).",
        f"API process memory after its run: {statistics.median(pair[1].rss_mib for pair in rounds):.0f} MiB "
        f"(peer {statistics.median(pair[0].rss_mib for pair in rounds):.0f} MiB).",
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.bench
def test_bench_intake(redis_url: str, tmp_path: Path) -> None:
    generator = f"wrk -t{THREADS} -c{CONNECTIONS}" if shutil.which("wrk") else "Python asyncio load generator"
    load_before = os.getloadavg()
    rounds = bench(redis_url=redis_url, tmp=tmp_path)
    text = report(rounds, generator=generator, load_before=load_before)
    print("\n" + text)
    write_section("intake", "Intake: `POST /v1/leads` on one API process", text)
    assert all(run.load.requests > 0 for pair in rounds for run in pair)
