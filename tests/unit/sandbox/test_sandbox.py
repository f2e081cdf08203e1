"""The Ryng sandbox's Create Campaign emulation: auth, bodies, Ryng's assignment quirk, rate limit, faults."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from router.cli.sandbox import sandbox
from router.sandbox import SandboxOptions, create_sandbox_app, parse_agents

TOKEN = "t0ken"
PATH = "/rest-api/v1/campaign"
HEADERS = {"x-access-token": TOKEN}
ACCEPTED = {"error": False, "message": "Processing Campaign...", "data": {}}
ROOT = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.anyio

MakeClient = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Build sandbox apps (with their lifespan) and httpx clients talking to them in-process."""
    async with contextlib.AsyncExitStack() as stack:

        async def factory(**options: Any) -> httpx.AsyncClient:
            options.setdefault("simulate_calls", False)
            app = create_sandbox_app(SandboxOptions(token=TOKEN, **options))
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://sb")
            )

        yield factory


def body(*numbers: str, **extra: Any) -> dict[str, Any]:
    rows = [{"number": n, "customField1": f"name-{n}", "customField8": f"lead-{n}"} for n in numbers]
    return {
        "name": "lead-1",
        "customFieldNames": {"customField1Name": "Name", "customField8Name": "LeadId"},
        "customerData": {"jsonData": rows},
        **extra,
    }


async def assigned(client: httpx.AsyncClient) -> list[list[str]]:
    return [[row["agent"] for row in c["rows"]] for c in (await client.get("/_sandbox/campaigns")).json()]


@pytest.mark.parametrize(
    "headers", [{}, {"x-access-token": "wrong"}, {"x-access-key": TOKEN}], ids=["missing", "wrong", "typo"]
)
async def test_bad_token_is_403_with_ryngs_body(make_client: MakeClient, headers: dict[str, str]) -> None:
    client = await make_client()
    response = await client.post(PATH, json=body("+919876543210"), headers=headers)
    assert response.status_code == 403
    assert response.json() == {"error": True, "message": "Unauthorized Token"}
    assert (await client.get("/_sandbox/campaigns")).json() == []
    assert (await client.get("/_sandbox/stats")).json()["by_status"] == {"403": 1}


async def test_json_campaign_is_accepted_and_recorded(make_client: MakeClient) -> None:
    client = await make_client()
    payload = body(
        "+919876543210",
        agentMapping="global",
        agents=["bob"],
    )
    payload["customerData"] |= {
        "connectCallbackUrl": "http://crm.test/connect",
        "terminalCallbackUrl": "http://crm.test/terminal",
    }
    response = await client.post(PATH, json=payload, headers=HEADERS)
    assert response.status_code == 200
    assert response.json() == ACCEPTED
    [campaign] = (await client.get("/_sandbox/campaigns")).json()
    assert campaign["id"] == 1
    assert campaign["name"] == "lead-1"
    assert campaign["body_format"] == "json"
    assert campaign["agent_mapping"] == "global"
    assert campaign["agents"] == ["bob"]
    assert campaign["connect_callback_url"] == "http://crm.test/connect"
    assert campaign["terminal_callback_url"] == "http://crm.test/terminal"
    assert campaign["received_at"].endswith("Z")
    [row] = campaign["rows"]
    assert row["number"] == "+919876543210"
    assert (row["agent"], row["agent_id"]) == ("bob", 20)
    assert row["custom_fields"] == {
        "customField1": "name-+919876543210",
        "customField8": "lead-+919876543210",
    }
    assert row["fields"] == {"Name": "name-+919876543210", "LeadId": "lead-+919876543210"}
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["accepted"] == 1
    assert stats["by_status"] == {"200": 1}
    assert stats["assigned_by_agent"] == {"bob": 1}


async def test_unnamed_campaign_gets_ryngs_default_name(make_client: MakeClient) -> None:
    client = await make_client()
    payload = body("+919876543210")
    del payload["name"]
    assert (await client.post(PATH, json=payload, headers=HEADERS)).status_code == 200
    assert (await client.get("/_sandbox/campaigns")).json()[0]["name"] == "campaign::1"


