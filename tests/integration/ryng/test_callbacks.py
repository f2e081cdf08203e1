"""Ryng callbacks over real HTTP: one effect per callback however often and however concurrently it comes,
200 only once the record is written, and a non-200 (so Ryng retries) while Redis is down."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.harness import Stack, cli, free_port, wait_http, wait_until
from workers.store.connections import connect
from workers.store.embedded import start_embedded
from workers.store.keys import Keys

# Shaped like Ryng's documented examples, including their flaws: trailing commas and a repeated key.
CONNECT = """{
  "callID": "%(call)s",
  "callbackType": "connect",
  "event": "%(event)s",
  "agentID": 10,
  "agentUsername": "alice",
  "agentNum": "+919900000001",
  "customerNum": "998314242",
  "callCreated": "2024-05-02T10:15:00.000Z",
  "callStarted": null,
  "callDirection": "outbound",
  "callDirection": "outbound",
  "customFieldNames": {"customField1Name": "Name", "customField8Name": "LeadId",},
  "customFields": {"customField1": "James", "customField8": "%(lead)s",},
}"""

TERMINAL = """{
  "callID": "%(call)s",
  "callLogID": "log-%(call)s",
  "callbackType": "terminal",
  "event": "call-ended",
  "agentID": 10,
  "agentUsername": "alice",
  "agentNum": "+919900000001",
  "customerNum": "998314242",
  "virtualNum": "+918000000000",
  "callCreated": "2024-05-02T10:15:00.000Z",
  "callStarted": "2024-05-02T10:15:04.000Z",
  "callEnded": "2024-05-02T10:16:10.000Z",
  "callDisposed": "2024-05-02T10:16:30.000Z",
  "callbackTime": null,
  "callDirection": "outbound",
  "talktime": 61,
  "callDuration": null,
  "parentDisposition": null,
  "disposition": "Interested",
  "notes": "",
  "status": "2",
  "recordingUrl": "https://example.invalid/rec.mp3",
  "legDetails": {"leg0Status": 5, "leg0Duration": 16, "leg1Status": "5", "leg1Duration": 5,},
  "customFieldNames": {"customField8Name": "LeadId",},
  "customFields": {"customField8": "%(lead)s",},
}"""


def connect_body(lead_id: str, call: str, event: str = "agent-connected") -> bytes:
    return (CONNECT % {"call": call, "event": event, "lead": lead_id}).encode()


def terminal_body(lead_id: str, call: str) -> bytes:
    return (TERMINAL % {"call": call, "lead": lead_id}).encode()


class Ryng:
    """Posts callbacks the way Ryng does: to the secret URL, as JSON, each in its own connection."""

    def __init__(self, stack: Stack) -> None:
        self.base = f"{stack.api_url}/v1/ryng/{stack.settings['ROUTER_CALLBACK_SECRET']}"

    def post(self, kind: str, body: bytes) -> httpx.Response:
        with httpx.Client(timeout=10) as client:
            return client.post(f"{self.base}/{kind}", content=body, headers={"content-type": "application/json"})


def callbacks_in(stack: Stack, lead_id: str, kind: str) -> list[dict[str, object]]:
    return [e for e in stack.lead(lead_id)["history"] if e["event"] == f"callback_{kind}"]


def as_if_sent(stack: Stack, *lead_ids: str, status: str = "posted") -> None:
    """Mark leads as a worker would once it sent them to Ryng (only such leads take callbacks)."""
    client = connect(stack.redis_url)
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    try:
        for lead_id in lead_ids:
            client.hset(keys.lead(lead_id), mapping={"status": status, "attempts": "1"})
    finally:
        client.close()


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    stack = make_stack()
    stack.start_api()  # no worker: the leads stay where the test puts them, the callbacks alone change them
    return stack


def test_duplicate_and_concurrent_callbacks_have_one_effect(stack: Stack) -> None:
    ryng = Ryng(stack)
    for lead_id in ("CBT1", "CBC1"):
        assert stack.post_lead({"id": lead_id, "number": "998314242"}).status_code == 202
    as_if_sent(stack, "CBT1", "CBC1")

    # Ryng retries a terminal callback (it saw no 200 in time): five deliveries, one effect.
    answers = [ryng.post("terminal", terminal_body("CBT1", "call-t1")) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["result"] for a in answers] == ["applied"] + ["duplicate"] * 4
    record = stack.lead("CBT1")
    assert record["status"] == "completed" and record["disposition"] == "Interested"
    assert record["talktime"] == "61" and record["call_id"] == "call-t1"
    assert len(callbacks_in(stack, "CBT1", "terminal")) == 1

    # The same connect callback sixteen times at once: all answered 200, applied once.
    body = connect_body("CBC1", "call-c1")
    with ThreadPoolExecutor(16) as pool:
        concurrent = list(pool.map(lambda _: ryng.post("connect", body), range(16)))
    assert [a.status_code for a in concurrent] == [200] * 16
    assert Counter(a.json()["result"] for a in concurrent) == {"applied": 1, "duplicate": 15}
    assert len(callbacks_in(stack, "CBC1", "connect")) == 1
    assert stack.lead("CBC1")["status"] == "connected"
    # A different milestone of the same call is a different callback.
    assert ryng.post("connect", connect_body("CBC1", "call-c1", "customer-connected")).json()["result"] == "applied"
    assert [e["ryng_event"] for e in callbacks_in(stack, "CBC1", "connect")] == [
        "agent-connected", "customer-connected"]


def test_a_callback_is_answered_only_after_its_record_is_written(stack: Stack) -> None:
    ryng = Ryng(stack)
    client = connect(stack.redis_url)
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    assert stack.post_lead({"id": "CBW1", "number": "998314242"}).status_code == 202
    as_if_sent(stack, "CBW1")
    for i in range(20):
        answer = ryng.post("connect", connect_body("CBW1", f"call-w{i}"))
        assert answer.status_code == 200 and answer.json()["result"] == "applied"
        # Read straight after the 200, with no wait: the record already holds this callback.
        assert client.llen(keys.lead_events("CBW1")) == i + 2  # "accepted" plus one per callback
        assert client.hget(keys.lead("CBW1"), "call_id") == f"call-w{i}"
    answer = ryng.post("terminal", terminal_body("CBW1", "call-w19"))
    assert answer.status_code == 200
    assert client.hget(keys.lead("CBW1"), "status") == "completed"
    client.close()


@pytest.fixture
def valkey_port(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    yield free_port(), tmp_path / "valkey"


def test_redis_down_gets_a_non_200_so_ryng_retries(tmp_path: Path, valkey_port: tuple[int, Path]) -> None:
    port, data_dir = valkey_port
    server = start_embedded(data_dir=data_dir, port=port)
    secret = uuid.uuid4().hex
    stack = Stack(redis_url=f"redis://127.0.0.1:{port}/0", tmp=tmp_path, settings={
        "ROUTER_AGENTS": "alice,bob", "ROUTER_KEY_PREFIX": "cbdown", "ROUTER_CALLBACK_SECRET": secret,
        "ROUTER_READ_TOKEN": "test-read-token",
    })
    try:
        stack.start_api()
        ryng = Ryng(stack)
        assert stack.post_lead({"id": "CBD1", "number": "998314242"}).status_code == 202
        as_if_sent(stack, "CBD1")
        assert ryng.post("connect", connect_body("CBD1", "call-d1")).status_code == 200

        server.stop()
        down = [ryng.post("terminal", terminal_body("CBD1", "call-d1")),
                ryng.post("connect", connect_body("CBD1", "call-d1", "customer-connected")),
                ryng.post("terminal", b"{not json at all")]  # even an unmatched one must be kept first
        assert [a.status_code for a in down] == [503] * 3, [a.text for a in down]
        assert all(secret not in a.text for a in down)

        server = start_embedded(data_dir=data_dir, port=port)  # Redis is back; Ryng retries a minute later
        answers: list[httpx.Response] = []

        def retried() -> bool:
            answers.append(ryng.post("terminal", terminal_body("CBD1", "call-d1")))
            return answers[-1].status_code == 200

        wait_until(retried, timeout=15, interval=0.5, what="the retried callback answered 200")
        assert answers[-1].json()["result"] == "applied"
        record = stack.lead("CBD1")
        assert record["status"] == "completed"
        assert len(callbacks_in(stack, "CBD1", "terminal")) == 1
        assert len(callbacks_in(stack, "CBD1", "connect")) == 1  # kept from before the outage
        assert secret not in stack.logs()  # the outage is logged, the secret path segment is not
    finally:
        stack.stop()
        server.stop()


def test_a_called_dead_letter_leaves_the_dead_letters_and_a_retried_terminal_frees_the_agent(
    stack: Stack,
) -> None:
    assert stack.post_lead({"id": "CBD1", "number": "998314242"}).status_code == 202
    client = connect(stack.redis_url)
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    try:
        # As if a worker had dead-lettered it while Ryng, after an ambiguous send, had it after all.
        client.hset(keys.lead("CBD1"), mapping={"status": "dead", "attempts": "1"})
        client.zadd(keys.dead, {"CBD1": 1})
        # And as if alice held its reservation, whose release after the first terminal callback failed.
        client.hset(keys.reservation("CBD1"), mapping={"agent": "alice", "counted": "1"})
        client.hset(keys.agent("alice"), mapping={"open": "1", "ordinal": "1"})
        client.hset(keys.callbacks_applied("CBD1"), "terminal:log-cd1:call-ended", "1")  # the first delivery's
        ryng = Ryng(stack)
        answer = ryng.post("terminal", terminal_body("CBD1", "cd1"))
        assert answer.status_code == 200 and answer.json()["result"] == "duplicate"
        assert client.hget(keys.agent("alice"), "open") == "0"  # freed on Ryng's retry
        assert ryng.post("terminal", terminal_body("CBD1", "cd2")).json()["result"] == "applied"
        assert stack.lead("CBD1")["status"] == "completed"
        assert client.zscore(keys.dead, "CBD1") is None
    finally:
        client.close()


def test_dedup_is_per_lead_and_a_never_sent_lead_keeps_its_callback_as_unmatched(stack: Stack) -> None:
    ryng = Ryng(stack)
    client = connect(stack.redis_url)
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    try:
        for lead_id in ("CBR1", "CBR2", "CBU1"):
            assert stack.post_lead({"id": lead_id, "number": "998314242"}).status_code == 202
        as_if_sent(stack, "CBR1", "CBR2")
        # Ryng restarted its ids: two leads' calls carry the same call id. Each lead takes its own callbacks.
        for lead_id in ("CBR1", "CBR2"):
            assert ryng.post("connect", connect_body(lead_id, "1001")).json()["result"] == "applied"
            assert ryng.post("terminal", terminal_body(lead_id, "1001")).json()["result"] == "applied"
            assert stack.lead(lead_id)["status"] == "completed"
        assert ryng.post("terminal", terminal_body("CBR2", "1001")).json()["result"] == "duplicate"

        # A callback naming a lead never sent to Ryng (still queued, no attempt) is kept, not applied.
        before = client.llen(keys.callbacks_unmatched)
        for kind, body in (("connect", connect_body("CBU1", "2002")), ("terminal", terminal_body("CBU1", "2002"))):
            answer = ryng.post(kind, body)
            assert answer.status_code == 200 and answer.json()["result"] == "unsent"
        record = stack.lead("CBU1")
        assert record["status"] == "queued" and not record.get("disposition")
        assert callbacks_in(stack, "CBU1", "terminal") == []
        assert client.zscore(keys.pending, "CBU1") is not None  # still on its way to an agent
        kept = [json.loads(e) for e in client.lrange(keys.callbacks_unmatched, 0, -1)]
        assert len(kept) == before + 2 and {e["lead_id"] for e in kept[:2]} == {"CBU1"}
        assert '"2002"' in kept[0]["body"]
        # Once it is sent, the same callback applies.
        as_if_sent(stack, "CBU1", status="retrying")
        assert ryng.post("terminal", terminal_body("CBU1", "2002")).json()["result"] == "applied"
        assert stack.lead("CBU1")["status"] == "completed"
    finally:
        client.close()


def test_every_lead_completes_across_a_sandbox_restart(make_stack: Callable[..., Stack]) -> None:
    # A restarted Ryng (here the sandbox, whose call log ids start over on every start) reuses ids an earlier
    # lead's callbacks carried: the second burst's callbacks must still reach their own leads.
    stack = make_stack()
    options = ("--call-delay", "0.2", "--callback-retry", "0.2", "--rate-limit", "6000")
    sandbox = stack.start_sandbox(*options)
    port = stack.sandbox_url.rsplit(":", 1)[1]
    stack.start_api()
    stack.start_worker()
    for burst in (1, 2):
        ids = [f"RS{burst}-{i:02d}" for i in range(20)]
        for lead_id in ids:
            assert stack.post_lead({"id": lead_id, "number": f"99831{burst}{int(lead_id[-2:]):04d}"}).status_code == 202
        for lead_id in ids:
            record = stack.wait_status(lead_id, "completed", timeout=60)
            assert record["disposition"] and len(callbacks_in(stack, lead_id, "terminal")) == 1
        if burst == 1:
            sandbox.stop()
            sandbox = stack.spawn("sandbox", cli("sandbox", "--port", port, *options))
            wait_http(f"{stack.sandbox_url}/_sandbox/stats")
    assert len(stack.campaigns()) == 20  # the restarted sandbox saw the second burst only
