"""The front door on real processes: only JSON is a lead, reads need a credential, secrets stay out of logs,
and a lead taken in one Redis call is a task Celery's workers run and Flower's event stream sees."""

from __future__ import annotations

import ast
import contextlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from celery import Celery

from tests.harness import Stack, wait_until

READ_TOKEN = "reader-" + uuid.uuid4().hex
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex


def lead(lead_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": lead_id, "number": "998314242", "name": "James", "fields": {"Product": "Life"}} | extra


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    built = make_stack(ROUTER_READ_TOKEN=READ_TOKEN, ROUTER_ADMIN_TOKEN=ADMIN_TOKEN)
    built.start_api()
    return built


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "text/json"]
)
def test_only_json_is_taken_as_a_lead(stack: Stack, content_type: str | None) -> None:
    body = b'{"id": "CT1", "number": "998314242"}'
    headers = {} if content_type is None else {"content-type": content_type}
    answer = httpx.post(f"{stack.api_url}/v1/leads", content=body, headers=headers, timeout=10)
    assert answer.status_code == 415, answer.text
    assert "application/json" in answer.json()["detail"]
    assert stack.client.get(f"{stack.api_url}/v1/leads/CT1").status_code == 404  # nothing was kept


@pytest.mark.parametrize(
    ("lead_id", "content_type"),
    [("CJ1", "application/json"), ("CJ2", "application/json; charset=utf-8"), ("CJ3", "application/vnd.crm+json")],
)
def test_json_media_types_are_taken(stack: Stack, lead_id: str, content_type: str) -> None:
    answer = stack.client.post(
        f"{stack.api_url}/v1/leads", content=httpx.Request("POST", "/", json=lead(lead_id)).content,
        headers={"content-type": content_type},
    )
    assert answer.status_code == 202, answer.text


