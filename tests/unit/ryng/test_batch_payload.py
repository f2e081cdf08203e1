"""A batch as one campaign: the inline JSON body, the CSV with an agent column, and the sandbox reading both."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from router.sandbox import SandboxOptions, create_sandbox_app
from tests.harness import uvicorn_in_thread
from workers.ryng.client import Outcome, RyngClient
from workers.ryng.payload import BatchRequest, CampaignRequest, build_batch_csv, build_batch_json_body

TOKEN = "batch-token"


def row(lead_id: str, agent: str, number: str, **fields: str) -> CampaignRequest:
    return CampaignRequest(
        lead_id=lead_id, name=lead_id, number=number, agent=agent, agent_id=None, fields=fields,
        field_slots={"Product": 3}, lead_id_slot=8, terminal_callback_url="https://router.example/cb/terminal",
    )


BATCH = BatchRequest(name="batch-1", rows=(
    row("L-1", "alice", "+919800000001", Name="James", Product="Life"),
    row("L-2", "bob", "+919800000002", Name="Philip"),
    row("L-3", "alice", "+919800000003", Ref="XT250"),
))


def test_json_body_names_each_rows_agent_and_lead_id_in_one_shared_layout() -> None:
    body, dropped = build_batch_json_body(BATCH)
    data = json.loads(json.dumps(body))
    assert data["agentMapping"] == "inline" and "agents" not in data and data["name"] == "batch-1"
    # The union of the rows' field names, Product in its fixed slot, the lead id in slot 8.
    assert data["customFieldNames"] == {"customField1Name": "Name", "customField2Name": "Ref",
                                        "customField3Name": "Product", "customField8Name": "LeadId"}
    rows = data["customerData"]["jsonData"]
    assert [r["agentsAssigned"] for r in rows] == [["alice"], ["bob"], ["alice"]]
    assert [r["customField8"] for r in rows] == ["L-1", "L-2", "L-3"]
    assert rows[0] == {"number": "+919800000001", "agentsAssigned": ["alice"], "customField1": "James",
                       "customField3": "Life", "customField8": "L-1"}
    assert rows[2] == {"number": "+919800000003", "agentsAssigned": ["alice"], "customField2": "XT250",
                       "customField8": "L-3"}
    assert data["customerData"]["terminalCallbackUrl"] == "https://router.example/cb/terminal"
    assert dropped == []


def test_fields_beyond_the_free_slots_of_the_shared_layout_are_reported_dropped() -> None:
    many = {f"F{i}": str(i) for i in range(8)}
    batch = BatchRequest(name="b", rows=(row("L-1", "alice", "+919800000001", **many),
                                         row("L-2", "bob", "+919800000002", Extra="x")))
    body, dropped = build_batch_json_body(batch)
    assert len(body["customFieldNames"]) == 8 and dropped  # 7 free slots + LeadId; the rest reported
    assert set(dropped) <= {*many, "Extra"}


def test_csv_has_an_agent_column_and_one_row_per_lead() -> None:
    sheet, _ = build_batch_csv(BATCH)
    lines = list(csv.reader(io.StringIO(sheet.decode())))
    assert lines[0] == ["number", "agentsAssigned", "Name", "Ref", "Product", "LeadId"]
    assert lines[1:] == [["+919800000001", "alice", "James", "", "Life", "L-1"],
                         ["+919800000002", "bob", "Philip", "", "", "L-2"],
                         ["+919800000003", "alice", "", "XT250", "", "L-3"]]


def test_a_batch_needs_leads_each_with_an_agent() -> None:
    with pytest.raises(ValueError):
        BatchRequest(name="b", rows=())
    with pytest.raises(ValueError):
        BatchRequest(name="b", rows=(row("L-1", "", "+919800000001"),))


@pytest.mark.parametrize("body_format", ["json", "form"])
def test_the_client_sends_the_batch_as_one_request(body_format: Any) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return httpx.Response(200, json={"error": False, "message": "Processing Campaign...", "data": {}})

    with RyngClient(base_url="https://acme.ryng.in/rest-api/v1", token=TOKEN, body_format=body_format,
                    transport=httpx.MockTransport(handler)) as client:
        result = client.create_campaign(BATCH)
    assert result.outcome == Outcome.ACCEPTED and len(seen) == 1
    text = seen[0].content.decode()
    if body_format == "json":
        assert json.loads(text)["agentMapping"] == "inline"
    else:
        assert 'name="agents"\r\n\r\nin-file' in text and 'filename="batch-1.csv"' in text
        assert "agentsAssigned" in text and "L-3" in text


@pytest.mark.parametrize("body_format", ["json", "form"])
def test_the_sandbox_gives_each_row_its_own_agent_and_lead_id(body_format: Any) -> None:
    app = create_sandbox_app(SandboxOptions(token=TOKEN, simulate_calls=False,
                                            agents={"alice": 10, "bob": 20, "carol": 30}))
    with uvicorn_in_thread(app) as (host, port), RyngClient(
        base_url=f"http://{host}:{port}/rest-api/v1", token=TOKEN, body_format=body_format
    ) as client:
        result = client.create_campaign(BATCH)
        campaigns = httpx.get(f"http://{host}:{port}/_sandbox/campaigns").json()
    assert result.outcome == Outcome.ACCEPTED, result.message
    assert len(campaigns) == 1 and campaigns[0]["agent_mapping"] == "inline"
    rows = campaigns[0]["rows"]
    assert [(r["agent"], r["fields"]["LeadId"]) for r in rows] == [("alice", "L-1"), ("bob", "L-2"), ("alice", "L-3")]
