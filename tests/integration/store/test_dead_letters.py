"""Dead letters: a poison lead is buried after ROUTER_MAX_DELIVERIES crashes without a hot loop or harm to other
leads; replay and purge through the admin API and the CLI, on real processes and real Redis."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from itertools import pairwise
from typing import Any

import httpx
import pytest
import redis

from tests.harness import Stack, wait_until
from workers.store.connections import connect
from workers.store.dead_letters import DeadLetters
from workers.store.keys import Keys
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore

TOKEN = "dead-letter-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_DELIVERIES = 3


def lead(lead_id: str, number: str = "998314242") -> dict[str, object]:
    return {"id": lead_id, "number": number, "fields": {"Product": "Motor"}}


def _ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _steps(stack: Stack, lead_id: str) -> int:
    """How many delivery tasks the workers ran for this lead (one canonical log line per task)."""
    return sum(
        1 for line in "".join(p.log() for p in stack.procs if p.name.startswith("worker")).splitlines()
        if "lead_delivery_step" in line and f'"lead_id": "{lead_id}"' in line
    )


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    stack = make_stack(ROUTER_MAX_DELIVERIES=str(MAX_DELIVERIES), ROUTER_ADMIN_TOKEN=TOKEN)
    stack.start_sandbox("--no-calls")
    stack.start_api()
    return stack


def admin(stack: Stack, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return stack.client.request(method, f"{stack.api_url}/v1/admin{path}", headers=AUTH, **kwargs)


def test_poison_lead_is_buried_after_max_deliveries_then_replayed_and_purged(stack: Stack) -> None:
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    client = connect(stack.redis_url)
    good = [f"G{i}" for i in range(5)]
    for lead_id, number in [("POISON1", "998314001"), ("POISON2", "998314002")]:
        assert stack.post_lead(lead(lead_id, number)).status_code == 202
    for i, lead_id in enumerate(good):
        assert stack.post_lead(lead(lead_id, f"99831410{i}")).status_code == 202
    # Corrupt the stored payloads before any worker runs: every delivery of these leads raises.
    original = client.hget(keys.lead("POISON1"), "payload")
    for lead_id in ("POISON1", "POISON2"):
        client.hset(keys.lead(lead_id), "payload", "{corrupted")
    started = time.monotonic()
    stack.start_worker(concurrency=2)

    for lead_id in ("POISON1", "POISON2"):
        wait_until(lambda lid=lead_id: client.hget(keys.lead(lid), "status") == "dead",  # type: ignore[misc]
                   timeout=30, what=f"{lead_id} dead")
    for lead_id in good:
        stack.wait_status(lead_id, "posted")
    elapsed = time.monotonic() - started

    record = admin(stack, "GET", "/dead/POISON1").json()
    crashes = [e for e in record["history"] if e["event"] == "crash"]
    assert len(crashes) == MAX_DELIVERIES and record["crashes"] == MAX_DELIVERIES
    assert "crashed 3 times" in record["reason"] and "JSONDecodeError" in record["reason"]
    assert record["attempts"] == 0  # never reached Ryng
    gaps = [_ms(b["at"]) - _ms(a["at"]) for a, b in pairwise(crashes)]
    assert all(gap >= 0.09 for gap in gaps), gaps  # backed off (>= base/2), not hot-looped
    steps = _steps(stack, "POISON1")
    assert MAX_DELIVERIES <= steps <= MAX_DELIVERIES + 2, steps
    time.sleep(1.5)
    assert _steps(stack, "POISON1") == steps  # buried: nothing runs it any more
    assert client.zscore(keys.pending, "POISON1") is None and client.zscore(keys.parked, "POISON1") is None
    names = sorted(c["name"] for c in stack.campaigns())
    assert names == sorted(good), names  # the good leads went out once each, the poison ones never
    assert elapsed < 25

    listing = admin(stack, "GET", "/dead").json()
    assert listing["total"] == 2 and {item["id"] for item in listing["items"]} == {"POISON1", "POISON2"}
    for item in listing["items"]:  # when it died, as people read times: ISO-8601 with its offset, no epoch number
        assert "dead_ms" not in item and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+(Z|[+-]\d\d:\d\d)", item["dead_at"])
    assert stack.client.get(f"{stack.api_url}/v1/admin/dead").status_code == 401
    assert admin(stack, "GET", "/dead/G1").status_code == 404

    # The operator fixes the payload and replays: same rules, assigner and limiter; history kept.
    client.hset(keys.lead("POISON1"), "payload", str(original))
    replay = admin(stack, "POST", "/dead/replay", json={"ids": ["POISON1", "G1", "nope"]})
    assert replay.status_code == 200, replay.text
    assert replay.json()["done"] == ["POISON1"]
    assert replay.json()["skipped"] == {"G1": "not dead (status posted)", "nope": "unknown"}
    posted = stack.wait_status("POISON1", "posted")
    assert posted["attempts"] == 1 and posted["dead_reason"] is None and posted["agent"] in ("alice", "bob")
    events = [e["event"] for e in posted["history"]]
    assert events.count("crash") == MAX_DELIVERIES
    assert events.index("dead") < events.index("replayed") < events.index("attempt")
    assert "pick" in events[events.index("replayed"):]
    assert admin(stack, "POST", "/dead/replay", json={"ids": ["POISON1"]}).json()["done"] == []

    purge = admin(stack, "POST", "/dead/purge", json={"ids": ["POISON2", "G2"]})
    assert purge.json()["done"] == ["POISON2"] and "G2" in purge.json()["skipped"]
    assert not client.exists(keys.lead("POISON2"), keys.lead_events("POISON2"))
    assert stack.client.get(f"{stack.api_url}/v1/leads/POISON2").status_code == 404
    assert admin(stack, "GET", "/dead").json()["total"] == 0
    assert sorted(c["name"] for c in stack.campaigns()) == sorted([*good, "POISON1"])
    client.close()


def _cli(stack: Stack, group: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    code = f"import sys; from router.cli.dead import {group}; {group}(sys.argv[1:], prog_name='lead-router')"
    return subprocess.run([sys.executable, "-c", code, *args], env=stack.env, capture_output=True, text=True,
                          input=stdin, timeout=60, check=False)


def test_cli_lists_shows_replays_all_and_purges(stack: Stack) -> None:
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    client = connect(stack.redis_url)
    stack.start_worker(concurrency=1)
    stack.faults(fail_next=3, fail_status=400)  # Ryng rejects: buried at once, never retried
    for i, lead_id in enumerate(["R1", "R2", "R3"]):
        assert stack.post_lead(lead(lead_id, f"99831420{i}")).status_code == 202
        stack.wait_status(lead_id, "dead")

    listed = _cli(stack, "dead_app", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(lead_id in listed.stdout for lead_id in ("R1", "R2", "R3")) and "Ryng rejected" in listed.stdout
    shown = _cli(stack, "dead_app", "show", "R1")
    assert json.loads(shown.stdout)["record"]["status"] == "dead"
    assert _cli(stack, "dead_app", "show", "G9").returncode == 1

    refused = _cli(stack, "dead_app", "purge", "R3", stdin="n\n")
    assert refused.returncode != 0 and client.exists(keys.lead("R3"))
    purged = _cli(stack, "dead_app", "purge", "R3", "--yes")
    assert purged.returncode == 0 and not client.exists(keys.lead("R3"))

    replayed = _cli(stack, "dead_app", "replay", "--all")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed 2" in replayed.stdout
    for lead_id in ("R1", "R2"):
        record = stack.wait_status(lead_id, "posted")
        assert record["attempts"] == 1
        assert [e["event"] for e in record["history"]].count("replayed") == 1
    assert sorted(c["name"] for c in stack.campaigns()) == ["R1", "R2"]
    assert _cli(stack, "dead_app", "replay").returncode == 2  # neither ids nor --all

    # Delivery pause, as a worker sets it on a 403: visible and resumable from the CLI and the API.
    pause = DeliveryPause(client, keys=keys, probe_seconds=60)
    pause.pause(reason="Ryng answered 403: Unauthorized Token")
    assert "PAUSED" in _cli(stack, "delivery_app", "status").stdout
    assert admin(stack, "GET", "/delivery").json()["paused"] is True
    assert "resumed" in _cli(stack, "delivery_app", "resume").stdout
    assert admin(stack, "GET", "/delivery").json() == {"paused": False, "reason": None, "since": None}
    pause.pause(reason="again")
    answer = admin(stack, "POST", "/delivery/resume").json()
    assert answer["resumed"] is True and answer["state"]["paused"] is False
    client.close()


def test_concurrent_replays_replay_once_and_reset_the_lead(redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    store = LeadStore(redis_client, keys=keys, lease_seconds=30)
    store.accept(lead_id="D1", payload={"id": "D1", "number": "998314242"}, source="api")
    store.update("D1", attempts=8, crashes=2, in_task=1, agent="alice", last_outcome="ambiguous")
    store.bury("D1", dead_reason="gave up after 8 attempts", dead_at="x")
    enqueued: list[str] = []
    released: list[str] = []
    dead = DeadLetters(redis_client, keys=keys, lease_seconds=30, enqueue=enqueued.append,
                       release=released.append)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: dead.replay(["D1"]), range(8)))
    assert sum(len(r.done) for r in results) == 1 and enqueued == ["D1"]
    record: dict[str, str] = redis_client.hgetall(keys.lead("D1"))  # type: ignore[assignment]
    assert record["status"] == "queued" and record["attempts"] == "0" and record["crashes"] == "0"
    assert record["in_task"] == "0" and record["agent"] == "" and record["dead_reason"] == ""
    assert record["possible_duplicate"] == "1"  # its last send may have reached Ryng
    assert redis_client.zscore(keys.dead, "D1") is None and redis_client.zscore(keys.pending, "D1")
    assert [e["event"] for e in store.events("D1")] == ["accepted", "replayed"]
    assert dead.purge(["D1"]).skipped == {"D1": "not dead (status queued)"}
