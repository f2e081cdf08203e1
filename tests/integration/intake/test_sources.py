"""CRM sources over real HTTP: each preset's documented payload through the API and a worker to the sandbox.

One deployment per test: the sandbox, the API and a worker, with a routing file declaring one source per CRM.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from router.intake.sources.auth import sign_hubspot
from tests.fixtures import crm
from tests.harness import ROOT, Stack, cli, wait_until

SECRETS = {
    "LSQ_TOKEN": "lsq-token-0c8f1e", "HUBSPOT_SECRET": "hs-client-secret-77", "ZOHO_TOKEN": "zoho-token-5a1d",
    "PIPEDRIVE_PASSWORD": "pd-pass-3e9b", "WEB_SECRET": "web-secret-b4c2",
}
ROUTING = f"""
[[sources]]
name = "lsq"
preset = "leadsquared"
country_code = "+91"
auth = {{ scheme = "token", header = "x-api-key", secret_env = "LSQ_TOKEN" }}

[[sources]]
name = "hubspot"
preset = "hubspot"
country_code = "+91"
auth = {{ scheme = "hubspot", secret_env = "HUBSPOT_SECRET" }}

[[sources]]
name = "zoho"
preset = "zoho"
country_code = "+91"
number_format = "national"
auth = {{ scheme = "token", query = "token", secret_env = "ZOHO_TOKEN" }}

[[sources]]
name = "salesforce"
preset = "salesforce"
country_code = "+91"
auth = {{ scheme = "salesforce", organization_id = "{crm.SALESFORCE_ORG}" }}

[[sources]]
name = "pipedrive"
preset = "pipedrive"
country_code = "+91"
auth = {{ scheme = "basic", username = "pipedrive", secret_env = "PIPEDRIVE_PASSWORD" }}

