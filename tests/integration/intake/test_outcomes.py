"""Outcomes back to the CRM over real HTTP: sandbox calls → Ryng's terminal callback → API → worker → the CRM.

The CRM is a stand-in HTTP server in the test process that is down (503) for its first requests, then up.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.harness import ROOT, Stack, cli, uvicorn_in_thread, wait_until

SECRET = "whsec_" + base64.b64encode(b"crm-outcome-secret-42").decode()


class StandIn:
    """The CRM's inbound endpoint: 503 for the first `down_for` requests, then 200; keeps what it got."""

    def __init__(self, down_for: int) -> None:
        self.down_for = down_for
        self.received: list[tuple[int, dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.body()
        with self._lock:
            status = 503 if len(self.received) < self.down_for else 200
            self.received.append((status, dict(request.headers), body))
        return JSONResponse({"ok": status == 200}, status_code=status)

    def delivered(self) -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for status, _, body in self.received if status == 200]


def routing_file(tmp_path: Path, hook: str) -> str:
    """A routing file with one generic source whose outcomes go to `hook`."""
    path = tmp_path / "routing.toml"
    path.write_text(f"""
[[sources]]
name = "web"
auth = "none"
outcome_url = "{hook}"
outcome_secret_env = "CRM_OUTCOME_SECRET"
""")
    return str(path)


@pytest.fixture
def crm() -> Iterator[tuple[StandIn, str]]:
    stand_in = StandIn(down_for=3)
    app = Starlette(routes=[Route("/calls", stand_in.hook, methods=["POST"])])
    with uvicorn_in_thread(app) as (host, port):
        yield stand_in, f"http://{host}:{port}/calls"


def test_outcomes_reach_the_crm_once_after_it_comes_back(
    make_stack: Callable[..., Stack], tmp_path: Path, crm: tuple[StandIn, str]
) -> None:
    stand_in, hook = crm
    stack = make_stack(ROUTER_ROUTING_FILE=routing_file(tmp_path, hook), CRM_OUTCOME_SECRET=SECRET,
                       ROUTER_OUTCOME_BACKOFF_BASE_SECONDS="0.2", ROUTER_OUTCOME_BACKOFF_MAX_SECONDS="0.5")
    stack.start_sandbox("--call-delay", "0.2")
    stack.start_api()
    stack.start_worker()

    for n in (1, 2):
        taken = stack.client.post(f"{stack.api_url}/v1/sources/web", json={"id": f"c{n}", "phone": f"99831424{n}"})
        assert taken.status_code == 202, taken.text
    stack.wait_status("web:c1", "posted", "connected", "completed")
    stack.wait_status("web:c2", "posted", "connected", "completed")
    stack.faults(fail_next=1, fail_status=400)  # Ryng refuses the next lead: dead, and the CRM is told
    assert stack.client.post(f"{stack.api_url}/v1/sources/web", json={"id": "d1", "phone": "998314249"}).status_code \
        == 202

    delivered = wait_until(lambda: (lambda got: got if len(got) >= 3 else None)(stand_in.delivered()), timeout=60,
                           what="three outcomes delivered")
    by_lead = {body["lead_id"]: body for body in delivered}
    assert sorted(by_lead) == ["web:c1", "web:c2", "web:d1"] and len(delivered) == 3  # once each
    for lead_id in ("web:c1", "web:c2"):
        record = stack.wait_status(lead_id, "completed")
        body = by_lead[lead_id]
        assert (body["type"], body["crm_id"], body["source"]) == ("lead.completed", lead_id[4:], "web")
        assert body["disposition"] == record["disposition"] and body["agent"] in ("alice", "bob")
        assert body["recording_url"] and body["call_started"] and body["talktime"]
    assert by_lead["web:d1"]["type"] == "lead.dead" and "400" in by_lead["web:d1"]["dead_reason"]
    assert stack.lead("web:d1")["outcome_status"] == "delivered"

    failures = [entry for entry in stand_in.received if entry[0] == 503]
    assert len(failures) == 3  # the CRM was down: each of those was tried again
    for _status, headers, body in stand_in.received:
        Webhook(SECRET).verify(body, headers)  # raises unless signed with the source's secret
    record = wait_until(lambda: (lambda r: r if r["outcome_status"] == "delivered" else None)(stack.lead("web:c1")),
                        timeout=30, what="the record to say delivered")
    assert "outcome_delivered" in [entry["event"] for entry in record["history"]]
    assert SECRET not in stack.logs()
    metrics = stack.client.get(f"{stack.api_url}/metrics").text
    assert 'lead_router_outcome_deliveries_total{result="delivered"} 3.0' in metrics
    assert 'lead_router_outcome_deliveries_total{result="retrying"} 3.0' in metrics  # the three 503s
    assert 'lead_router_ryng_request_duration_seconds_count{outcome="rejected"} 1.0' in metrics


def test_an_outcome_the_crm_refuses_is_a_dead_outcome_listed_by_the_cli(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    async def refuse(request: Request) -> JSONResponse:
        return JSONResponse({"error": "unknown lead"}, status_code=404)

    with uvicorn_in_thread(Starlette(routes=[Route("/calls", refuse, methods=["POST"])])) as (host, port):
        routing = routing_file(tmp_path, f"http://{host}:{port}/calls")
        stack = make_stack(ROUTER_ROUTING_FILE=routing, CRM_OUTCOME_SECRET=SECRET)
        stack.start_sandbox("--call-delay", "0.2")
        stack.start_api()
        stack.start_worker()
        assert stack.client.post(f"{stack.api_url}/v1/sources/web",
                                 json={"id": "r1", "phone": "998314240"}).status_code == 202
        record = wait_until(lambda: (lambda r: r if r.get("outcome_status") == "dead" else None)(stack.lead("web:r1")),
                            timeout=60, what="the outcome dead-lettered")
        assert record["status"] == "completed"
        done = subprocess.run(cli("dead", "outcomes"), env=stack.env, cwd=ROOT, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert "web:r1" in done.stdout and "404" in done.stdout
        metrics = stack.client.get(f"{stack.api_url}/metrics").text
        assert 'lead_router_outcome_deliveries_total{result="dead"} 1.0' in metrics
