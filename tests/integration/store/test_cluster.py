"""The router's scripts and MULTIs on a real three-node Redis Cluster: every key of a router is in one slot.

Starts `redis-server --cluster-enabled yes` three times on free local ports, assigns the slots by hand and waits
for `cluster_state:ok`; skipped on a machine without a `redis-server` binary.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from config.routing import RoutingConfig
from tests.harness import wait_until
from workers.clock import now_ms
from workers.delivery.ledger import DeliveryLedger, Settlement, history_entry
from workers.routing.agents import AgentStore
from workers.routing.assigner import Assigner, LeadFacts, cancel_reservation
from workers.ryng.callbacks import Callback, CallbackRecorder
from workers.store.counters import Counters
from workers.store.dead_letters import DeadLetters
from workers.store.keys import SCHEMA_VERSION, Keys
from workers.store.limiter import RateLimiter
from workers.store.migrations import migrate
from workers.store.parking import Parking
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore, Status

NODES = 3
SLOTS = 16384


def _free_ports(count: int) -> list[int]:
    """Ports free on 127.0.0.1 whose cluster bus port (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        with socket.socket() as bus:
            try:
                bus.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        ports.append(port)
    return ports


def _cluster_ok(port: int) -> bool:
    node = redis.Redis(port=port, decode_responses=True)
    try:
        info = node.cluster("INFO")
    except redis.ConnectionError:
        return False
    finally:
        node.close()
    return bool(info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == NODES)


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary: Redis Cluster test skipped")
    ports = _free_ports(NODES)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            folder: Path = tmp_path_factory.mktemp(f"node{port}")
            processes.append(subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", str(folder / "nodes.conf"), "--dir", str(folder), "--save", "",
                 "--appendonly", "no", "--protected-mode", "no"],
                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
            ))
        clients = [redis.Redis(port=port, decode_responses=True) for port in ports]
        wait_until(lambda: all(_pings(client) for client in clients), timeout=20, what="the nodes to start")
        share = SLOTS // NODES
        for n, client in enumerate(clients):
            last = SLOTS if n == NODES - 1 else (n + 1) * share
            client.execute_command("CLUSTER ADDSLOTS", *range(n * share, last))
        for port in ports[1:]:
            clients[0].execute_command("CLUSTER MEET", "127.0.0.1", port)
        wait_until(lambda: all(_cluster_ok(port) for port in ports), timeout=30, what="cluster_state:ok")
        for client in clients:
            client.close()
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.fixture
def cluster(cluster_ports: list[int]) -> Iterator[RedisCluster]:
    client = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", port) for port in cluster_ports],
                          decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def keys() -> Keys:
    return Keys(f"c{uuid.uuid4().hex[:8]}")


def routing(strategy: str = "round_robin", pools: tuple[str, ...] = ("default",)) -> RoutingConfig:
    return RoutingConfig.model_validate({
        "agents": [{"name": name, "capacity": 2} for name in ("alice", "bob", "carol")],
        "pools": [{"name": name, "members": ["alice", "bob", "carol"], "strategy": strategy} for name in pools],
        "default_pool": pools[0],
    })


def lead(lead_id: str, **facts: str) -> LeadFacts:
    return LeadFacts(lead_id=lead_id, number="+91 98000 00001", fields={}, **facts)


def make_ledger(cluster: RedisCluster, keys: Keys) -> DeliveryLedger:
    return DeliveryLedger(cluster, keys=keys, limiter=RateLimiter(cluster, keys=keys, limit=5),
                          lease_seconds=30, lock_seconds=30, reservation_timeout_seconds=60, locked_retry_seconds=2)


def test_every_key_of_a_router_is_in_one_slot(cluster: RedisCluster, keys: Keys) -> None:
    slots = {cluster.keyslot(key) for key in (keys.lead("a"), keys.lead("b:c"), keys.pending, keys.rate,
                                              keys.agent("alice"), keys.reservation("x"), keys.schema)}
    assert len(slots) == 1
    assert len({cluster.keyslot(Keys(f"p{n}").pending) for n in range(20)}) > 1  # routers spread over the nodes


