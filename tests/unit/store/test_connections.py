"""Redis URLs: plain and Sentinel, the broker derived from them, passwords masked; a lead waits for replicas."""

from __future__ import annotations

import pytest
import redis

from workers.store.connections import broker_for, connect, masked, parse_sentinel_url
from workers.store.keys import Keys
from workers.store.records import LeadStore, NotReplicatedError


def test_a_sentinel_url_names_sentinels_service_db_and_passwords() -> None:
    target = parse_sentinel_url(
        "redis+sentinel://:s3cret@10.0.0.1:26379,10.0.0.2:26380,[::1]:26381/mymaster/2?sentinel_password=sp")
    assert target.sentinels == (("10.0.0.1", 26379), ("10.0.0.2", 26380), ("::1", 26381))
    assert (target.service, target.db, target.password, target.sentinel_password) == ("mymaster", 2, "s3cret", "sp")
    assert parse_sentinel_url("redis+sentinel://h:1/svc").db == 0


@pytest.mark.parametrize("url", [
    "redis+sentinel://h:26379", "redis+sentinel:///svc", "redis+sentinel://h:x/svc",
    "redis+sentinel://h:1/svc/notadb", "redis+sentinel://h:1/a/1/extra",
])
def test_a_malformed_sentinel_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(ValueError, match="REDIS_URL"):
        parse_sentinel_url(url)


def test_the_broker_follows_the_same_sentinels() -> None:
    url, options = broker_for("redis+sentinel://:pw@h1:26379,h2:26380/mymaster/3")
    assert url == "sentinel://:pw@h1:26379/3;sentinel://:pw@h2:26380/3"
    assert options == {"master_name": "mymaster"}
    assert broker_for("redis://127.0.0.1:6379/0") == ("redis://127.0.0.1:6379/0", {})


def test_passwords_are_masked() -> None:
    assert masked("redis://:hunter2@db:6379/0") == "redis://:***@db:6379/0"
    assert masked("redis+sentinel://u:hunter2@h1:1,h2:2/svc") == "redis+sentinel://u:***@h1:1,h2:2/svc"
    assert masked("redis://db:6379/0") == "redis://db:6379/0"


def test_a_sentinel_client_is_a_redis_client() -> None:
    client = connect("redis+sentinel://127.0.0.1:1/mymaster", timeout=0.2)
    assert isinstance(client, redis.Redis)
    with pytest.raises(redis.ConnectionError):  # no sentinel answers there: a RedisError, i.e. a 503
        client.ping()


def test_a_lead_not_held_by_enough_replicas_is_not_called_kept(redis_client: redis.Redis, key_prefix: str) -> None:
    replicas = int(redis_client.info("replication")["connected_slaves"])
    store = LeadStore(redis_client, keys=Keys(key_prefix), min_replicas=replicas + 1, replica_timeout_ms=20)
    with pytest.raises(NotReplicatedError, match=f"{replicas} of {replicas + 1} replicas"):
        store.accept(lead_id="L1", payload={"id": "L1"}, source="api")
    # The record is on the primary: the CRM's retry finds it (and waits for the replicas again).
    with pytest.raises(NotReplicatedError):
        store.accept(lead_id="L1", payload={"id": "L1"}, source="api")
    relaxed = LeadStore(redis_client, keys=Keys(key_prefix), min_replicas=0)
    assert relaxed.accept(lead_id="L1", payload={"id": "L1"}, source="api").outcome == "exists"
