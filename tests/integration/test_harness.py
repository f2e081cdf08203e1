"""The harness's own helpers that read a real server: a replica counts once its initial sync is done."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.harness import Proc, free_port, online_replicas, redis_answers, redis_server, wait_until

REDIS_SERVER = shutil.which("redis-server")


def test_online_replicas_counts_a_replica_from_its_sync_until_it_is_gone(tmp_path: Path) -> None:
    if REDIS_SERVER is None:
        pytest.skip("no redis-server binary on this machine")
    primary_port, replica_port = free_port(), free_port()
    primary = redis_server(tmp_path, "primary", primary_port)
    replica: Proc | None = None
    try:
        wait_until(lambda: redis_answers(f"redis://127.0.0.1:{primary_port}"), timeout=10, what="the primary")
        assert online_replicas(primary_port) == 0
        replica = redis_server(tmp_path, "replica", replica_port, "--replicaof", "127.0.0.1", str(primary_port))
        wait_until(lambda: online_replicas(primary_port) == 1, timeout=15, what="the replica in sync")
        assert online_replicas(replica_port) == 0  # the replica has none of its own
        replica.kill()
        wait_until(lambda: online_replicas(primary_port) == 0, timeout=15, what="the primary to see it gone")
    finally:
        if replica is not None:
            replica.kill()
        primary.kill()
