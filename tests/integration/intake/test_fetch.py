"""Id-only CRM events over real HTTP: the API keeps the lead, a worker reads its record from the CRM's API (a
stand-in HTTP server in the test process), then the lead is routed and posted to the sandbox like any other.

The stand-in serves HubSpot's contacts API and Meta's Graph API paths; it can be down (503) for its first requests.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from router.intake.sources.auth import sign_hubspot, sign_meta
from tests.fixtures import crm
from tests.harness import ROOT, Stack, cli, uvicorn_in_thread, wait_until

HUBSPOT_TOKEN = "pat-na1-7c1e0d5a-hubspot-private-app"
META_TOKEN = "EAAG-meta-page-token-93f1"
HUBSPOT_SECRET = "hs-client-secret-fetch-31"
META_APP_SECRET = "meta-app-secret-5d2"
PIPEDRIVE_TOKEN = "pd-api-token-0b7e"


class CrmApi:
    """HubSpot's and Meta's record endpoints: 503 for the first `down_for` reads, 401 for a wrong token."""

    def __init__(self, down_for: int) -> None:
        self.down_for = down_for
        self.records: dict[str, dict[str, Any]] = {
            "65059681032": crm.HUBSPOT_CONTACT_RECORD, "444444444444": crm.META_LEAD_RECORD,
            f"leads/{crm.PIPEDRIVE_LEAD_ID}": crm.PIPEDRIVE_LEAD_RECORD, "persons/812": crm.PIPEDRIVE_PERSON_RECORD,
        }
        self.reads: list[tuple[str, int]] = []
        self.outcomes: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    async def outcome(self, request: Request) -> JSONResponse:
        body = await request.json()
        with self._lock:
            self.outcomes.append(body)
        return JSONResponse({"ok": True})

    async def hubspot(self, request: Request) -> JSONResponse:
        good = request.headers.get("authorization") == f"Bearer {HUBSPOT_TOKEN}"
        return self._answer(request, good, request.path_params["id"])

    async def pipedrive(self, request: Request) -> JSONResponse:
        good = request.query_params.get("api_token") == PIPEDRIVE_TOKEN
        kind, record_id = request.path_params["kind"], request.path_params["id"]
        return self._answer(request, good, f"{kind}/{record_id}")

    async def meta(self, request: Request) -> JSONResponse:
        good = request.query_params.get("access_token") == META_TOKEN
        return self._answer(request, good, request.path_params["id"])

    def _answer(self, request: Request, good_token: bool, record_id: str) -> JSONResponse:
        with self._lock:
            if len(self.reads) < self.down_for:
                status, body = 503, {"message": "service unavailable"}
            elif not good_token:
                status, body = 401, {"message": "authentication failed"}
            elif record_id in self.records:
                status, body = 200, self.records[record_id]
            else:
                status, body = 404, {"status": "error", "message": "resource not found", "category": "OBJECT_NOT_FOUND"}
            self.reads.append((request.url.path, status))
        return JSONResponse(body, status_code=status)

    def served(self, path: str) -> list[int]:
        with self._lock:
            return [status for seen, status in self.reads if seen == path]


@pytest.fixture
def crm_api() -> Iterator[tuple[CrmApi, str]]:
    api = CrmApi(down_for=3)
    app = Starlette(routes=[
        Route("/crm/v3/objects/contacts/{id}", api.hubspot, methods=["GET"]),
        Route("/v19.0/{id}", api.meta, methods=["GET"]),
        Route("/outcomes", api.outcome, methods=["POST"]),
        Route("/api/v1/{kind}/{id}", api.pipedrive, methods=["GET"]),
    ])
    with uvicorn_in_thread(app) as (host, port):
        yield api, f"http://{host}:{port}"


def routing_file(tmp_path: Path, base: str) -> str:
    path = tmp_path / "routing.toml"
    path.write_text(f"""
[[sources]]
name = "hubspot"
preset = "hubspot"
country_code = "+91"
auth = {{ scheme = "hubspot", secret_env = "HUBSPOT_SECRET", versions = ["v3"] }}
filter = {{ field = "subscriptionType", equals = "contact.creation" }}
outcome_url = "{base}/outcomes"
outcome_secret_env = "CRM_OUTCOME_SECRET"

[sources.fetch]
token_env = "HUBSPOT_TOKEN"
base_url = "{base}"

[[sources]]
name = "meta"
auth = {{ scheme = "meta", secret_env = "META_APP_SECRET", verify_token_env = "META_VERIFY_TOKEN" }}

[sources.fetch]
api = "meta"
token_env = "META_TOKEN"
base_url = "{base}"

