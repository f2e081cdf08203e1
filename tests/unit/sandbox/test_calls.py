"""The Ryng sandbox's simulated calls: Ryng-shaped callbacks, Ryng's retries, cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from router.sandbox import SandboxOptions, create_sandbox_app

pytestmark = pytest.mark.anyio

TOKEN = "t0ken"
PATH = "/rest-api/v1/campaign"
HEADERS = {"x-access-token": TOKEN}
CONNECT_URL = "http://crm.test/ryng/connect"
TERMINAL_URL = "http://crm.test/ryng/terminal"

COMMON_KEYS = {
    "callID", "callbackType", "event", "agentID", "agentUsername", "agentNum", "customerNum", "callCreated",
    "callStarted", "callDirection", "customFieldNames", "customFields",
}  # fmt: skip
TERMINAL_KEYS = COMMON_KEYS | {
    "callLogID", "virtualNum", "callEnded", "callDisposed", "callbackTime", "talktime", "callDuration",
    "parentDisposition", "disposition", "notes", "status", "recordingUrl", "legDetails",
}  # fmt: skip


@dataclass
class Receiver:
    """The CRM side: records every callback and answers with scripted status codes (default 200)."""

    script: dict[str, list[int]] = field(default_factory=dict)
    received: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    refuse: bool = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.refuse:
            raise httpx.ConnectError("connection refused", request=request)
        url = str(request.url)
        self.received.append((url, json.loads(request.content)))
        self.received_at.append(time.monotonic())
        codes = self.script.get(url)
        return httpx.Response(codes.pop(0) if codes else 200, json={"ok": True})


Sandbox = tuple[httpx.AsyncClient, Receiver]
MakeSandbox = Callable[..., Awaitable[Sandbox]]


@pytest.fixture
async def make_sandbox() -> AsyncIterator[MakeSandbox]:
    async with contextlib.AsyncExitStack() as stack:

        async def factory(**options: Any) -> Sandbox:
            receiver = Receiver()
            defaults = {"call_delay_seconds": 0, "call_step_seconds": 0, "callback_retry_seconds": 0.05}
            app = create_sandbox_app(
                SandboxOptions(token=TOKEN, **(defaults | options)),
                callback_transport=httpx.MockTransport(receiver.handle),
            )
            await stack.enter_async_context(app.router.lifespan_context(app))
            transport = httpx.ASGITransport(app=app)
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://sb")
            )
            return client, receiver

        yield factory


def campaign(
    *numbers: str, connect: str | None = CONNECT_URL, terminal: str | None = TERMINAL_URL
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "jsonData": [{"number": n, "customField1": f"Name {n}", "customField8": f"lead-{n}"} for n in numbers]
    }
    if connect:
        data["connectCallbackUrl"] = connect
    if terminal:
        data["terminalCallbackUrl"] = terminal
    return {
        "name": "c",
        "agentMapping": "global",
        "agents": ["bob", "alice"],
        "customFieldNames": {"customField1Name": "Name", "customField8Name": "LeadId"},
        "customerData": data,
    }


async def wait_until(predicate: Callable[[], Awaitable[bool]], *, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def settled(client: httpx.AsyncClient, deliveries: int) -> None:
    async def done() -> bool:
        stats = (await client.get("/_sandbox/stats")).json()
        return bool(stats["callbacks_delivered"] + stats["callbacks_failed"] >= deliveries)

    await wait_until(done)


async def test_each_row_gets_connect_then_terminal_callbacks_shaped_like_ryngs(
    make_sandbox: MakeSandbox,
) -> None:
    client, receiver = await make_sandbox(dispositions=["Sale", "No Sale"], seed=3)
    response = await client.post(PATH, json=campaign("+911111111", "+912222222"), headers=HEADERS)
    assert response.status_code == 200
    await settled(client, 6)
    [record] = (await client.get("/_sandbox/campaigns")).json()
    by_call: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    for url, payload in receiver.received:
        by_call.setdefault(payload["callID"], []).append((url, payload))
    assert len(by_call) == 2
    for (call_id, callbacks), row in zip(sorted(by_call.items()), record["rows"], strict=True):
        assert [(url, p["callbackType"], p["event"]) for url, p in callbacks] == [
            (CONNECT_URL, "connect", "agent-connected"),
            (CONNECT_URL, "connect", "customer-connected"),
            (TERMINAL_URL, "terminal", "call-ended"),
        ]
        agent_connected, customer_connected, ended = (p for _, p in callbacks)
        assert set(agent_connected) == set(customer_connected) == COMMON_KEYS
        assert set(ended) == TERMINAL_KEYS
        assert agent_connected["callStarted"] is None and customer_connected["callStarted"] is not None
        for payload in (agent_connected, customer_connected, ended):
            assert payload["callID"] == call_id
            assert (payload["agentUsername"], payload["agentID"]) == (row["agent"], row["agent_id"])
            assert payload["customerNum"] == row["number"]
            assert payload["callCreated"] == record["received_at"]
            assert payload["callDirection"] == "outbound"
            assert payload["customFields"]["customField8"] == f"lead-{row['number']}"
            assert payload["customFields"]["customField1"] == f"Name {row['number']}"
            assert payload["customFieldNames"]["customField8Name"] == "LeadId"
        assert ended["status"] == "completed"
        assert ended["disposition"] in {"Sale", "No Sale"}
        assert isinstance(ended["callLogID"], int) and isinstance(ended["talktime"], int)
        assert set(ended["legDetails"]) == {"leg0Status", "leg0Duration", "leg1Status", "leg1Duration"}
        assert ended["legDetails"]["leg1Duration"] == ended["talktime"]
    assert [r["agent"] for r in record["rows"]] == ["bob", "alice"]
    calls = (await client.get("/_sandbox/calls")).json()
    assert [c["state"] for c in calls] == ["ended", "ended"]
    for call in calls:
        assert [(d["kind"], d["attempts"], d["status_code"], d["delivered"]) for d in call["deliveries"]] == [
            ("connect", 1, 200, True),
            ("connect", 1, 200, True),
            ("terminal", 1, 200, True),
        ]
    stats = (await client.get("/_sandbox/stats")).json()
    assert (stats["calls"], stats["callbacks_delivered"], stats["callbacks_failed"]) == (2, 6, 0)


async def test_non_200_answers_are_retried_like_ryng(make_sandbox: MakeSandbox) -> None:
    """Connect: one retry. Terminal: up to two more tries. Only 200 counts as received."""
    client, receiver = await make_sandbox(callback_retry_seconds=0.1)
    receiver.script = {CONNECT_URL: [500, 500, 204, 204], TERMINAL_URL: [503, 503, 200]}
    await client.post(PATH, json=campaign("+911111111"), headers=HEADERS)
    await settled(client, 3)
    [call] = (await client.get("/_sandbox/calls")).json()
    summary = [(d["event"], d["attempts"], d["status_codes"], d["delivered"]) for d in call["deliveries"]]
    assert summary == [
        ("agent-connected", 2, [500, 204], False),
        ("customer-connected", 2, [500, 204], False),
        ("call-ended", 3, [503, 503, 200], True),
    ]
    terminal_times = [
        t for (url, _), t in zip(receiver.received, receiver.received_at, strict=True) if url == TERMINAL_URL
    ]
    assert all(later - earlier >= 0.09 for earlier, later in itertools.pairwise(terminal_times))
    terminal_bodies = [p for url, p in receiver.received if url == TERMINAL_URL]
    assert len(terminal_bodies) == 3 and all(b == terminal_bodies[0] for b in terminal_bodies)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 7  # no further retries after success or exhaustion
    stats = (await client.get("/_sandbox/stats")).json()
    assert (stats["callbacks_delivered"], stats["callbacks_failed"]) == (1, 2)


async def test_unreachable_callback_target_never_hurts_the_server(make_sandbox: MakeSandbox) -> None:
    client, receiver = await make_sandbox()
    receiver.refuse = True
    await client.post(PATH, json=campaign("+911111111", connect=None), headers=HEADERS)
    await settled(client, 1)
    [call] = (await client.get("/_sandbox/calls")).json()
    [delivery] = call["deliveries"]
    assert (delivery["kind"], delivery["attempts"], delivery["status_codes"]) == ("terminal", 3, [None] * 3)
    assert "ConnectError" in delivery["error"]
    assert call["state"] == "ended"
    again = await client.post(PATH, json=campaign("+912222222"), headers=HEADERS)
    assert again.status_code == 200


async def test_calls_wait_for_the_configured_delay(make_sandbox: MakeSandbox) -> None:
    client, receiver = await make_sandbox(call_delay_seconds=0.3, call_step_seconds=0.05)
    started = time.monotonic()
    await client.post(PATH, json=campaign("+911111111", connect=None), headers=HEADERS)
    await asyncio.sleep(0.15)
    assert receiver.received == []
    assert [c["state"] for c in (await client.get("/_sandbox/calls")).json()] == ["scheduled"]
    await settled(client, 1)
    assert [p["event"] for _, p in receiver.received] == ["call-ended"]
    assert receiver.received_at[0] - started >= 0.35


async def test_no_calls_without_callback_urls_or_when_disabled(make_sandbox: MakeSandbox) -> None:
    client, receiver = await make_sandbox()
    await client.post(PATH, json=campaign("+911111111", connect=None, terminal=None), headers=HEADERS)
    disabled, disabled_receiver = await make_sandbox(simulate_calls=False)
    await disabled.post(PATH, json=campaign("+911111111"), headers=HEADERS)
    await asyncio.sleep(0.1)
    assert receiver.received == disabled_receiver.received == []
    assert (
        (await client.get("/_sandbox/calls")).json() == (await disabled.get("/_sandbox/calls")).json() == []
    )
    assert len((await disabled.get("/_sandbox/campaigns")).json()) == 1


async def test_reset_cancels_pending_calls(make_sandbox: MakeSandbox) -> None:
    client, receiver = await make_sandbox(call_delay_seconds=0.2)
    await client.post(PATH, json=campaign("+911111111", "+912222222"), headers=HEADERS)
    assert len((await client.get("/_sandbox/calls")).json()) == 2
    await client.delete("/_sandbox/campaigns")
    await asyncio.sleep(0.4)
    assert receiver.received == []
    assert (await client.get("/_sandbox/calls")).json() == []
    assert (await client.get("/_sandbox/stats")).json()["calls"] == 0


def test_call_ids_are_unique_across_restarts() -> None:
    from router.sandbox.state import SandboxState

    def calls(state: SandboxState, count: int) -> list[int]:
        return [state.new_call(campaign_id=1, row_index=i, number="+919812345678", agent="alice",
                               agent_id=1).call_id for i in range(count)]

    first = calls(SandboxState(options=SandboxOptions(token=TOKEN)), 50)
    time.sleep(0.002)  # a restart takes longer than this
    restarted = calls(SandboxState(options=SandboxOptions(token=TOKEN)), 50)
    assert len(set(first)) == 50 and len(set(restarted)) == 50
    assert min(restarted) > max(first)  # a restarted sandbox never hands out an id it gave before