[[sources]]
name = "web"
preset = "generic"
country_code = "+91"
auth = {{ scheme = "standard_webhooks", secret_env = "WEB_SECRET" }}
agent = {{ field = "owner", map = {{ "asha@acme.in" = "bob" }} }}
"""


@pytest.fixture
def crm_stack(make_stack: Callable[..., Stack], tmp_path: Path) -> Stack:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    stack = make_stack(ROUTER_ROUTING_FILE=str(routing), **SECRETS)
    stack.start_sandbox("--no-calls")
    stack.start_api()
    stack.start_worker()
    return stack


def url(stack: Stack, name: str, query: str = "") -> str:
    return f"{stack.api_url}/v1/sources/{name}{query}"


def hubspot_v3(stack: Stack, body: bytes, *, age_seconds: float = 0) -> dict[str, str]:
    stamp = int((time.time() - age_seconds) * 1000)
    signature = sign_hubspot(version="v3", secret=SECRETS["HUBSPOT_SECRET"], method="POST",
                             url=url(stack, "hubspot"), body=body, timestamp_ms=stamp)
    return {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(stamp),
            "content-type": "application/json"}


def standard(body: bytes, msg_id: str) -> dict[str, str]:
    from router.api.signatures import sign_standard

    stamp = int(time.time())
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "content-type": "application/json",
            "webhook-signature": sign_standard(secret=SECRETS["WEB_SECRET"].encode(), msg_id=msg_id,
                                               timestamp=stamp, body=body)}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def lsq_form(record: dict[str, Any]) -> bytes:
    from urllib.parse import urlencode

    return urlencode({k: "" if v is None else v for k, v in record.items()}).encode()


def post_every_preset(stack: Stack) -> dict[str, httpx.Response]:
    post = stack.client.post
    lsq = {"x-api-key": SECRETS["LSQ_TOKEN"]}
    lsq_form_lead = {**crm.LEADSQUARED_CREATE, "ProspectID": "form-0001", "Mobile": "9876500001"}
    lsq_text_lead = {**crm.LEADSQUARED_CREATE, "ProspectID": "text-0001", "Mobile": "9876500002"}
    hubspot_body = json.dumps(crm.HUBSPOT_WORKFLOW_CONTACT).encode()
    web_body = json.dumps(crm.GENERIC_LEAD).encode()
    return {
        "lsq-json": post(url(stack, "lsq"), json=crm.LEADSQUARED_CREATE, headers=lsq),
        "lsq-form": post(url(stack, "lsq"), content=lsq_form(lsq_form_lead),
                         headers={**lsq, "content-type": "application/x-www-form-urlencoded"}),
        "lsq-text": post(url(stack, "lsq"), content=json.dumps(lsq_text_lead).encode(),
                         headers={**lsq, "content-type": "text/plain; charset=utf-8"}),
        "hubspot": post(url(stack, "hubspot"), content=hubspot_body, headers=hubspot_v3(stack, hubspot_body)),
        "zoho": post(url(stack, "zoho", f"?token={SECRETS['ZOHO_TOKEN']}"), content=crm.ZOHO_FORM,
                     headers={"content-type": "application/x-www-form-urlencoded"}),
        "zoho-multipart": post(url(stack, "zoho", f"?token={SECRETS['ZOHO_TOKEN']}"),
                               files={"id": (None, "4876876000000624002"), "Mobile": (None, "98450 98451"),
                                      "First_Name": (None, "Sita")}),
        "salesforce": post(url(stack, "salesforce"), content=crm.SALESFORCE_TWO_LEADS,
                           headers={"content-type": "text/xml; charset=utf-8", "SOAPAction": '""'}),
        "pipedrive": post(url(stack, "pipedrive"), json=crm.PIPEDRIVE_CREATE_PERSON,
                          headers=basic("pipedrive", SECRETS["PIPEDRIVE_PASSWORD"])),
        "web": post(url(stack, "web"), content=web_body, headers=standard(web_body, "msg_web_1")),
    }


EXPECTED = {  # campaign name (the lead id) → the number Ryng is asked to call
    "lsq:5d0b6b8e-7d3b-11ee-b962-0242ac120002": "+919876543210",
    "lsq:form-0001": "+919876500001",
    "lsq:text-0001": "+919876500002",
    "hubspot:3234574": "+919845012345",
    "zoho:4876876000000624001": "9845098450",
    "zoho:4876876000000624002": "9845098451",
    "salesforce:00Q5g00000AbCdEEAZ": "+919900123456",
    "salesforce:00Q5g00000AbCdFEAZ": "+913324567890",
    "pipedrive:812": "+919986011223",
    "web:web-7781": "+919886055443",
}


def test_each_presets_payload_becomes_its_lead_and_campaign(crm_stack: Stack) -> None:
    stack = crm_stack
    answers = post_every_preset(stack)
    for name, response in answers.items():
        assert response.status_code in (200, 202), (name, response.status_code, response.text)
    assert answers["lsq-json"].json()["Status"] == "Success"
    assert answers["salesforce"].headers["content-type"].startswith("text/xml")
    assert "<Ack>true</Ack>" in answers["salesforce"].text
    assert answers["hubspot"].status_code == 202
    assert answers["hubspot"].json()["leads"] == [
        {"id": "hubspot:3234574", "status": "queued", "duplicate": False, "updated": False}
    ]

    wait_until(lambda: len(stack.campaigns()) >= len(EXPECTED), timeout=60, what="one campaign per lead")
    campaigns = {c["name"]: c for c in stack.campaigns()}
    assert {name: c["rows"][0]["number"] for name, c in campaigns.items()} == EXPECTED
    assert campaigns["web:web-7781"]["agents"] == ["bob"]  # the owner mapped to an agent
    record = stack.lead("lsq:5d0b6b8e-7d3b-11ee-b962-0242ac120002")
    assert (record["source"], record["name"]) == ("lsq", "Asha Menon")
    assert record["fields"]["mx_Product"] == "Life Insurance"
    assert stack.lead("salesforce:00Q5g00000AbCdFEAZ")["name"] == "Arjun Das"


def test_resends_updates_and_filtered_events_make_no_second_campaign(crm_stack: Stack) -> None:
    stack = crm_stack
    lsq = {"x-api-key": SECRETS["LSQ_TOKEN"]}
    lead_id = "lsq:5d0b6b8e-7d3b-11ee-b962-0242ac120002"
    first = stack.client.post(url(stack, "lsq"), json=crm.LEADSQUARED_CREATE, headers=lsq)
    assert first.status_code == 202, first.text
    again = stack.client.post(url(stack, "lsq"), json=crm.LEADSQUARED_CREATE, headers=lsq)
    assert again.status_code == 200 and again.json()["leads"][0]["duplicate"] is True
    update = stack.client.post(url(stack, "lsq"), json=crm.LEADSQUARED_UPDATE, headers=lsq)
    assert update.status_code == 200, update.text
    assert update.json()["leads"][0]["updated"] is True

    auth = basic("pipedrive", SECRETS["PIPEDRIVE_PASSWORD"])
    created = stack.client.post(url(stack, "pipedrive"), json=crm.PIPEDRIVE_CREATE_PERSON, headers=auth)
    assert created.status_code == 202, created.text
    changed = stack.client.post(url(stack, "pipedrive"), json=crm.PIPEDRIVE_CHANGE_PERSON, headers=auth)
    assert changed.status_code == 200 and changed.json() == {"source": "pipedrive", "leads": [], "ignored": 1}

    stack.wait_status(lead_id, "posted", timeout=30)
    stack.wait_status("pipedrive:812", "posted", timeout=30)
    # a late retry of the creation webhook, after delivery, is still one campaign
    late = stack.client.post(url(stack, "pipedrive"), json=crm.PIPEDRIVE_CREATE_PERSON, headers=auth)
    assert late.status_code == 200 and late.json()["leads"][0]["status"] == "posted"
    assert sorted(c["name"] for c in stack.campaigns()) == [lead_id, "pipedrive:812"]
    assert stack.lead(lead_id)["updates"] == 1
    history = stack.lead(lead_id)["history"]
    updates = [entry for entry in history if entry["event"] == "updated"]
    assert len(updates) == 1 and updates[0]["changed"] == ["fields"]
    metrics = stack.client.get(f"{stack.api_url}/metrics").text
    assert 'lead_router_events_total{kind="source_ignored:pipedrive"} 1.0' in metrics


def test_auth_matrix_and_bad_bodies_over_http(crm_stack: Stack) -> None:
    stack = crm_stack
    post = stack.client.post
    hubspot_body = json.dumps(crm.HUBSPOT_WORKFLOW_CONTACT).encode()
    good = hubspot_v3(stack, hubspot_body)
    cases: list[tuple[str, httpx.Response, int]] = [
        ("hubspot missing", post(url(stack, "hubspot"), content=hubspot_body,
                                 headers={"content-type": "application/json"}), 401),
        ("hubspot tampered", post(url(stack, "hubspot"), content=hubspot_body.replace(b"Meera", b"Mira"),
                                  headers=good), 401),
        ("hubspot stale", post(url(stack, "hubspot"), content=hubspot_body,
                               headers=hubspot_v3(stack, hubspot_body, age_seconds=600)), 401),
        ("lsq missing", post(url(stack, "lsq"), json=crm.LEADSQUARED_CREATE), 401),
        ("lsq wrong", post(url(stack, "lsq"), json=crm.LEADSQUARED_CREATE, headers={"x-api-key": "guess"}), 401),
        ("zoho token in a header, not the URL", post(url(stack, "zoho"), content=crm.ZOHO_FORM, headers={
            "content-type": "application/x-www-form-urlencoded", "token": SECRETS["ZOHO_TOKEN"]}), 401),
        ("pipedrive wrong password", post(url(stack, "pipedrive"), json=crm.PIPEDRIVE_CREATE_PERSON,
                                          headers=basic("pipedrive", "nope")), 401),
        ("web unsigned", post(url(stack, "web"), json=crm.GENERIC_LEAD), 401),
        ("salesforce other org", post(url(stack, "salesforce"), headers={"content-type": "text/xml"},
                                      content=crm.SALESFORCE_TWO_LEADS.replace(b"00D5g000004ABCDEAA",
                                                                               b"00D5g000004ZZZZEAA")), 401),
        ("unknown source", post(url(stack, "nope"), json={}), 404),
        ("salesforce bomb", post(url(stack, "salesforce"), content=crm.XML_BOMB,
                                 headers={"content-type": "text/xml"}), 400),
        ("salesforce xxe", post(url(stack, "salesforce"), content=crm.XML_EXTERNAL_ENTITY,
                                headers={"content-type": "text/xml"}), 400),
        ("salesforce malformed", post(url(stack, "salesforce"), content=b"<soapenv:Envelope",
                                      headers={"content-type": "text/xml"}), 400),
        ("web malformed json", post(url(stack, "zoho", f"?token={SECRETS['ZOHO_TOKEN']}"), content=b'{"id":',
                                    headers={"content-type": "application/json"}), 422),
        ("zoho malformed form", post(url(stack, "zoho", f"?token={SECRETS['ZOHO_TOKEN']}"), content=b"\xff=\xfe",
                                     headers={"content-type": "application/x-www-form-urlencoded"}), 422),
        ("zoho text/plain not json", post(url(stack, "zoho", f"?token={SECRETS['ZOHO_TOKEN']}"), content=b"hi",
                                          headers={"content-type": "text/plain"}), 422),
        ("zoho no phone", post(url(stack, "zoho", f"?token={SECRETS['ZOHO_TOKEN']}"), data={"id": "9"}), 422),
        ("zoho file upload", post(url(stack, "zoho", f"?token={SECRETS['ZOHO_TOKEN']}"),
                                  files={"id": ("a.txt", b"1")}), 422),
        ("zoho png", post(url(stack, "zoho", f"?token={SECRETS['ZOHO_TOKEN']}"), content=b"\x89PNG",
                          headers={"content-type": "image/png"}), 415),
    ]
    for name, response, expected in cases:
        assert response.status_code == expected, (name, response.status_code, response.text)
        if expected == 422:
            assert response.json()["detail"], name
    no_phone = next(response for name, response, _ in cases if name == "zoho no phone")
    assert "tried 'Mobile', 'Phone'" in no_phone.json()["detail"]
    bomb = next(response for name, response, _ in cases if name == "salesforce bomb")
    assert "soapenv:Client" in bomb.text and "DTDForbidden" in bomb.text

    # LeadSquared: a refused payload is a 200 with an error body (error statuses can disable its webhook)
    refused = post(url(stack, "lsq"), json={"ProspectID": "x"}, headers={"x-api-key": SECRETS["LSQ_TOKEN"]})
    assert refused.status_code == 200 and refused.json()["Status"] == "Error"
    assert "no phone number" in refused.json()["StatusReason"]
    assert stack.client.head(url(stack, "lsq")).status_code == 200

    assert stack.campaigns() == []
    for secret in SECRETS.values():
        assert secret not in stack.logs()


def test_sources_test_prints_the_lead_or_why_not(tmp_path: Path) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    env = {"ROUTER_ROUTING_FILE": str(routing), "ROUTER_AGENTS": "alice,bob", **SECRETS, "PATH": "/usr/bin:/bin"}
    sample = tmp_path / "hubspot.json"
    sample.write_text(json.dumps(crm.HUBSPOT_WORKFLOW_CONTACT))
    done = subprocess.run(cli("sources", "test", "hubspot", str(sample)), env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["leads"][0]["id"] == "hubspot:3234574" and printed["leads"][0]["number"] == "+919845012345"

    soap = tmp_path / "sf.xml"
    soap.write_bytes(crm.SALESFORCE_TWO_LEADS)
    done = subprocess.run(cli("sources", "test", "salesforce", str(soap)), env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert [lead["name"] for lead in json.loads(done.stdout)["leads"]] == ["Priya Nair", "Arjun Das"]

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"ProspectID": "x", "Phone": None}))
    done = subprocess.run(cli("sources", "test", "lsq", str(bad)), env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and "refused: no phone number: tried 'Mobile', 'Phone'" in done.stderr


def test_sources_follow_the_routing_file_while_running(crm_stack: Stack) -> None:
    stack = crm_stack
    routing = Path(stack.settings["ROUTER_ROUTING_FILE"])
    assert stack.client.post(url(stack, "typeform"), json={}).status_code == 404
    routing.write_text(ROUTING + '\n[[sources]]\nname = "typeform"\nauth = "none"\nphone = ["answers.phone"]\n')
    wait_until(lambda: stack.client.post(url(stack, "typeform"), json={}).status_code == 422, timeout=30,
               what="the new source to be served")
    taken = stack.client.post(url(stack, "typeform"), json={"id": "tf1", "answers": {"phone": "998314242"}})
    assert taken.status_code == 202, taken.text
    routing.write_text(ROUTING + '\n[[sources]]\nname = "typeform"\n')  # no auth: refused, the old file stays
    wait_until(lambda: "routing_reload_rejected" in stack.logs(), timeout=30, what="the bad file refused")
    again = stack.client.post(url(stack, "typeform"), json={"id": "tf2", "answers": {"phone": "998314243"}})
    assert again.status_code == 202, again.text
    assert "sources.6.auth: Field required" in stack.logs()


def test_an_outage_is_a_503_for_every_crm_and_a_soap_fault_for_salesforce(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    from tests.harness import free_port

    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    stack = make_stack(ROUTER_ROUTING_FILE=str(routing), REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", **SECRETS)
    stack.start_api()
    soap = stack.client.post(url(stack, "salesforce"), content=crm.SALESFORCE_TWO_LEADS,
                             headers={"content-type": "text/xml"})
    assert soap.status_code == 503 and "soapenv:Server" in soap.text and "<Ack>" not in soap.text
    lsq = stack.client.post(url(stack, "lsq"), json=crm.LEADSQUARED_CREATE, headers={"x-api-key": SECRETS["LSQ_TOKEN"]})
    assert lsq.status_code == 503 and "Redis" in lsq.json()["detail"]