[[sources]]
name = "pipedrive"
preset = "pipedrive"
country_code = "+91"
auth = {{ scheme = "basic", username = "pipedrive", secret_env = "PIPEDRIVE_PASSWORD" }}
fetch = {{ token_env = "PIPEDRIVE_TOKEN", base_url = "{base}" }}
""")
    return str(path)


@pytest.fixture
def stack(make_stack: Callable[..., Stack], tmp_path: Path, crm_api: tuple[CrmApi, str]) -> Stack:
    _, base = crm_api
    built = make_stack(ROUTER_ROUTING_FILE=routing_file(tmp_path, base), HUBSPOT_TOKEN=HUBSPOT_TOKEN,
                       META_TOKEN=META_TOKEN, HUBSPOT_SECRET=HUBSPOT_SECRET, META_APP_SECRET=META_APP_SECRET,
                       META_VERIFY_TOKEN="verify-me-42", PIPEDRIVE_TOKEN=PIPEDRIVE_TOKEN, PIPEDRIVE_PASSWORD="pd-pass",
                       CRM_OUTCOME_SECRET="whsec_" + base64.b64encode(b"fetch-outcome-secret").decode(),
                       ROUTER_FETCH_BACKOFF_BASE_SECONDS="0.2", ROUTER_FETCH_BACKOFF_MAX_SECONDS="0.5")
    built.start_sandbox("--no-calls")
    built.start_api()
    built.start_worker()
    return built


def post_hubspot(stack: Stack, events: list[dict[str, Any]]) -> Any:
    body = json.dumps(events).encode()
    url = f"{stack.api_url}/v1/sources/hubspot"
    stamp = int(time.time() * 1000)
    signature = sign_hubspot(version="v3", secret=HUBSPOT_SECRET, method="POST", url=url, body=body,
                             timestamp_ms=stamp)
    return stack.client.post(url, content=body, headers={
        "X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(stamp),
        "content-type": "application/json",
    })


def test_id_only_events_become_their_campaigns_once_the_crm_api_is_back(
    stack: Stack, crm_api: tuple[CrmApi, str]
) -> None:
    api, _ = crm_api
    taken = post_hubspot(stack, crm.HUBSPOT_APP_CREATION)
    assert taken.status_code == 202, taken.text
    assert taken.json()["leads"] == [{"id": "hubspot:65059681032", "status": "fetching", "duplicate": False,
                                      "updated": False}]
    record = stack.lead("hubspot:65059681032")
    assert record["number"] is None and record["fetch_status"] in ("waiting", "retrying", "fetched")
    # Meta subscribes the URL first (its verification request), then posts signed leadgen events
    check = {"hub.mode": "subscribe", "hub.verify_token": "verify-me-42", "hub.challenge": "1158201444"}
    subscribed = stack.client.get(f"{stack.api_url}/v1/sources/meta", params=check)
    assert (subscribed.status_code, subscribed.text) == (200, "1158201444")
    wrong = stack.client.get(f"{stack.api_url}/v1/sources/meta", params={**check, "hub.verify_token": "guess"})
    assert wrong.status_code == 403
    body = json.dumps(crm.META_LEADGEN).encode()
    unsigned = stack.client.post(f"{stack.api_url}/v1/sources/meta", content=body,
                                 headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    meta = stack.client.post(f"{stack.api_url}/v1/sources/meta", content=body, headers={
        "content-type": "application/json", "X-Hub-Signature-256": sign_meta(secret=META_APP_SECRET, body=body)})
    assert meta.status_code == 202 and meta.json()["leads"][0]["id"] == "meta:444444444444"
    # HubSpot sends its event again (at least once): answered with the lead's status, no second lead
    again = post_hubspot(stack, crm.HUBSPOT_APP_CREATION)
    assert again.status_code == 200 and again.json()["leads"][0]["duplicate"] is True

    wait_until(lambda: len(stack.campaigns()) >= 2, timeout=60, what="a campaign per id-only event")
    campaigns = {c["name"]: c["rows"][0]["number"] for c in stack.campaigns()}
    assert campaigns == {"hubspot:65059681032": "+919847033221", "meta:444444444444": "+919811122334"}
    hubspot = stack.wait_status("hubspot:65059681032", "posted")
    assert (hubspot["name"], hubspot["fields"]["email"], hubspot["fetch_status"]) == (
        "Nisha Pillai", "nisha@example.in", "fetched")
    assert stack.lead("meta:444444444444")["name"] == "Rahul Verma"
    # the API was down for three reads: each was tried again; once up, each record was read once
    statuses = api.served("/crm/v3/objects/contacts/65059681032") + api.served("/v19.0/444444444444")
    assert statuses.count(503) == 3 and statuses.count(200) == 2
    assert hubspot["fetch_attempts"] == len(api.served("/crm/v3/objects/contacts/65059681032"))
    fetched_at = next(entry["at"] for entry in hubspot["history"] if entry["event"] == "fetched")
    assert hubspot["assigned_at"] and fetched_at <= hubspot["assigned_at"]  # the agent is picked after the read

    late = post_hubspot(stack, crm.HUBSPOT_APP_CREATION)
    assert late.status_code == 200 and late.json()["leads"][0]["status"] == "posted"
    assert len(stack.campaigns()) == 2
    logs = stack.logs() + "".join(path.read_text() for path in stack.tmp.glob("*.log"))
    assert HUBSPOT_TOKEN not in logs and META_TOKEN not in logs and META_APP_SECRET not in logs


def test_a_pipedrive_lead_is_read_with_its_person_and_a_new_person_is_taken_at_once(
    stack: Stack, crm_api: tuple[CrmApi, str]
) -> None:
    api, _ = crm_api
    api.down_for = 0
    auth = {"Authorization": "Basic " + base64.b64encode(b"pipedrive:pd-pass").decode()}
    lead = stack.client.post(f"{stack.api_url}/v1/sources/pipedrive", json=crm.PIPEDRIVE_CREATE_LEAD, headers=auth)
    assert lead.status_code == 202 and lead.json()["leads"][0]["status"] == "fetching", lead.text
    person = stack.client.post(f"{stack.api_url}/v1/sources/pipedrive", json=crm.PIPEDRIVE_CREATE_PERSON,
                               headers=auth)
    assert person.status_code == 202 and person.json()["leads"][0]["status"] == "queued", person.text
    wait_until(lambda: len(stack.campaigns()) >= 2, timeout=60, what="both Pipedrive leads posted")
    campaigns = {c["name"]: c["rows"][0]["number"] for c in stack.campaigns()}
    assert campaigns == {f"pipedrive:{crm.PIPEDRIVE_LEAD_ID}": "+919986011223", "pipedrive:812": "+919986011223"}
    assert api.served(f"/api/v1/leads/{crm.PIPEDRIVE_LEAD_ID}") == [200]
    assert api.served("/api/v1/persons/812") == [200]
    assert PIPEDRIVE_TOKEN not in stack.logs()


def test_a_record_the_crm_does_not_have_is_dead_lettered_with_the_reason(
    stack: Stack, crm_api: tuple[CrmApi, str]
) -> None:
    api, _ = crm_api
    api.down_for = 0
    unknown = [{**crm.HUBSPOT_APP_CREATION[0], "objectId": 999, "eventId": 77}]
    assert post_hubspot(stack, unknown).status_code == 202
    record = stack.wait_status("hubspot:999", "dead", timeout=30)
    assert "404" in record["dead_reason"] and "/crm/v3/objects/contacts/999" in record["dead_reason"]
    assert record["fetch_status"] == "dead" and record["fetch_attempts"] == 1
    assert "fetch_dead" in [entry["event"] for entry in record["history"]]
    listed = subprocess.run(cli("dead", "list"), env=stack.env, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "hubspot:999" in listed.stdout and "404" in listed.stdout
    assert api.served("/crm/v3/objects/contacts/999") == [404]  # a refusal is not read again
    told = wait_until(lambda: api.outcomes or None, timeout=30, what="the CRM told the lead will not be called")
    assert [(body["type"], body["crm_id"]) for body in told] == [("lead.dead", "999")]
    assert "404" in told[0]["dead_reason"]
    assert stack.campaigns() == []
    assert HUBSPOT_TOKEN not in stack.logs()


def test_an_event_without_its_record_id_is_refused_and_nothing_is_kept(stack: Stack) -> None:
    event = {key: value for key, value in crm.HUBSPOT_APP_CREATION[0].items() if key != "objectId"}
    refused = post_hubspot(stack, [event])
    assert refused.status_code == 422 and "record id" in refused.json()["detail"]


def test_sources_test_shows_where_an_id_only_events_record_is_read_and_the_lead_it_makes(tmp_path: Path) -> None:
    env = {"ROUTER_ROUTING_FILE": routing_file(tmp_path, "https://api.hubapi.com"), "ROUTER_AGENTS": "alice",
           "CRM_OUTCOME_SECRET": "whsec_" + base64.b64encode(b"s").decode(), "HUBSPOT_TOKEN": HUBSPOT_TOKEN,
           "META_TOKEN": META_TOKEN, "HUBSPOT_SECRET": HUBSPOT_SECRET,
           "META_APP_SECRET": "s", "META_VERIFY_TOKEN": "v",
           "PIPEDRIVE_TOKEN": "p", "PIPEDRIVE_PASSWORD": "p", "PATH": "/usr/bin:/bin"}
    event, record = tmp_path / "event.json", tmp_path / "contact.json"
    event.write_text(json.dumps(crm.HUBSPOT_APP_CREATION))
    record.write_text(json.dumps(crm.HUBSPOT_CONTACT_RECORD))
    done = subprocess.run(cli("sources", "test", "hubspot", str(event), "--record", str(record)), env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (fetch,) = json.loads(done.stdout)["fetch"]
    assert fetch["id"] == "hubspot:65059681032"
    assert fetch["record_url"].startswith("https://api.hubapi.com/crm/v3/objects/contacts/65059681032?properties=")
    assert (fetch["lead"]["number"], fetch["lead"]["name"]) == ("+919847033221", "Nisha Pillai")
    assert HUBSPOT_TOKEN not in done.stdout + done.stderr

    record.write_text(json.dumps({"id": "65059681032", "properties": {"firstname": "Nisha"}}))
    done = subprocess.run(cli("sources", "test", "hubspot", str(event), "--record", str(record)), env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "refused: the record: no phone number" in done.stderr
