"""Picks per second for each strategy beside a raw, minimal Lua round-robin loop on the same Redis.

Run: `.venv/bin/python tests/bench/bench_assigner.py [--picks N] [--url redis://127.0.0.1:6379/15]`
or `make bench`. Uses a unique key prefix, cleaned after.
"""

from __future__ import annotations

import argparse
import time
import uuid

import pytest
import redis

from config.routing import RoutingConfig
from tests.bench.report import write_section
from workers.routing.assigner import STRATEGIES, Assigner, LeadFacts
from workers.store.connections import connect
from workers.store.keys import Keys

AGENTS = [f"agent{n}" for n in range(7)]
RAW = "local n = redis.call('INCR', KEYS[1]) return ARGV[(n % #ARGV) + 1]"


def raw_rate(client: redis.Redis, prefix: str, picks: int) -> float:
    script = client.register_script(RAW)
    key = f"{Keys(prefix).tag}:raw"
    for _ in range(200):
        script(keys=[key], args=AGENTS)                   # warm up the connection and the script cache
    start = time.perf_counter()
    for _ in range(picks):
        script(keys=[key], args=AGENTS)
    return picks / (time.perf_counter() - start)


def strategy_rate(client: redis.Redis, prefix: str, strategy: str, picks: int) -> float:
    routing = RoutingConfig.model_validate({
        "agents": [{"name": name, "weight": 1 + n % 3} for n, name in enumerate(AGENTS)],
        "pools": [{"name": "default", "members": AGENTS, "strategy": strategy}],
    })
    assigner = Assigner(client, keys=Keys(f"{prefix}-{strategy}"), routing=routing)
    assigner.sync()
    for n in range(200):
        assigner.pick(LeadFacts(lead_id=f"warm{n}", number="", fields={}))
    start = time.perf_counter()
    for n in range(picks):
        assigner.pick(LeadFacts(lead_id=f"b{n}", number="", fields={}))
    return picks / (time.perf_counter() - start)


def bench(*, url: str, picks: int) -> list[tuple[str, float]]:
    client = connect(url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    try:
        rows = [("raw lua round robin", raw_rate(client, prefix, picks))]
        rows += [(strategy, strategy_rate(client, prefix, strategy, picks)) for strategy in STRATEGIES]
    finally:
        for keys in [Keys(prefix), *(Keys(f"{prefix}-{strategy}") for strategy in STRATEGIES)]:
            for key in client.scan_iter(keys.match()):
                client.delete(key)
        client.close()
    raw = rows[0][1]
    print(f"\n{'strategy':<22}{'picks/s':>10}{'vs raw':>9}   ({picks} picks, 7 agents, one client)")
    for name, rate in rows:
        print(f"{name:<22}{rate:>10.0f}{rate / raw:>8.2f}x")
    return rows


@pytest.mark.bench
def test_bench_assigner(redis_server_url: str) -> None:
    rows = bench(url=redis_server_url, picks=2000)
    raw = rows[0][1]
    table = "\n".join(f"| {name} | {rate:.0f} | {rate / raw:.2f}x |" for name, rate in rows)
    write_section("assigner", "Assigner: picks per second", (
        "Each strategy's pick (one Lua call, 7 agents, one client) beside a raw, minimal Lua round-robin loop on "
        f"the same Redis, 2000 picks each.\n\n| strategy | picks/s | vs raw |\n| --- | ---: | ---: |\n{table}\n"
    ))
    assert all(rate > 0 for _, rate in rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--picks", type=int, default=5000)
    parser.add_argument("--url", default="redis://127.0.0.1:6379/15")
    arguments = parser.parse_args()
    bench(url=arguments.url, picks=arguments.picks)
