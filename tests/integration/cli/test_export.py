"""`lead-router export`, run as a user would, against the session's Redis."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess

import pytest
import redis

from router.cli.export import parse_since
from tests.harness import ROOT, cli
from workers.store.keys import Keys
from workers.store.lead_record import Status
from workers.store.records import LeadStore
from workers.store.retention import Retention, RetentionPolicy


def _run(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RYNG_", "ROUTER_", "CELERY_"))}
    env |= {"REDIS_URL": redis_url, "ROUTER_KEY_PREFIX": prefix}
    return subprocess.run(cli("export", *args), env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_export_writes_outcomes_as_jsonl_and_csv(redis_url: str, redis_client: redis.Redis, key_prefix: str) -> None:
    keys = Keys(key_prefix)
    store = LeadStore(redis_client, keys=keys)
    for lead_id in ("E1", "E2", "E3"):
        store.accept(lead_id=lead_id, payload={"id": lead_id, "number": "+919812345678", "name": "Asha",
                                               "fields": {"Product": "Life"}}, source="csv")
    store.transition("E1", Status.POSTED, allowed=frozenset(Status), agent="alice", posted_at="t")
    store.bury("E2", dead_reason="Ryng said 400")
    # E1 has been shrunk to a tombstone: it is exported all the same (with what the tombstone keeps).
    Retention(redis_client, keys=keys, policy=RetentionPolicy(keep_full_seconds=0.001)).sweep(force=True)
    assert redis_client.hget(keys.lead("E1"), "tombstone") == "1"

    jsonl = _run(redis_url, key_prefix, "--since", "1h", "--format", "jsonl")
    assert jsonl.returncode == 0, jsonl.stderr
    rows = {row["id"]: row for row in map(json.loads, jsonl.stdout.splitlines())}
    assert set(rows) == {"E1", "E2", "E3"}
    assert rows["E3"]["status"] == "accepted" and rows["E3"]["fields"] == {"Product": "Life"}
    assert rows["E1"]["agent"] == "alice" and rows["E1"]["tombstone"] is True
    assert "exported 3 leads" in jsonl.stderr
    assert re.search(r"since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", jsonl.stderr), jsonl.stderr

    as_csv = _run(redis_url, key_prefix, "--since", "2000-01-01")
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {row["id"]: row["status"] for row in table} == {"E1": "posted", "E2": "dead", "E3": "accepted"}

    none = _run(redis_url, key_prefix, "--since", "2999-01-01")
    assert none.returncode == 0 and none.stdout == "" and "exported 0 leads" in none.stderr


def test_a_bad_since_is_one_clear_line(redis_url: str, key_prefix: str) -> None:
    result = _run(redis_url, key_prefix, "--since", "last tuesday")
    assert result.returncode == 2 and "neither a date" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "seconds_ago"), [("7d", 7 * 86_400), ("12h", 12 * 3600), ("30m", 1800)])
def test_ages(text: str, seconds_ago: int) -> None:
    assert parse_since(text, now=1_000_000.0) == (1_000_000 - seconds_ago) * 1000