def test_the_assigner_rotates_reserves_and_releases(cluster: RedisCluster, keys: Keys) -> None:
    assigner = Assigner(cluster, keys=keys, routing=routing(pools=("default", "spare")))
    assigner.sync()
    picks = [assigner.pick(lead(f"L{n}")) for n in range(6)]
    assert [pick.agent for pick in picks] == ["alice", "bob", "carol", "alice", "bob", "carol"]
    assert [pick.reason for pick in picks[:2]] == ["first in rotation", "next in rotation after alice"]
    assert assigner.pick(lead("L0")).agent == "alice"  # idempotent per lead: nothing moves
    refused = assigner.pick(lead("L6"))  # everyone at capacity 2
    assert refused.outcome == "wait" and {skip.reason for skip in refused.skipped} == {"at_capacity"}

    agents = AgentStore(cluster, keys=keys)
    assert [state.open for state in agents.agents()] == [2, 2, 2]
    assert assigner.release(lead_id="L1")  # bob is free again
    assert not assigner.release(lead_id="L1")
    assert assigner.pick(lead("L7")).agent == "bob"
    assert cancel_reservation(cluster, keys=keys, lead_id="L7")
    agents.pause("carol", reason="break")
    assert assigner.release(lead_id="L2") and assigner.pick(lead("L8")).agent == "bob"  # carol paused
    assert assigner.expire_reservations(now=time.time() + 10 * 3600) == 5  # L0 L3 L4 L5 L8
    assert agents.stats().reservations == 0 and sum(state.open for state in agents.agents()) == 0
    assert assigner.pick(lead("L9", agent="zoe")).agent == "zoe"  # an explicit agent

    Assigner(cluster, keys=keys, routing=routing()).sync()  # the "spare" pool is dropped
    assert [pool.name for pool in agents.pools()] == ["default"]


def test_the_weighted_and_least_busy_strategies_run(cluster: RedisCluster, keys: Keys) -> None:
    for strategy in ("weighted", "least_busy", "longest_idle"):
        mine = Keys(f"{keys.prefix}-{strategy}")
        assigner = Assigner(cluster, keys=mine, routing=routing(strategy))
        assigner.sync()
        chosen = [assigner.pick(lead(f"{strategy}{n}")).agent for n in range(3)]
        assert sorted(chosen) == ["alice", "bob", "carol"], strategy


def test_the_limiter_grants_up_to_the_limit_then_refuses(cluster: RedisCluster, keys: Keys) -> None:
    limiter = RateLimiter(cluster, keys=keys, limit=3, window_seconds=60)
    slots = [limiter.acquire() for _ in range(4)]
    assert [slot.granted for slot in slots] == [True, True, True, False]
    assert [slot.used for slot in slots] == [1, 2, 3, 3]
    assert 59 < slots[-1].wait_seconds <= 60
    assert limiter.in_window() == 3


def test_the_lead_store_accepts_moves_buries_and_parks(cluster: RedisCluster, keys: Keys) -> None:
    store = LeadStore(cluster, keys=keys, lease_seconds=0.05, lock_seconds=30)
    parking = Parking(cluster, keys=keys, lease_seconds=0.05)
    assert store.accept(lead_id="A1", payload={"id": "A1"}, source="api").outcome == "created"
    assert store.accept(lead_id="A1", payload={"id": "A1"}, source="api").outcome == "exists"
    assert store.accept(lead_id="A1", payload={"id": "other"}, source="api").outcome == "conflict"
    assert store.transition("A1", Status.QUEUED) == "accepted"
    assert store.transition("A1", Status.QUEUED, allowed=frozenset({Status.ASSIGNED})) is None
    store.update("A1", agent="alice")
    assert store.incr("A1", "attempts") == 1
    assert [event["event"] for event in store.events("A1")] == ["accepted"]
    assert store.lock("A1", token="t1") and not store.lock("A1", token="t2")
    store.unlock("A1", token="t2")
    assert store.is_locked("A1")
    store.unlock("A1", token="t1")
    assert not store.is_locked("A1")

    # Parking: due claims, expired leases (locked leads are left alone), a run settling the lead as final.
    due = parking.park("A1", delay_seconds=0)
    assert due > 0 and parking.claim_due() == ["A1"]
    store.accept(lead_id="A2", payload={"id": "A2"}, source="api")
    assert store.lock("A2", token="t")
    time.sleep(0.1)
    assert parking.claim_expired() == ["A1"]
    make_ledger(cluster, keys).settle("A1", token="", settlement=Settlement(status=Status.POSTED, finish=True))
    assert parking.counts() == {"pending": 1, "parked": 0, "dead": 0}

    # Burial and the dead letters' replay and purge.
    assert store.bury("A2", dead_reason="rejected") == "accepted"
    assert store.bury("A2", dead_reason="again") is None
    assert parking.counts() == {"pending": 0, "parked": 0, "dead": 1}
    enqueued: list[str] = []
    dead = DeadLetters(cluster, keys=keys, lease_seconds=30, enqueue=enqueued.append)
    assert dead.listing().items[0].reason == "rejected"
    assert dead.replay(["A2"]).done == ["A2"] and enqueued == ["A2"]
    assert store.bury("A2", dead_reason="again") == "queued"
    assert dead.purge(["A2"]).done == ["A2"] and store.get("A2") is None


