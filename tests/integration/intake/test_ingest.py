"""Leads from a CSV file and from a message queue reach Ryng the same way as HTTP leads."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import redis
from kombu import Connection

from tests.harness import ROOT, Stack, cli, wait_until
from workers.store.keys import Keys


def test_csv_import_takes_valid_rows_and_names_bad_ones(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    stack = make_stack()
    stack.start_sandbox("--no-calls")
    stack.start_worker()
    stack.api_url = ""  # the import needs no API
    sheet = tmp_path / "leads.csv"
    sheet.write_text(
        "id,number,name,Product\n"
        "CSV1,998314242,James,Life Insurance\n"
        "CSV2,(893) 247-489,Philip,Motor Insurance\n"
        "CSV3,12,Bad,Number\n"
    )
    done = subprocess.run([*cli("import", str(sheet))], env=stack.env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1, done.stderr  # one row was rejected
    assert "2 taken, 0 already known, 1 rejected" in done.stdout
    assert "line 4" in done.stderr and "number" in done.stderr
    wait_until(lambda: len(stack.campaigns()) == 2, timeout=30, what="two campaigns")
    rows = {c["name"]: c for c in stack.campaigns()}
    assert rows["CSV1"]["rows"][0]["fields"]["Product"] == "Life Insurance"
    assert rows["CSV2"]["rows"][0]["number"] == "893247489"
    assert sorted(c["agents"][0] for c in rows.values()) == ["alice", "bob"]

    again = subprocess.run([*cli("import", str(sheet))], env=stack.env, cwd=ROOT, capture_output=True,
                           text=True, timeout=60)
    assert "0 taken, 2 already known, 1 rejected" in again.stdout


def test_csv_import_names_a_row_whose_agent_the_routing_does_not_know(
    make_stack: Callable[..., Stack], tmp_path: Path, redis_url: str
) -> None:
    stack = make_stack()
    sheet = tmp_path / "leads.csv"
    sheet.write_text("id,number,agent\nCA1,998314242,bob\nCA2,998314243,zoe\n")
    done = subprocess.run([*cli("import", str(sheet))], env=stack.env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "1 taken, 0 already known, 1 rejected" in done.stdout
    assert "line 3: agent: unknown agent 'zoe'" in done.stderr
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    assert client.exists(keys.lead("CA1")) and not client.exists(keys.lead("CA2"))
    client.close()


def test_queue_consumer_takes_json_leads_and_keeps_bad_messages(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_sandbox("--no-calls")
    stack.start_worker()
    consumer = stack.spawn("consumer", [*cli("consume", "--queue", "crm-test")])
    with Connection(stack.redis_url) as connection:
        queue = connection.SimpleQueue("crm-test")
        queue.put({"id": "Q1", "number": "998314242", "fields": {"Product": "Life"}})
        queue.put(json.dumps({"id": "Q2", "number": "998314243"}))
        queue.put({"id": "Q3", "number": "nope"})
        queue.close()
    wait_until(lambda: len(stack.campaigns()) == 2, timeout=30, what="two campaigns from the queue")
    assert sorted(c["name"] for c in stack.campaigns()) == ["Q1", "Q2"]
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    rejected_key = Keys(stack.settings["ROUTER_KEY_PREFIX"]).consume_rejected
    rejected = wait_until(lambda: client.lrange(rejected_key, 0, -1), timeout=10, what="the rejected message")
    assert "Q3" in rejected[0] and "number" in json.loads(rejected[0])["reason"]
    assert consumer.alive()
