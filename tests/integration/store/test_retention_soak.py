"""Soak: thousands of leads with short retention settings on a private Redis-compatible server. Memory levels
off (finished leads shrink to tombstones, tombstones go) while the number of leads taken keeps growing."""

from __future__ import annotations

import time

import pytest

from tests.harness import embedded_redis
from workers.store.connections import connect
from workers.store.keys import Keys
from workers.store.lead_record import Status
from workers.store.records import LeadStore
from workers.store.retention import Retention, RetentionPolicy

pytestmark = pytest.mark.fault

ROUNDS, PER_ROUND = 8, 1000


def test_memory_levels_off_under_retention() -> None:
    with embedded_redis() as server:
        client = connect(f"redis://127.0.0.1:{server.port}/0")
        keys = Keys("soak")
        store = LeadStore(client, keys=keys)
        retention = Retention(client, keys=keys, policy=RetentionPolicy(
            keep_full_seconds=1.0, keep_tombstone_seconds=2.0, batch=100_000))
        baseline = int(client.info("memory")["used_memory"])
        used: list[int] = []
        for round_ in range(ROUNDS):
            for n in range(PER_ROUND):
                lead_id = f"R{round_:02d}-{n:05d}"
                store.accept(lead_id=lead_id, payload={"id": lead_id, "number": "+919812345678", "name": "Asha",
                                                       "fields": {"Product": "Life", "Campaign": "Diwali"}},
                             source="api")
                store.transition(lead_id, Status.POSTED, allowed=frozenset(Status), agent="alice", pool="default")
                store.event(lead_id, "attempt", outcome="accepted", status_code=200)
            if round_ == 0:
                full_per_lead = (int(client.info("memory")["used_memory"]) - baseline) / PER_ROUND
            time.sleep(1.1)
            retention.sweep(force=True)
            used.append(int(client.info("memory")["used_memory"]) - baseline)
        taken = ROUNDS * PER_ROUND
        print(f"\n{taken} leads; full record ≈ {full_per_lead:.0f} B each; memory after each round (KiB): "
              f"{[u // 1024 for u in used]}")
        settled = used[ROUNDS // 2:]
        # Level, not growing with every round: the later rounds differ by less than half a round of full records
        # (one generation of tombstones more or less, as the sweeps fall against the 2 s window, is ~0.3 of one).
        assert max(settled) - min(settled) <= 0.5 * PER_ROUND * full_per_lead, used
        assert used[-1] < 0.35 * taken * full_per_lead, used  # far below keeping every record
        assert client.zcard(keys.created) <= 2 * PER_ROUND  # only the recent leads still have full records
        client.close()