@pytest.mark.parametrize("extra", [{}, {"agentMapping": "all-agents"}, {"agents": ["bob"]}])
async def test_single_lead_campaigns_without_global_mapping_all_reach_the_first_agent(
    make_client: MakeClient, extra: dict[str, Any]
) -> None:
    """The case study's bug: Ryng round-robins only within a campaign."""
    client = await make_client(agents={"carol": 30, "alice": 10, "bob": 20})
    for n in range(4):
        assert (
            await client.post(PATH, json=body(f"+91987654321{n}", **extra), headers=HEADERS)
        ).status_code == 200
    assert await assigned(client) == [["carol"]] * 4


async def test_multi_row_campaigns_round_robin_within_the_campaign_only(make_client: MakeClient) -> None:
    client = await make_client()
    rows = ("+911111111", "+912222222", "+913333333")
    await client.post(PATH, json=body(*rows), headers=HEADERS)
    await client.post(PATH, json=body(*rows, agentMapping="global", agents=["bob", "alice"]), headers=HEADERS)
    assert await assigned(client) == [["alice", "bob", "alice"], ["bob", "alice", "bob"]]


async def test_global_mapping_follows_the_named_agent_across_campaigns(make_client: MakeClient) -> None:
    client = await make_client()
    for agent in ("alice", "bob", "bob", "alice"):
        payload = body("+919876543210", agentMapping="global", agents=[agent])
        assert (await client.post(PATH, json=payload, headers=HEADERS)).status_code == 200
    assert await assigned(client) == [["alice"], ["bob"], ["bob"], ["alice"]]


async def test_inline_mapping_uses_each_rows_agents_and_falls_back_to_all(make_client: MakeClient) -> None:
    client = await make_client()
    payload = body("+911111111", "+912222222", agentMapping="inline")
    payload["customerData"]["jsonData"][0]["agentsAssigned"] = ["bob"]
    assert (await client.post(PATH, json=payload, headers=HEADERS)).status_code == 200
    assert await assigned(client) == [["bob", "bob"]]  # row 1: all agents, index 1 -> bob


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([1, 2], "must be a JSON object"),
        (body("+919876543210", agentMapping="global"), "agents is required"),
        (body("+919876543210", agentMapping="implicit", agents=["alice"]), "agentMapping"),
        (body("+919876543210", agentMapping="global", agents=["mallory"]), "Agent not found: mallory"),
        (body("+919876543210", agents="alice"), "agents must be an array"),
        ({"name": "x"}, "customerData is required"),
        ({"customerData": {"jsonData": []}}, "jsonData must be a non-empty array"),
        ({"customerData": {"jsonData": [{"customField1": "x"}]}}, "jsonData[0].number: number is required"),
        ({"customerData": {"jsonData": [{"number": "call me"}]}}, "invalid number"),
        ({"customerData": {"jsonData": [{"number": "+9112345", "customField9": "x"}]}}, "customField8 exist"),
        ({"customFieldNames": {"Name": "x"}, "customerData": {"jsonData": [{"number": "12345"}]}}, "bad key"),
        (
            {"customerData": {"jsonData": [{"number": "12345"}], "terminalCallbackUrl": "ftp://x"}},
            "terminalCallbackUrl must be an http(s) URL",
        ),
    ],
)
async def test_invalid_json_bodies_are_400_and_not_recorded(
    make_client: MakeClient, payload: Any, message: str
) -> None:
    client = await make_client()
    response = await client.post(PATH, json=payload, headers=HEADERS)
    assert response.status_code == 400
    assert response.json()["error"] is True
    assert message in response.json()["message"]
    assert (await client.get("/_sandbox/campaigns")).json() == []
    assert (await client.get("/_sandbox/stats")).json()["by_status"] == {"400": 1}


