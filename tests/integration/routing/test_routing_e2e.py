"""The routing engine as a user sees it: a routing file, the real API, real workers and the Ryng sandbox.

Rules pick pools, a paused agent is skipped (and the audit says so), capacity fills and Ryng's terminal callback
frees it, the rotation survives SIGKILLed workers, and a changed routing file is picked up while running.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from tests.harness import ROOT, Proc, Stack, cli, wait_until

ADMIN_TOKEN = "e2e-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
AGENTS = "alice:10,bob:20,carol:30,dave:40,erin:50,frank:60"

ROUTING = """
default_pool = "general"

[[agents]]
name = "alice"
id = 10
[[agents]]
name = "bob"
id = 20
[[agents]]
name = "carol"
id = 30
[[agents]]
name = "dave"
id = 40
[[agents]]
name = "erin"
id = 50
capacity = 1
[[agents]]
name = "frank"
id = 60
schedule = { timezone = "Asia/Kolkata", days = [] }   # never on shift

[[pools]]
name = "life"
members = ["alice", "bob"]

[[pools]]
name = "general"
members = ["carol", "dave", "frank"]

[[pools]]
name = "vip"
members = ["erin"]
when_empty = "wait"
max_wait_seconds = 60
retry_seconds = 0.5

[[rules]]
name = "life-insurance"
pool = "life"
when = { field = "Product", equals = "Life Insurance" }