@pytest.mark.parametrize(
    ("fields", "needle"),
    [(b'{"n": 1e400}', "out of range"), (b'{"n": ' + b"7" * 4000 + b"}", "longer than 1000 characters")],
)
def test_numbers_beyond_a_finite_field_are_a_422(stack: Stack, fields: bytes, needle: str) -> None:
    body = b'{"id": "BIG1", "number": "998314242", "fields": ' + fields + b"}"
    answer = stack.client.post(f"{stack.api_url}/v1/leads", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422 and needle in answer.text, answer.text


def test_reading_a_lead_needs_a_token_and_refusals_leak_nothing(stack: Stack) -> None:
    assert stack.post_lead(lead("R1")).status_code == 202
    url = f"{stack.api_url}/v1/leads/"
    anonymous = httpx.Client(timeout=10)
    refusals = [
        anonymous.get(url + "R1"), anonymous.get(url + "NOPE"),
        anonymous.get(url + "R1", headers={"authorization": "Bearer wrong"}),
        anonymous.get(url + "NOPE", headers={"authorization": "Bearer wrong"}),
        anonymous.get(url + "R1", headers={"authorization": f"Basic {READ_TOKEN}"}),
    ]
    assert [answer.status_code for answer in refusals] == [401] * 5
    assert len({answer.text for answer in refusals}) == 1  # a known and an unknown lead look the same
    for answer in refusals:
        assert "998314242" not in answer.text and "James" not in answer.text and READ_TOKEN not in answer.text
        assert answer.headers["www-authenticate"] == "Bearer"
    for token in (READ_TOKEN, ADMIN_TOKEN):
        record = anonymous.get(url + "R1", headers={"authorization": f"Bearer {token}"})
        assert record.status_code == 200 and record.json()["number"] == "998314242"
    assert anonymous.get(url + "NOPE", headers={"authorization": f"Bearer {READ_TOKEN}"}).status_code == 404
    # the read token reads leads, nothing more
    admin = anonymous.get(f"{stack.api_url}/v1/admin/dead", headers={"authorization": f"Bearer {READ_TOKEN}"})
    assert admin.status_code == 401
    anonymous.close()


def test_without_any_token_reads_are_off(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(ROUTER_READ_TOKEN="")
    stack.start_api()
    assert stack.post_lead(lead("OFF1")).status_code == 202
    for headers in ({}, {"authorization": "Bearer anything"}):
        answer = httpx.get(f"{stack.api_url}/v1/leads/OFF1", headers=headers, timeout=10)
        assert answer.status_code == 403, answer.text
        assert "ROUTER_READ_TOKEN" in answer.json()["detail"] and "998314242" not in answer.text


def test_loopback_reads_under_run_are_for_direct_local_clients_only(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(ROUTER_READ_TOKEN="", ROUTER_LOOPBACK_READS="true")
    stack.start_api()
    assert stack.post_lead(lead("LO1")).status_code == 202
    url = f"{stack.api_url}/v1/leads/LO1"
    assert httpx.get(url, timeout=10).status_code == 200
    for proxied in ({"x-forwarded-for": "203.0.113.9"}, {"forwarded": "for=203.0.113.9"}, {"x-real-ip": "203.0.113.9"}):
        assert httpx.get(url, headers=proxied, timeout=10).status_code == 403


def test_the_callback_secret_is_masked_in_every_logged_path(stack: Stack) -> None:
    secret = stack.settings["ROUTER_CALLBACK_SECRET"]
    for path in (f"//v1/ryng/{secret}/connect", f"/v1//ryng/{secret}/terminal", f"/v1/RYNG/{secret}/x",
                 f"/v1/ryng/{secret}/connect", f"/elsewhere/{secret}"):
        stack.client.post(stack.api_url + path, json={"event": "x"})
    wait_until(lambda: stack.logs().count('"http_request"') >= 5, timeout=10, what="the request log lines")
    assert secret not in stack.logs()


def test_a_lead_taken_in_one_call_is_a_task_flower_sees_sent_received_and_run(
    make_stack: Callable[..., Stack], redis_url: str
) -> None:
    stack = make_stack(ROUTER_READ_TOKEN=READ_TOKEN)
    stack.start_sandbox("--no-calls")
    stack.start_api()
    events: list[dict[str, Any]] = []
    listening = threading.Event()
    app = Celery(broker=redis_url)
    connection = app.connection_for_read()

    receivers: list[Any] = []

    def listen() -> None:  # what Flower does: a Celery event receiver on the broker
        receiver = app.events.Receiver(connection, handlers={"*": events.append})
        receivers.append(receiver)
        listening.set()
        with contextlib.suppress(TimeoutError, OSError):  # no events for 40 s: this listener is done
            receiver.capture(limit=None, timeout=40, wakeup=False)

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    listening.wait(10)
    wait_until(lambda: connection.connected, timeout=10, what="the event receiver")
    stack.start_worker(concurrency=1)
    ids = [f"FL{n}" for n in range(3)]
    for lead_id in ids:
        answer = stack.post_lead(lead(lead_id))
        assert answer.status_code == 202 and answer.json()["status"] == "queued", answer.text
    for lead_id in ids:
        stack.wait_status(lead_id, "posted")

    def by_kind(kind: str) -> dict[str, dict[str, Any]]:
        return {event["uuid"]: event for event in list(events) if event.get("type") == kind}

    sent = wait_until(lambda: (s := by_kind("task-sent")) and len(s) >= len(ids) and s, timeout=20, what="sent")
    assert {event["name"] for event in sent.values()} == {"lead_router.deliver"}
    assert sorted(event["args"] for event in sent.values()) == sorted(f"('{lead_id}',)" for lead_id in ids)
    succeeded = wait_until(
        lambda: (done := by_kind("task-succeeded")) and set(sent) <= set(done) and done, timeout=20, what="run"
    )
    assert set(sent) <= set(by_kind("task-received")) and set(sent) <= set(succeeded)
    # What Flower shows as the task's result: the lead, its agent and what happened (no phone number, no name).
    results = sorted((ast.literal_eval(succeeded[task_id]["result"]) for task_id in sent), key=lambda r: r["lead"])
    assert results == [{"lead": lead_id, "agent": stack.lead(lead_id)["agent"], "outcome": "posted"}
                       for lead_id in ids]
    assert {result["agent"] for result in results} == {"alice", "bob"}
    assert not any(lead("FL0")["number"] in event["result"] for event in succeeded.values())
    for receiver in receivers:  # stop listening before the next test runs: no thread outlives its test
        receiver.should_stop = True
    thread.join(15)
    assert not thread.is_alive()
    connection.release()
