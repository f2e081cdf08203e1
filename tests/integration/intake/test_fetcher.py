"""The fetch step on real Redis against a CRM API stand-in on real HTTP: retries are durable waits in Redis,
bounded, and end in a dead letter with the reason; a lead that no longer waits is left alone."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from config.routing import RoutingConfig, load_routing
from config.sources_models import SourceConfig
from tests.fixtures import crm
from tests.harness import uvicorn_in_thread
from workers.clock import now_ms
from workers.delivery.policy import DeliveryPolicy
from workers.fetch.crm_api import CrmApi
from workers.fetch.fetcher import Fetched, Fetcher
from workers.fetch.waits import FetchWaits
from workers.store.counters import Counters
from workers.store.dead_letters import DeadLetters
from workers.store.keys import Keys
from workers.store.records import LeadStore, NotReplicatedError


@pytest.fixture
def down_api() -> Iterator[str]:
    async def down(request: Request) -> JSONResponse:
        return JSONResponse({"message": "maintenance"}, status_code=503)

    async def contact(request: Request) -> JSONResponse:
        return JSONResponse(crm.HUBSPOT_CONTACT_RECORD)

    app = Starlette(routes=[Route("/down/{id}", down), Route("/up/{id}", contact)])
    with uvicorn_in_thread(app) as (host, port):
        yield f"http://{host}:{port}"


def routing(base: str, path: str, monkeypatch: pytest.MonkeyPatch) -> RoutingConfig:
    monkeypatch.setenv("FETCH_TEST_TOKEN", "tok-123")
    source = SourceConfig.model_validate({
        "name": "hs", "preset": "hubspot", "auth": "none", "country_code": "+91",
        "fetch": {"token_env": "FETCH_TEST_TOKEN", "url": f"{base}/{path}/{{id}}"},
    })
    return load_routing(path=None, agents=["alice"]).model_copy(update={"sources": (source,)})


def fetcher(client: redis.Redis, keys: Keys, config: RoutingConfig, queued: list[str]) -> tuple[Fetcher, FetchWaits]:
    store = LeadStore(client, keys=keys)
    waits = FetchWaits(client, keys=keys, store=store, lease_seconds=5)
    return Fetcher(waits=waits, store=store, api=CrmApi(httpx.Client()), routing=lambda: config,
                   policy=DeliveryPolicy(backoff_base_seconds=0.1, backoff_max_seconds=0.2), max_attempts=2,
                   enqueue=queued.append, counters=Counters(client, keys=keys)), waits


def test_an_api_that_stays_down_is_retried_from_redis_then_dead_lettered(
    client: redis.Redis, keys: Keys, down_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[str] = []
    step, waits = fetcher(client, keys, routing(down_api, "down", monkeypatch), queued)
    assert waits.accept(lead_id="hs:7", crm_id="7", source="hs").outcome == "created"
    assert waits.accept(lead_id="hs:7", crm_id="7", source="hs").outcome == "exists"
    assert waits.claim_due() == ["hs:7"] and waits.claim_due() == []  # one reader at a time (a lease)
    assert client.zscore(keys.pending, "hs:7") is None  # never delivered before its record is read

    before = now_ms()
    assert step.run("hs:7") == Fetched.RETRYING
    due = client.zscore(keys.fetches_due, "hs:7")
    assert due is not None and due >= before + 50  # waits in Redis for its backoff (0.05 s at least), no countdown
    record = client.hgetall(keys.lead("hs:7"))
    assert (record["status"], record["fetch_status"], record["fetch_attempts"]) == ("fetching", "retrying", "1")
    assert "503" in record["fetch_last_error"]

    assert step.run("hs:7") == Fetched.DEAD
    record = client.hgetall(keys.lead("hs:7"))
    assert record["status"] == "dead" and record["dead_reason"].startswith("gave up after 2 tries")
    assert client.zscore(keys.dead, "hs:7") is not None and client.zscore(keys.fetches_due, "hs:7") is None
    assert step.run("hs:7") == Fetched.NOTHING and queued == []
    counted = Counters(client, keys=keys).snapshot()
    assert (counted.get("fetch_retries"), counted.get("fetch_dead"), counted.get("fetch_filled")) == (1, 1, None)


def test_a_fetched_record_fills_the_lead_and_hands_it_to_delivery(
    client: redis.Redis, keys: Keys, down_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[str] = []
    step, waits = fetcher(client, keys, routing(down_api, "up", monkeypatch), queued)
    waits.accept(lead_id="hs:65059681032", crm_id="65059681032", source="hs")
    assert step.run("hs:65059681032") == Fetched.FILLED and queued == ["hs:65059681032"]
    record = LeadStore(client, keys=keys).get("hs:65059681032")
    assert record is not None and record.status == "queued" and record.number == "+919847033221"
    assert client.zscore(keys.pending, "hs:65059681032") is not None  # the lease: a lost enqueue comes back
    assert step.run("hs:65059681032") == Fetched.NOTHING and queued == ["hs:65059681032"]  # filled once
    assert Counters(client, keys=keys).snapshot().get("fetch_filled") == 1


def test_a_source_that_no_longer_declares_a_fetch_dead_letters_its_waiting_leads(
    client: redis.Redis, keys: Keys, down_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = routing(down_api, "up", monkeypatch)
    step, waits = fetcher(client, keys, config.model_copy(update={"sources": ()}), [])
    waits.accept(lead_id="hs:1", crm_id="1", source="hs")
    assert step.run("hs:1") == Fetched.DEAD
    assert "no longer declares a fetch" in client.hget(keys.lead("hs:1"), "dead_reason")


def test_replaying_a_lead_dead_before_its_record_was_read_reads_it_again(
    client: redis.Redis, keys: Keys, down_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[str] = []
    step, waits = fetcher(client, keys, routing(down_api, "down", monkeypatch), queued)
    waits.accept(lead_id="hs:65059681032", crm_id="65059681032", source="hs")
    assert (step.run("hs:65059681032"), step.run("hs:65059681032")) == (Fetched.RETRYING, Fetched.DEAD)

    replayed: list[str] = []
    result = DeadLetters(client, keys=keys, lease_seconds=5, enqueue=replayed.append).replay(["hs:65059681032"])
    assert result.done == ["hs:65059681032"] and replayed == []  # no delivery without a number
    record = client.hgetall(keys.lead("hs:65059681032"))
    assert (record["status"], record["fetch_status"], record["fetch_attempts"]) == ("fetching", "waiting", "0")
    assert client.zscore(keys.pending, "hs:65059681032") is None
    assert waits.claim_due() == ["hs:65059681032"]

    step, _ = fetcher(client, keys, routing(down_api, "up", monkeypatch), queued)  # the CRM's API is back
    assert step.run("hs:65059681032") == Fetched.FILLED and queued == ["hs:65059681032"]


def test_a_waiting_lead_is_kept_only_once_enough_replicas_hold_it(client: redis.Redis, keys: Keys) -> None:
    store = LeadStore(client, keys=keys, min_replicas=1, replica_timeout_ms=50)  # a Redis without replicas
    with pytest.raises(NotReplicatedError, match="0 of 1 replicas"):
        FetchWaits(client, keys=keys, store=store).accept(lead_id="hs:1", crm_id="1", source="hs")
