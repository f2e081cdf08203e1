"""The pipeline end to end: the real API over HTTP, real Celery workers, Redis, and the sandbox over HTTP."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from celery import Celery

from tests.harness import Stack, wait_until


def lead(lead_id: str, number: str = "998314242", **extra: object) -> dict[str, object]:
    return {"id": lead_id, "number": number, **extra}


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    stack = make_stack()
    stack.start_sandbox("--call-delay", "0.3", "--callback-retry", "0.2")
    stack.start_api()
    stack.start_worker()
    return stack


def test_case_study_two_single_leads_go_to_two_agents(stack: Stack) -> None:
    first = stack.post_lead(lead("XT243", "998314242", name="James", fields={"Product": "Life Insurance"}))
    assert first.status_code == 202, first.text
    assert first.json()["id"] == "XT243"
    stack.wait_status("XT243", "posted", "connected", "completed")
    second = stack.post_lead(lead("XT250", "893247489", name="Philip", fields={"Product": "Motor Insurance"}))
    assert second.status_code == 202, second.text
    stack.wait_status("XT250", "posted", "connected", "completed")

    campaigns = stack.campaigns()
    assert [c["name"] for c in campaigns] == ["XT243", "XT250"]
    assert [c["agents"] for c in campaigns] == [["alice"], ["bob"]]
    assert all(c["agent_mapping"] == "global" for c in campaigns)
    record = stack.lead("XT243")
    assert record["agent"] == "alice" and record["strategy"] == "round_robin" and record["pool"] == "default"
    assert record["attempts"] == 1
    assert [e["event"] for e in record["history"]][:3] == ["accepted", "pick", "attempt"]


def test_a_delivered_lead_is_one_worker_log_line_with_ryngs_answer(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_sandbox("--no-calls")
    stack.start_api()
    worker = stack.start_worker(concurrency=1)
    assert stack.post_lead(lead("ONE1", "998314242")).status_code == 202
    stack.wait_status("ONE1", "posted")
    wait_until(lambda: "ONE1" in worker.log(), what="the worker's line for ONE1")
    time.sleep(0.5)  # a second line would be written within the same task
    lines = [json.loads(line) for line in worker.log().splitlines() if "ONE1" in line]
    assert len(lines) == 1, lines  # no Celery received/succeeded lines, no separate line for the attempt
    [line] = lines
    assert line["event"] == "lead_delivery_step" and line["outcome"] == "posted"
    assert line["attempt"] == 1 and line["ryng_outcome"] == "accepted" and line["status_code"] == 200
    assert isinstance(line["elapsed_ms"], int)


def test_the_worker_command_becomes_the_lean_worker_process(stack: Stack) -> None:
    worker = next(p for p in stack.procs if p.name.startswith("worker"))
    argv = Path(f"/proc/{worker.pid}/cmdline").read_bytes().split(b"\0")
    assert argv[1:3] == [b"-m", b"workers"], argv  # same pid, exec'ed after the command's checks
    assert b"--concurrency=2" in argv and any(a.startswith(b"--queues=") for a in argv)
    assert stack.post_lead(lead("LEAN1")).status_code == 202
    stack.wait_status("LEAN1", "posted", "connected", "completed")


def test_hundred_leads_from_eight_clients_are_spread_evenly(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(ROUTER_AGENTS="a1,a2,a3,a4,a5")
    stack.start_sandbox("--no-calls", "--rate-limit", "6000", "--agents", "a1:1,a2:2,a3:3,a4:4,a5:5")
    stack.start_api()
    stack.start_worker(concurrency=2)
    stack.start_worker(concurrency=2)

    def send(i: int) -> int:
        with httpx.Client(timeout=10) as client:
            return client.post(f"{stack.api_url}/v1/leads", json=lead(f"L{i:03d}", f"9000000{i:03d}")).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, range(100)))
    assert codes == [202] * 100
    wait_until(lambda: len(stack.campaigns()) >= 100, timeout=60, what="100 campaigns")
    campaigns = stack.campaigns()
    assert len(campaigns) == 100
    assert len({c["name"] for c in campaigns}) == 100
    per_agent = Counter(c["agents"][0] for c in campaigns)
    assert set(per_agent) == {"a1", "a2", "a3", "a4", "a5"}
    assert max(per_agent.values()) - min(per_agent.values()) <= 1, per_agent


def test_one_lead_delivered_five_times_makes_one_campaign(stack: Stack) -> None:
    body = lead("DUP1", fields={"Product": "Motor"})
    answers = [stack.post_lead(body).status_code for _ in range(5)]
    assert answers[0] == 202 and set(answers[1:]) <= {200, 202}
    with Celery("probe", broker=stack.redis_url, set_as_current=False) as sender:
        for _ in range(5):  # five more deliveries of the same task, as at-least-once delivery may produce
            sender.send_task("lead_router.deliver", args=["DUP1"], queue="leads")
    stack.wait_status("DUP1", "posted", "connected", "completed")
    wait_until(lambda: stack.sandbox_stats()["total_requests"] >= 1, what="a request")
    time.sleep(2)  # give the redundant deliveries time to run
    assert [c["name"] for c in stack.campaigns()] == ["DUP1"]
    assert stack.lead("DUP1")["attempts"] == 1


def test_ryng_500s_then_recovery_delivers_once(stack: Stack) -> None:
    stack.faults(fail_next=3, fail_status=500)
    assert stack.post_lead(lead("R500")).status_code == 202
    record = stack.wait_status("R500", "posted", "connected", "completed", timeout=30)
    assert record["attempts"] == 4
    assert record["possible_duplicate"] is False
    outcomes = [e["outcome"] for e in record["history"] if e["event"] == "attempt"]
    assert outcomes == ["retry", "retry", "retry", "accepted"]
    assert [c["name"] for c in stack.campaigns()] == ["R500"]


def test_403_pauses_delivery_keeps_leads_and_resumes(stack: Stack) -> None:
    stack.faults(fail_next=2, fail_status=403)
    assert stack.post_lead(lead("P1")).status_code == 202
    waiting = stack.wait_status("P1", "waiting", timeout=15)
    assert waiting["wait_reason"] == "ryng_unauthorized"
    assert stack.post_lead(lead("P2", "998314243")).status_code == 202
    # The probe (every second here) meets the second 403, then succeeds: delivery resumes for both.
    stack.wait_status("P1", "posted", "connected", "completed", timeout=30)
    stack.wait_status("P2", "posted", "connected", "completed", timeout=30)
    assert sorted(c["name"] for c in stack.campaigns()) == ["P1", "P2"]
    assert stack.lead("P1")["dead_reason"] is None


def test_callbacks_complete_the_lead_once(stack: Stack) -> None:
    assert stack.post_lead(lead("CB1", fields={"Product": "Life"})).status_code == 202
    record = stack.wait_status("CB1", "completed", timeout=30)
    assert record["disposition"]
    assert record["call_id"]
    kinds = [e["event"] for e in record["history"] if e["event"].startswith("callback_")]
    assert kinds.count("callback_terminal") == 1
    assert kinds.count("callback_connect") == 2


@pytest.mark.parametrize(
    ("body", "code", "needle"),
    [
        ({"id": "B1"}, 422, "number"),
        ({"id": "B1", "number": "12ab"}, 422, "phone number"),
        ({"id": "B1", "number": "123"}, 422, "phone number"),
        ({"id": "", "number": "9983142420"}, 422, "id"),
        ({"id": "B1", "number": 998314242}, 422, "number"),
        ({"id": "B1", "number": "998314242", "fields": {"a": {"nested": 1}}}, 422, "fields"),
        ({"id": "B1", "number": "998314242", "colour": "red"}, 422, "colour"),
        ({"id": "B1", "number": "998314242", "pool": "nowhere"}, 422, "unknown pool"),
        ({"id": "B1", "number": "998314242", "agent": "zoe"}, 422, "unknown agent 'zoe'; configured agents: alice"),
    ],
)
def test_bad_input_gets_a_clear_4xx(stack: Stack, body: dict[str, object], code: int, needle: str) -> None:
    response = stack.post_lead(body)
    assert response.status_code == code, response.text
    assert needle in response.text


def test_malformed_json_conflict_and_unknown_lead(stack: Stack) -> None:
    response = stack.client.post(f"{stack.api_url}/v1/leads", content=b"{not json",
                                 headers={"content-type": "application/json"})
    assert response.status_code == 422 and "malformed JSON" in response.text
    assert stack.post_lead(lead("C1")).status_code == 202
    conflict = stack.post_lead(lead("C1", "998314299"))
    assert conflict.status_code == 409 and "different payload" in conflict.text
    assert stack.client.get(f"{stack.api_url}/v1/leads/nope").status_code == 404
    too_big = stack.client.post(f"{stack.api_url}/v1/leads", content=b"x" * 200_000,
                                headers={"content-type": "application/json"})
    assert too_big.status_code == 413


def test_form_data_with_numeric_agent_ids_as_in_the_case_study(
    make_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text('[[agents]]\nname = "alice"\nid = 10\n\n[[agents]]\nname = "bob"\nid = 20\n\n'
                       '[[pools]]\nname = "default"\nmembers = ["alice", "bob"]\n')
    stack = make_stack(RYNG_BODY_FORMAT="form", RYNG_FORM_AGENT_FIELD="agent", ROUTER_ROUTING_FILE=str(routing),
                       ROUTER_AGENTS="")
    stack.start_sandbox("--no-calls")
    stack.start_api()
    stack.start_worker()
    for lead_id, number in (("XT243", "998314242"), ("XT250", "893247489")):
        assert stack.post_lead(lead(lead_id, number, fields={"Product": "Insurance"})).status_code == 202
        stack.wait_status(lead_id, "posted")
    campaigns = stack.campaigns()
    assert [c["body_format"] for c in campaigns] == ["form", "form"]
    assert [c["rows"][0]["agent"] for c in campaigns] == ["alice", "bob"]
    assert [c["rows"][0]["agent_id"] for c in campaigns] == [10, 20]
    assert campaigns[0]["rows"][0]["fields"]["LeadId"] == "XT243"


def test_a_real_account_token_is_used_and_never_logged(make_stack: Callable[..., Stack]) -> None:
    token = "tok-" + "9" * 24
    stack = make_stack(RYNG_ACCESS_TOKEN=token, SANDBOX_TOKEN=token)
    stack.start_sandbox("--no-calls", "--token", token)
    stack.start_api()
    stack.start_worker()
    assert stack.post_lead(lead("TOK1")).status_code == 202
    record = stack.wait_status("TOK1", "posted")
    assert record["agent"] == "alice"
    assert stack.sandbox_stats()["by_status"].get("403", 0) == 0
    assert all(token not in proc.log() for proc in stack.procs if proc.name != "sandbox")


def test_broker_down_answers_503_and_the_recorded_lead_is_delivered_later(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(ROUTER_LEASE_SECONDS="2")
    stack.start_sandbox("--no-calls")
    stack.settings["CELERY_BROKER_URL"] = "redis://127.0.0.1:1/0"  # the API's broker is unreachable
    stack.start_api()
    started = time.monotonic()
    response = stack.post_lead(lead("BROKER1"))
    assert response.status_code == 503 and "retry" in response.json()["detail"]
    assert time.monotonic() - started < 5
    assert stack.lead("BROKER1")["status"] == "accepted"  # recorded, not yet queued
    readiness = stack.client.get(f"{stack.api_url}/readyz")
    assert readiness.status_code == 503 and readiness.json()["checks"]["broker"].startswith("unreachable")
    del stack.settings["CELERY_BROKER_URL"]  # the workers' broker works: the lease brings the lead back
    stack.start_worker()
    stack.wait_status("BROKER1", "posted", timeout=30)
    assert [c["name"] for c in stack.campaigns()] == ["BROKER1"]
    assert stack.post_lead(lead("BROKER1")).json()["status"] == "posted"  # the client's retry: 200, no repost


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 30_000 + b"]" * 30_000,  # nested deeper than any parser's recursion
        b'{"id": "N1", "number": "998314242", "fields": {"a": ' + b"9" * 5000 + b"}}",  # an integer too long
        b'{"id": "N1", "number": "998314242", "fields": {"a": NaN}}',
        b'{"id": "N1", "number": "998314242", "fields": {"a": Infinity}}',
        b'{"id": "N1", "number": "998314242", "fields": {"a": "x\\udfff"}}',  # a lone surrogate: not UTF-8 text
        b"\xff\xfe not utf-8",
    ],
)
def test_hostile_json_is_a_422_for_leads_and_harmless_for_callbacks(stack: Stack, body: bytes) -> None:
    headers = {"content-type": "application/json"}
    answer = stack.client.post(f"{stack.api_url}/v1/leads", content=body, headers=headers)
    assert answer.status_code == 422, answer.text
    secret = stack.settings["ROUTER_CALLBACK_SECRET"]
    for kind in ("connect", "terminal"):
        callback = stack.client.post(f"{stack.api_url}/v1/ryng/{secret}/{kind}", content=body, headers=headers)
        assert callback.status_code == 200 and callback.json()["result"] == "unmatched", callback.text


def test_lead_ids_that_look_like_other_keys_stay_separate_leads(stack: Stack) -> None:
    ids = ["Z1:lock", "Z1", "XT243:events", "XT243", "a:b:c", "id with spaces"]
    for index, lead_id in enumerate(ids):
        answer = stack.post_lead(lead(lead_id, f"99831424{index}"))
        assert answer.status_code == 202, (lead_id, answer.text)
    for lead_id in ids:
        record = stack.wait_status(lead_id, "posted", "connected", "completed", timeout=30)
        assert record["attempts"] == 1
    assert sorted(c["name"] for c in stack.campaigns()) == sorted(ids)
