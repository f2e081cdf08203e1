"""Capacity: what one worker process delivers per minute, and what one lead costs Redis (commands and bytes),
from the API's accept to Ryng's answer — the figures behind the README's capacity table.

A private Valkey (store and broker), the sandbox without a rate limit, one API process; a backlog of leads is
taken, then one worker process (concurrency 1, then 2) drains it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import redis

from tests.bench.report import write_section
from tests.conftest import FAST_SETTINGS
from tests.harness import Stack, embedded_redis, wait_until

BACKLOG = 300


def _commands(client: redis.Redis) -> int:
    return sum(int(stats["calls"]) for stats in client.info("commandstats").values())


def _net_bytes(client: redis.Redis) -> int:
    stats = client.info("stats")
    return int(stats["total_net_input_bytes"]) + int(stats["total_net_output_bytes"])


def _drain(tmp: Path, concurrency: int) -> dict[str, float]:
    with embedded_redis() as server:
        url = f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(url)
        stack = Stack(redis_url=url, tmp=tmp / f"c{concurrency}", settings=FAST_SETTINGS | {
            "ROUTER_KEY_PREFIX": "cap", "RYNG_RATE_LIMIT_PER_MIN": "100000"})
        stack.tmp.mkdir(parents=True)
        try:
            stack.start_sandbox("--no-calls", "--rate-limit", "100000")
            stack.start_api()
            ids = [f"C{n:05d}" for n in range(BACKLOG)]
            client.config_resetstat()
            commands, net = _commands(client), _net_bytes(client)

            def post(lead_id: str) -> int:
                with httpx.Client(timeout=10) as http:
                    return http.post(f"{stack.api_url}/v1/leads", json={"id": lead_id, "number": "+919812345678",
                                                                         "fields": {"Product": "Life"}}).status_code

            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(post, ids)) == {202}
            started = time.monotonic()
            stack.start_worker(concurrency=concurrency)
            delivered: Callable[[], bool] = lambda: stack.sandbox_stats()["accepted"] >= BACKLOG  # noqa: E731
            wait_until(delivered, timeout=600, interval=0.2, what="the backlog to drain")
            elapsed = time.monotonic() - started
            return {
                "per_minute": BACKLOG / elapsed * 60,
                "commands": (_commands(client) - commands) / BACKLOG,
                "bytes": (_net_bytes(client) - net) / BACKLOG,
            }
        finally:
            stack.stop()
            client.close()


@pytest.mark.bench
@pytest.mark.timeout(1800)
def test_bench_capacity(tmp_path: Path) -> None:
    one, two = _drain(tmp_path, 1), _drain(tmp_path, 2)
    body = "\n".join([
        f"A backlog of {BACKLOG} leads taken by the API, then drained by one worker process (the sandbox answering "
        "at once, no rate limit). Redis figures count everything from the accept to the recorded answer: the API, "
        "the broker's messages and the worker (a private Valkey serves store and broker).",
        "",
        "| worker process | leads/minute | Redis commands per lead | Redis bytes per lead (in + out) |",
        "| --- | ---: | ---: | ---: |",
        f"| `--concurrency 1` | {one['per_minute']:,.0f} | {one['commands']:.1f} | {one['bytes']:,.0f} |",
        f"| `--concurrency 2` | {two['per_minute']:,.0f} | {two['commands']:.1f} | {two['bytes']:,.0f} |",
        "",
        f"Ryng allows 60 requests a minute per account: one worker process at concurrency 1 has "
        f"{one['per_minute'] / 60:,.0f}x that headroom.",
    ])
    print("\n" + body)
    write_section("capacity", "Capacity: one worker process, and what a lead costs Redis", body)
    assert one["per_minute"] > 0 and two["per_minute"] > 0