async def test_unparseable_json_and_unknown_content_type_are_400(make_client: MakeClient) -> None:
    client = await make_client()
    bad = await client.post(PATH, content=b"{nope", headers={**HEADERS, "content-type": "application/json"})
    assert (bad.status_code, bad.json()["message"]) == (400, "Request body is not valid JSON")
    text = await client.post(PATH, content=b"number=1", headers={**HEADERS, "content-type": "text/plain"})
    assert text.status_code == 400
    assert "Unsupported content type" in text.json()["message"]


async def test_unknown_agents_can_be_allowed(make_client: MakeClient) -> None:
    client = await make_client(reject_unknown_agents=False)
    payload = body("+919876543210", agentMapping="global", agents=["mallory"])
    assert (await client.post(PATH, json=payload, headers=HEADERS)).status_code == 200
    assert (await client.get("/_sandbox/campaigns")).json()[0]["rows"][0]["agent_id"] == 0


CASE_STUDY_CSV = b"Mobile,Customer Name,Policy Interested,Lead ID\n998314242,James,Life Insurance,XT243\n"


async def post_form(
    client: httpx.AsyncClient, sheet: bytes | None, **fields: str | list[str]
) -> httpx.Response:
    files = {"campaign-sheet": ("leads.csv", sheet, "text/csv")} if sheet is not None else None
    return await client.post(PATH, data=fields or {"campaign-name": "x"}, files=files, headers=HEADERS)


async def test_form_campaign_like_the_case_study_with_a_numeric_agent_id(make_client: MakeClient) -> None:
    client = await make_client()
    assert (
        await post_form(client, CASE_STUDY_CSV, agent="20", **{"campaign-name": "XT243"})
    ).json() == ACCEPTED
    [campaign] = (await client.get("/_sandbox/campaigns")).json()
    assert (campaign["name"], campaign["body_format"], campaign["agent_mapping"]) == (
        "XT243",
        "form",
        "global",
    )
    assert campaign["agents"] == ["bob"]
    [row] = campaign["rows"]
    assert (row["number"], row["agent"], row["agent_id"]) == ("998314242", "bob", 20)
    assert row["fields"] == {
        "Customer Name": "James",
        "Policy Interested": "Life Insurance",
        "Lead ID": "XT243",
    }
    assert campaign["custom_field_names"]["customField1Name"] == "Customer Name"


async def test_form_campaign_without_agents_reaches_the_first_agent_and_agents_text_round_robins(
    make_client: MakeClient,
) -> None:
    client = await make_client()
    assert (await post_form(client, CASE_STUDY_CSV)).status_code == 200
    sheet = b"number,customField8\n111111,L1\n222222,L2\n333333,L3\n"
    assert (await post_form(client, sheet, agents="bob, alice")).status_code == 200
    assert await assigned(client) == [["alice"], ["bob", "alice", "bob"]]
    rows = (await client.get("/_sandbox/campaigns")).json()[1]["rows"]
    assert [r["custom_fields"] for r in rows] == [{"customField8": f"L{n}"} for n in (1, 2, 3)]


async def test_form_campaign_with_in_file_mapping(make_client: MakeClient) -> None:
    client = await make_client()
    sheet = b"number,agentsAssigned,Name\n111111,bob,A\n222222,,B\n"
    assert (await post_form(client, sheet, agents="in-file")).status_code == 200
    [campaign] = (await client.get("/_sandbox/campaigns")).json()
    assert campaign["agent_mapping"] == "inline"
    assert [r["agent"] for r in campaign["rows"]] == ["bob", "bob"]
    assert campaign["rows"][0]["agents_assigned"] == ["bob"]