def test_callbacks_pause_counters_and_the_migration(cluster: RedisCluster, keys: Keys) -> None:
    store = LeadStore(cluster, keys=keys)
    store.accept(lead_id="B1", payload={"id": "B1"}, source="api")
    store.transition("B1", Status.POSTED)
    recorder = CallbackRecorder(cluster, keys=keys)
    callback = Callback(kind="terminal", event="call-ended", call_id="c1", lead_id="B1",
                        raw={"disposition": "Interested"})
    assert recorder.apply(callback, body=b"{}", body_digest="d") == "applied"
    assert recorder.apply(callback, body=b"{}", body_digest="d") == "duplicate"
    record = store.get("B1")
    assert record is not None and record.status == "completed" and record.disposition == "Interested"
    recorder.unmatched(b"{}", kind="connect")
    assert cluster.llen(keys.callbacks_unmatched) == 1

    # A run parks B2 held by the pause; B3 was held, then parked again by a backoff: a resume wakes B2 only.
    pause = DeliveryPause(cluster, keys=keys, probe_seconds=60)
    pause.pause(reason="403")
    runs = make_ledger(cluster, keys)
    for lead_id, held in (("B2", "hold"), ("B3", "hold"), ("B3", "unhold")):
        store.accept(lead_id=lead_id, payload={"id": lead_id}, source="api")
        runs.settle(lead_id, token="", settlement=Settlement(park_seconds=600, held=held))
    assert cluster.smembers(keys.paused_held) == {"B2"}
    assert not pause.take_probe()
    assert pause.resume() and pause.state() is None
    woken, waiting = cluster.zscore(keys.parked, "B2"), cluster.zscore(keys.parked, "B3")
    assert woken is not None and woken <= now_ms() and waiting is not None and waiting > now_ms() + 500_000

    counters = Counters(cluster, keys=keys)
    counters.incr("leads_accepted", 2)
    assert counters.snapshot() == {  # the callbacks counted themselves in their own calls, on the cluster too
        "leads_accepted": 2, "callback:terminal:applied": 1, "callback:terminal:duplicate": 1,
        "callback:connect:unmatched": 1,
    }

    assert migrate(cluster, keys=keys) == 0  # nothing of the untagged layout on a cluster: only marked
    assert cluster.get(keys.schema) == str(SCHEMA_VERSION)
    assert migrate(cluster, keys=keys) == 0


def test_a_delivery_claims_begins_and_settles(cluster: RedisCluster, keys: Keys) -> None:
    store = LeadStore(cluster, keys=keys)
    store.accept(lead_id="D1", payload={"id": "D1", "number": "998314242"}, source="api")
    assigner = Assigner(cluster, keys=keys, routing=routing())
    assigner.sync()
    assert assigner.pick(lead("D1")).agent == "alice"  # a reservation held for an hour
    ledger = make_ledger(cluster, keys)
    claim = ledger.claim("D1", token="t")
    assert claim.verdict == "claimed" and claim.record is not None and claim.record.status == "accepted"
    begun = ledger.begin("D1", pick_fields={"status": "assigned", "agent": "a"}, pick_event=history_entry("pick"),
                         pick_counter="assigned")
    assert begun.outcome == "sending" and begun.attempt == 1
    ledger.settle("D1", token="t", settlement=Settlement(status=Status.POSTED, finish=True, counters=("posted",)))
    record = store.get("D1")
    assert record is not None and record.status == "posted" and record.agent == "a" and not record.in_task
    assert cluster.zscore(keys.pending, "D1") is None and not cluster.exists(keys.lead_lock("D1"))
    deadline = cluster.zscore(keys.reservations, "D1")  # the settlement restarted the reservation's timeout
    assert deadline is not None and deadline <= now_ms() + 60_000