[[rules]]
name = "vip-customers"
pool = "vip"
when = { field = "Tier", equals = "vip" }
"""

DONE = ("posted", "connected", "completed")


def lead(lead_id: str, number: str, **fields: str) -> dict[str, object]:
    return {"id": lead_id, "number": number, "fields": fields}


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """`lead-router ARGS` as an operator would run it, with the deployment's environment."""
    return subprocess.run(cli(*args), env=stack.env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def picks(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in record["history"] if event["event"] == "pick"]


def deployment(
    make_stack: Callable[..., Stack], tmp_path: Path, *, routing: str = ROUTING, sandbox: tuple[str, ...] = (),
    workers: int = 1, **settings: str,
) -> Stack:
    routing_file = tmp_path / "routing.toml"
    routing_file.write_text(routing, encoding="utf-8")
    stack = make_stack(ROUTER_ROUTING_FILE=str(routing_file), ROUTER_ADMIN_TOKEN=ADMIN_TOKEN, **settings)
    stack.start_sandbox("--agents", AGENTS, "--rate-limit", "6000", "--callback-retry", "0.2", *sandbox)
    stack.start_api()
    for _ in range(workers):
        stack.start_worker()
    return stack


def test_rules_send_life_insurance_to_one_pool_and_the_rest_to_another(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = deployment(make_stack, tmp_path, sandbox=("--no-calls",))
    sent = [("L1", "Life Insurance"), ("M1", "Motor Insurance"), ("L2", "Life Insurance"), ("M2", "Health")]
    for number, (lead_id, product) in enumerate(sent):
        assert stack.post_lead(lead(lead_id, f"98000000{number}", Product=product)).status_code == 202
        stack.wait_status(lead_id, *DONE)

    agents = {c["name"]: c["agents"] for c in stack.campaigns()}
    assert agents == {"L1": ["alice"], "M1": ["carol"], "L2": ["bob"], "M2": ["dave"]}
    life, other = stack.lead("L1"), stack.lead("M2")
    assert (life["pool"], life["rule"], life["strategy"]) == ("life", "life-insurance", "round_robin")
    assert (other["pool"], other["rule"]) == ("general", None)
    assert picks(life)[0]["rule"] == "life-insurance" and picks(other)[0]["rule"] == ""
    assert picks(life)[0]["skipped"] == []
    assert picks(other)[0]["skipped"] == [{"agent": "frank", "reason": "off_shift"}]

    explained = run_cli(stack, "explain", "L2")
    assert explained.returncode == 0, explained.stderr
    assert "pool life, rule 'life-insurance', strategy round_robin" in explained.stdout, explained.stdout
    assert "picked bob from pool life (rule 'life-insurance'; strategy round_robin" in explained.stdout
    assert "attempt 1: Ryng answered 2" in explained.stdout
    raw = run_cli(stack, "explain", "L2", "--json")
    assert '"pool": "life"' in raw.stdout and '"rule": "life-insurance"' in raw.stdout
    pools = run_cli(stack, "pools")
    assert pools.returncode == 0, pools.stderr
    rows = {line.split()[0]: line.split() for line in pools.stdout.splitlines()[1:]}
    assert rows["life"][1:4] == ["round_robin", "alice,bob", "bob"]  # strategy, members, last agent picked
    assert rows["general"][1:4] == ["round_robin", "carol,dave,frank", "dave"]
    table = run_cli(stack, "agents", "list")
    assert "off shift" in next(line for line in table.stdout.splitlines() if line.startswith("frank"))
    view = stack.client.get(f"{stack.api_url}/v1/admin/routing", headers=AUTH).json()
    assert {s["name"]: s["on_shift"] for s in view["shifts"]}["frank"] is False
    assert [rule["name"] for rule in view["config"]["rules"]] == ["life-insurance", "vip-customers"]
    assert view["reloads"] == 0 and view["last_error"] is None


def test_a_paused_agent_gets_nothing_until_resumed(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    stack = deployment(make_stack, tmp_path, sandbox=("--no-calls",))
    paused = run_cli(stack, "agents", "pause", "bob", "--reason", "lunch")
    assert paused.returncode == 0, paused.stderr
    assert "bob: paused (lunch)" in paused.stdout
    listed = stack.client.get(f"{stack.api_url}/v1/admin/agents", headers=AUTH).json()
    bob = next(agent for agent in listed["agents"] if agent["name"] == "bob")
    assert bob["paused"] is True and bob["pause_reason"] == "lunch"

    for index in range(3):
        lead_id = f"P{index}"
        assert stack.post_lead(lead(lead_id, f"97000000{index}", Product="Life Insurance")).status_code == 202
        record = stack.wait_status(lead_id, *DONE)
        assert record["agent"] == "alice"
        assert picks(record)[0]["skipped"] == [{"agent": "bob", "reason": "paused"}]
    explained = run_cli(stack, "explain", "P1")
    assert explained.returncode == 0, explained.stderr
    assert "  skipped bob: paused" in explained.stdout, explained.stdout
    assert "agent alice" in explained.stdout
    table = run_cli(stack, "agents", "list")
    assert "paused (lunch)" in next(line for line in table.stdout.splitlines() if line.startswith("bob"))

    resumed = stack.client.post(f"{stack.api_url}/v1/admin/agents/bob/resume", headers=AUTH)
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert stack.post_lead(lead("P3", "970000003", Product="Life Insurance")).status_code == 202
    record = stack.wait_status("P3", *DONE)
    assert record["agent"] == "bob"  # next after alice in the rotation, the moment bob is back
    assert picks(record)[0]["skipped"] == []
    assert [c["agents"][0] for c in stack.campaigns()] == ["alice", "alice", "alice", "bob"]


def test_capacity_fills_and_the_terminal_callback_frees_it(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = deployment(make_stack, tmp_path, sandbox=("--call-delay", "0.5"))
    assert stack.post_lead(lead("V1", "960000001", Tier="vip")).status_code == 202
    first = stack.wait_status("V1", *DONE)
    assert first["agent"] == "erin" and first["pool"] == "vip"
    assert stack.post_lead(lead("V2", "960000002", Tier="vip")).status_code == 202
    waiting = stack.wait_status("V2", "waiting", "posted", "connected", "completed", timeout=15)
    assert stack.lead("V1")["status"] != "completed", "the call ended before the second lead was routed"
    assert waiting["status"] == "waiting" and waiting["wait_reason"] == "no_agent_eligible"
    assert picks(waiting)[0]["outcome"] == "wait"
    assert picks(waiting)[0]["skipped"] == [{"agent": "erin", "reason": "at_capacity"}]
    listed = stack.client.get(f"{stack.api_url}/v1/admin/agents", headers=AUTH).json()
    erin = next(agent for agent in listed["agents"] if agent["name"] == "erin")
    assert (erin["open"], erin["capacity"]) == (1, 1)

    done = stack.wait_status("V1", "completed", timeout=20)  # Ryng's terminal callback: erin is free again
    routed = stack.wait_status("V2", *DONE, timeout=15)
    assert routed["agent"] == "erin"
    assert [p["outcome"] for p in picks(routed)][-1] == "assigned"
    assert routed["assigned_at"] >= done["completed_at"]
    assert [c["name"] for c in stack.campaigns()] == ["V1", "V2"]


ROTATION = """
default_pool = "campaign"
[[pools]]
name = "campaign"
members = ["alice", "bob", "carol", "dave"]
"""
ORDER = ["alice", "bob", "carol", "dave"]


def test_killed_workers_restart_and_the_rotation_continues_where_it_was(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = deployment(
        make_stack, tmp_path, routing=ROTATION, sandbox=("--no-calls", "--latency-ms", "250"), workers=2,
        ROUTER_AGENTS="alice,bob,carol,dave", ROUTER_LEASE_SECONDS="3",
    )
    ids = [f"K{i:02d}" for i in range(32)]
    for index, lead_id in enumerate(ids):
        assert stack.post_lead(lead(lead_id, f"95000{index:04d}")).status_code == 202
    wait_until(lambda: len(stack.campaigns()) >= 8, timeout=30, what="eight campaigns")
    for proc in [p for p in stack.procs if p.name.startswith("worker")]:
        proc.kill()
    assert len(stack.campaigns()) < len(ids), "the stream ended before the workers were killed"
    time.sleep(0.3)
    cursor = stack.client.get(f"{stack.api_url}/v1/admin/pools", headers=AUTH).json()[0]["last_agent"]
    restarted_at = time.time()
    stack.start_worker()
    stack.start_worker()

    records = [stack.wait_status(lead_id, *DONE, timeout=40) for lead_id in ids]
    # Every lead was picked once, each pick the next agent after the previous one, from one start only.
    reasons = Counter(record["reason"] for record in records)
    assert reasons["first in rotation"] == 1
    for record in records:
        if record["reason"] != "first in rotation":
            previous = record["reason"].removeprefix("next in rotation after ")
            assert record["agent"] == ORDER[(ORDER.index(previous) + 1) % 4], record["reason"]
    assert Counter(record["agent"] for record in records) == {name: 8 for name in ORDER}
    listed = stack.client.get(f"{stack.api_url}/v1/admin/agents", headers=AUTH).json()
    assert listed["stats"]["assigned"] == len(ids)  # killed deliveries kept their pick: no second pick
    later = [r for r in records if _picked_at(r) >= restarted_at]
    assert any(r["reason"] == f"next in rotation after {cursor}" for r in later), (cursor, later[:2])
    # Nothing lost; a lead sent twice (killed mid-request) is flagged possible_duplicate.
    names = Counter(c["name"] for c in stack.campaigns())
    assert set(names) == set(ids)
    assert all(stack.lead(name)["possible_duplicate"] for name, count in names.items() if count > 1)


def _rejections(proc: Proc, at_least: int) -> list[str]:
    lines = [line for line in proc.log().splitlines() if "routing_reload_rejected" in line]
    return lines if len(lines) >= at_least else []


def _picked_at(record: dict[str, Any]) -> float:
    return datetime.fromisoformat(picks(record)[0]["at"].replace("Z", "+00:00")).timestamp()


RELOADED = ROUTING.replace('members = ["alice", "bob"]', 'members = ["carol"]') + """
[[pools]]
name = "health"
members = ["dave"]
"""


def test_a_changed_routing_file_is_picked_up_while_running(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    stack = deployment(make_stack, tmp_path, sandbox=("--no-calls",))
    routing_file = Path(stack.settings["ROUTER_ROUTING_FILE"])
    assert stack.post_lead(lead("R1", "940000001", Product="Life Insurance")).status_code == 202
    assert stack.wait_status("R1", *DONE)["agent"] == "alice"
    assert stack.post_lead({"id": "R0", "number": "940000000", "pool": "health"}).status_code == 422

    routing_file.write_text(RELOADED, encoding="utf-8")
    accepted = wait_until(
        lambda: stack.post_lead({"id": "R2", "number": "940000002", "pool": "health"}).status_code == 202,
        timeout=10, interval=0.5, what="the API to know the new pool",
    )
    assert accepted
    assert stack.wait_status("R2", *DONE)["agent"] == "dave"
    assert stack.post_lead(lead("R3", "940000003", Product="Life Insurance")).status_code == 202
    moved = stack.wait_status("R3", *DONE)
    assert (moved["agent"], moved["pool"]) == ("carol", "life")
    pools = {p["name"]: p for p in stack.client.get(f"{stack.api_url}/v1/admin/pools", headers=AUTH).json()}
    assert pools["life"]["members"] == ["carol"] and "health" in pools

    # An invalid file: every process logs each mistake on its own line and keeps the configuration in force.
    invalid = RELOADED + '\n[[pools]]\nname = "bad"\nstrategy = "fastest"\n\n[[agents]]\nname = "zed"\nweight = 0\n'
    routing_file.write_text(invalid, encoding="utf-8")
    lines = invalid.splitlines()
    strategy_line, weight_line = lines.index('strategy = "fastest"') + 1, lines.index("weight = 0") + 1
    mistakes = [f"line {strategy_line}: pools.4.strategy: Input should be", f"line {weight_line}: agents.6.weight"]
    for proc in (p for p in stack.procs if p.name != "sandbox"):  # the API and the worker (its pump)
        reported = wait_until(partial(_rejections, proc, 2), timeout=10, what=f"{proc.name} to log the mistakes")
        assert all(any(m in line for line in reported) for m in mistakes), reported
    assert stack.post_lead(lead("R4", "940000004", Product="Life Insurance")).status_code == 202
    assert stack.wait_status("R4", *DONE)["agent"] == "carol"  # the configuration in force stayed
    view = stack.client.get(f"{stack.api_url}/v1/admin/routing", headers=AUTH).json()
    assert view["reloads"] == 1 and all(m in view["last_error"] for m in mistakes)
    assert [pool["name"] for pool in view["config"]["pools"]] == ["life", "general", "vip", "health"]
    checked = run_cli(stack, "routing", "check")
    assert checked.returncode == 2
    assert len(checked.stderr.splitlines()) == 2 and all(m in checked.stderr for m in mistakes), checked.stderr


def test_routing_check_summarises_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "routing.toml"
    path.write_text(ROUTING, encoding="utf-8")
    result = subprocess.run(cli("routing", "check", str(path)), cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "6 agents, 3 pools, 2 rules" in result.stdout
    assert "pool vip: round_robin; members erin; when empty: wait up to 60s" in result.stdout
    assert "rule life-insurance → pool life" in result.stdout