@pytest.mark.parametrize(
    ("sheet", "fields", "message"),
    [
        (None, {"agents": "alice"}, "campaign-sheet is required"),
        (b"", {}, "campaign-sheet is empty"),
        (b"name,city\nJames,Pune\n", {}, "needs a number column"),
        (b"number\n", {}, "has no rows"),
        (CASE_STUDY_CSV, {"agent": "30"}, "Agent not found: 30"),
        (CASE_STUDY_CSV, {"agents": "in-file"}, "needs an agentsAssigned column"),
    ],
)
async def test_invalid_form_bodies_are_400(
    make_client: MakeClient, sheet: bytes | None, fields: dict[str, str], message: str
) -> None:
    client = await make_client()
    response = await post_form(client, sheet, **fields)
    assert response.status_code == 400
    assert message in response.json()["message"]
    assert (await client.get("/_sandbox/campaigns")).json() == []


async def test_rate_limit_is_per_rolling_window_and_429s_are_counted(make_client: MakeClient) -> None:
    client = await make_client(rate_limit_per_min=3, rate_window_seconds=0.5)
    codes = [
        (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code for _ in range(5)
    ]
    assert codes == [200, 200, 200, 429, 429]
    over = await client.post(PATH, json=body("+919876543210"), headers=HEADERS)
    assert over.json() == {"error": True, "message": "Too Many Requests"}
    await asyncio.sleep(0.55)
    assert (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code == 200
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["rate_limited"] == 3
    assert stats["by_status"] == {"200": 4, "429": 3}
    assert stats["total_requests"] == 7
    assert stats["max_requests_in_window"] == 6
    assert stats["accepted"] == 4


async def test_concurrent_requests_never_exceed_the_rate_limit(make_client: MakeClient) -> None:
    client = await make_client(rate_limit_per_min=20, latency_ms=20)
    responses = await asyncio.gather(
        *(client.post(PATH, json=body(f"+91{n:08d}"), headers=HEADERS) for n in range(50))
    )
    assert sorted(r.status_code for r in responses) == [200] * 20 + [429] * 30
    campaigns = (await client.get("/_sandbox/campaigns")).json()
    assert [c["id"] for c in campaigns] == list(range(1, 21))
    assert len({c["rows"][0]["number"] for c in campaigns}) == 20
    stats = (await client.get("/_sandbox/stats")).json()
    assert (stats["rate_limited"], stats["max_requests_in_window"]) == (30, 50)


async def test_fail_next_answers_the_documented_failure_then_recovers(make_client: MakeClient) -> None:
    client = await make_client()
    faults = (await client.post("/_sandbox/faults", json={"fail_next": 2, "fail_status": 500})).json()
    assert (faults["fail_next"], faults["fail_status"]) == (2, 500)
    responses = [await client.post(PATH, json=body("+919876543210"), headers=HEADERS) for _ in range(3)]
    assert [r.status_code for r in responses] == [500, 500, 200]
    assert responses[0].json() == {"error": True, "message": "Failed to create Campaign"}
    await client.post("/_sandbox/faults", json={"fail_next": 1, "fail_status": 429})
    assert (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).json()[
        "message"
    ] == "Too Many Requests"
    stats = (await client.get("/_sandbox/stats")).json()
    assert stats["by_status"] == {"500": 2, "200": 1, "429": 1}
    assert (stats["accepted"], stats["faults_injected"]) == (1, 3)
    assert len((await client.get("/_sandbox/campaigns")).json()) == 1


async def test_fault_updates_are_validated_and_cleared(make_client: MakeClient) -> None:
    client = await make_client(fail_rate=1.0, fail_status=503)
    assert (await client.get("/_sandbox/faults")).json()["fail_rate"] == 1.0
    assert (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code == 503
    assert (await client.post("/_sandbox/faults", json={"fail_rate": 2})).status_code == 422
    assert (await client.post("/_sandbox/faults", json={"explode": True})).status_code == 422
    cleared = (await client.delete("/_sandbox/faults")).json()
    assert (cleared["fail_rate"], cleared["fail_next"], cleared["latency_ms"]) == (0.0, 0, 0)
    assert (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code == 200


async def test_random_failures_are_reproducible_with_a_seed(make_client: MakeClient) -> None:
    async def pattern(seed: int) -> list[int]:
        client = await make_client(fail_rate=0.5, seed=seed)
        return [
            (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code
            for _ in range(30)
        ]

    first = await pattern(7)
    assert first == await pattern(7)
    assert first != await pattern(8)
    assert 5 <= first.count(500) <= 25 and first.count(200) + first.count(500) == 30
    client = await make_client()
    await client.post("/_sandbox/faults", json={"fail_rate": 0.5, "seed": 7})
    again = [
        (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code for _ in range(30)
    ]
    assert again == first


async def test_latency_is_added_to_campaign_requests(make_client: MakeClient) -> None:
    client = await make_client()
    await client.post("/_sandbox/faults", json={"latency_ms": 250})
    started = time.monotonic()
    assert (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code == 200
    assert time.monotonic() - started >= 0.25


async def test_reset_forgets_everything_and_restores_start_up_faults(make_client: MakeClient) -> None:
    client = await make_client(rate_limit_per_min=1, fail_next=1)
    assert (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code == 500
    assert (await client.post(PATH, json=body("+919876543210"), headers=HEADERS)).status_code == 429
    await client.post("/_sandbox/faults", json={"latency_ms": 5})
    assert (await client.delete("/_sandbox/campaigns")).json() == {"reset": True}
    assert (await client.get("/_sandbox/stats")).json()["total_requests"] == 0
    assert (await client.get("/_sandbox/faults")).json()["fail_next"] == 1
    assert (await client.get("/_sandbox/faults")).json()["latency_ms"] == 0
    await client.post("/_sandbox/faults", json={"fail_next": 0})
    assert (
        await client.post(PATH, json=body("+919876543210"), headers=HEADERS)
    ).status_code == 200  # window reset
    assert [c["id"] for c in (await client.get("/_sandbox/campaigns")).json()] == [1]


def test_parse_agents() -> None:
    assert parse_agents(" alice:10, bob@x.com:20 ,") == {"alice": 10, "bob@x.com": 20}
    for bad in ("", "alice", "alice:x", ":10"):
        with pytest.raises(ValueError):
            parse_agents(bad)
    with pytest.raises(ValueError, match="unique"):
        SandboxOptions(agents={"a": 1, "b": 1})


def test_cli_help_lists_the_options() -> None:
    app = typer.Typer()
    app.command("sandbox")(sandbox)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["sandbox", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "SANDBOX_TOKEN" in result.output
    for option in (
        "--host",
        "--port",
        "--token",
        "--agents",
        "--rate-limit",
        "--call-delay",
        "--no-calls",
        "--callback-retry",
        "--fail-rate",
        "--fail-status",
        "--latency-ms",
        "--seed",
    ):
        assert option in result.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_real_server_answers_late_after_recording_and_stops_on_ctrl_c() -> None:
    """The CLI on a real port: a timeout fault is an ambiguous send (client times out, campaign recorded)."""
    port = free_port()
    code = "import typer; from router.cli.sandbox import sandbox; typer.run(sandbox)"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", str(port), "--no-calls"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SANDBOX_TOKEN": TOKEN},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"RYNG_BASE_URL=http://127.0.0.1:{port}/rest-api/v1"
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                httpx.get(f"{base}/_sandbox/health", timeout=0.5).raise_for_status()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.05)
        httpx.post(f"{base}/_sandbox/faults", json={"timeout_next": 1, "timeout_seconds": 1.0})
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}{PATH}", json=body("+919876543210"), headers=HEADERS, timeout=0.3)
        [campaign] = httpx.get(f"{base}/_sandbox/campaigns").json()
        assert campaign["response_delayed_seconds"] == 1.0
        fast = httpx.post(f"{base}{PATH}", json=body("+919876543211"), headers=HEADERS, timeout=0.5)
        assert fast.json() == ACCEPTED
        stats = httpx.get(f"{base}/_sandbox/stats").json()
        assert (stats["accepted"], stats["timeouts_injected"]) == (2, 1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
