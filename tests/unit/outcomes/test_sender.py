"""Outcomes to a CRM on a real Redis, with the CRM on httpx.MockTransport: signed, retried, in order, dead-lettered.

Nothing sleeps: each test drives `claim_due` and `run(lead_id)` as the pump and the Celery task would, making
the lead due again by hand where a backoff would make it wait.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from standardwebhooks.webhooks import Webhook

from config.routing import RoutingConfig, load_routing
from workers.delivery.policy import DeliveryPolicy
from workers.outcomes.outbox import Outbox
from workers.outcomes.sender import OutcomeSender, Sent
from workers.store.keys import Keys
from workers.store.records import LeadStore

SECRET = "whsec_" + base64.b64encode(b"outcome-secret-0123456789").decode()
HOOK = "https://crm.example/hooks/calls"


class CRM:
    """A stand-in CRM endpoint: answers from a script (then 200), keeps every request."""

    def __init__(self) -> None:
        self.script: list[int | Exception] = []
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.script.pop(0) if self.script else 200
        if isinstance(step, Exception):
            raise step
        return httpx.Response(step, json={"ok": step < 300})

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]


@pytest.fixture
def routing(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> RoutingConfig:
    monkeypatch.setenv("OUTCOME_SECRET", SECRET)
    path = tmp_path / "routing.toml"
    path.write_text(f"""
[[sources]]
name = "hubspot"
preset = "hubspot"
auth = "none"
outcome_url = "{HOOK}"
outcome_secret_env = "OUTCOME_SECRET"

[[sources]]
name = "lsq"
preset = "leadsquared"
auth = "none"
outcome_url = "{HOOK}/lsq"
outcome_secret_env = "OUTCOME_SECRET"
outcome_template = {{ ProspectID = "{{crm_id}}", Activity = {{ Note = "{{disposition}} after {{talktime}} s" }} }}

[[sources]]
name = "quiet"
auth = "none"
""")
    return load_routing(path=str(path), agents=["alice"])


@pytest.fixture
def crm() -> CRM:
    return CRM()


@pytest.fixture
def parts(redis_client: redis.Redis, key_prefix: str, routing: RoutingConfig,
          crm: CRM) -> Iterator[tuple[LeadStore, Outbox, OutcomeSender]]:
    keys = Keys(key_prefix)
    store = LeadStore(redis_client, keys=keys)
    outbox = Outbox(redis_client, keys=keys, store=store, routing=lambda: routing, lease_seconds=30)
    sender = OutcomeSender(outbox=outbox, client=httpx.Client(transport=httpx.MockTransport(crm)),
                           policy=DeliveryPolicy(backoff_base_seconds=1, backoff_max_seconds=2), max_attempts=4)
    yield store, outbox, sender
    sender.close()


def completed_lead(store: LeadStore, lead_id: str, source: str) -> None:
    store.accept(lead_id=lead_id, payload={"id": lead_id, "number": "998314242"}, source=source)
    store.update(lead_id, status="completed", agent="alice", disposition="Interested", talktime="42",
                 call_id=f"call-{lead_id}")


CALL = {"callID": "c-1", "agentUsername": "alice", "disposition": "Interested", "talktime": 42,
        "callStarted": "2026-11-30T10:00:00Z", "callEnded": "2026-11-30T10:00:48Z",
        "recordingUrl": "https://rec.example/c-1.mp3"}


def due_now(redis_client: redis.Redis, outbox: Outbox, lead_id: str, key_prefix: str) -> None:
    redis_client.zadd(Keys(key_prefix).outcomes_due, {lead_id: 0})


def test_a_signed_outcome_is_delivered_once(parts: tuple[LeadStore, Outbox, OutcomeSender], crm: CRM) -> None:
    store, outbox, sender = parts
    completed_lead(store, "hubspot:1", "hubspot")
    assert outbox.notify("hubspot:1", kind="lead.completed", call=CALL)
    assert not outbox.notify("hubspot:1", kind="lead.completed", call=CALL)  # Ryng retried the callback
    assert outbox.claim_due() == ["hubspot:1"]
    assert outbox.claim_due() == []  # claimed: no second sender meanwhile
    assert sender.run("hubspot:1") == Sent.DELIVERED
    assert sender.run("hubspot:1") == Sent.NOTHING and outbox.pending() == 0
    (request,) = crm.requests
    assert str(request.url) == HOOK
    body = Webhook(SECRET).verify(request.content, dict(request.headers))
    assert body == crm.bodies()[0]
    assert body | {"at": None} == {
        "type": "lead.completed", "lead_id": "hubspot:1", "crm_id": "1", "source": "hubspot", "status": "completed",
        "agent": "alice", "disposition": "Interested", "talktime": "42", "call_started": "2026-11-30T10:00:00Z",
        "call_ended": "2026-11-30T10:00:48Z", "recording_url": "https://rec.example/c-1.mp3", "call_id": "c-1",
        "attempts": 0, "dead_reason": None, "at": None,
    }
    record = store.get("hubspot:1")
    assert record is not None and record.extra["outcome_status"] == "delivered"
    assert [e["event"] for e in store.events("hubspot:1")][-1] == "outcome_delivered"


def test_failures_are_retried_then_delivered_in_order_per_lead(
    parts: tuple[LeadStore, Outbox, OutcomeSender], crm: CRM, redis_client: redis.Redis, key_prefix: str
) -> None:
    store, outbox, sender = parts
    completed_lead(store, "hubspot:2", "hubspot")
    store.update("hubspot:2", dead_at="2026-11-30T09:00:00Z", dead_reason="gave up")
    outbox.notify("hubspot:2", kind="lead.dead")
    outbox.notify("hubspot:2", kind="lead.completed", call=CALL)
    crm.script = [503, httpx.ConnectError("refused"), 429]
    outcomes = []
    for _ in range(6):
        due_now(redis_client, outbox, "hubspot:2", key_prefix)
        outcomes.append(sender.run("hubspot:2"))
    assert outcomes == [Sent.RETRYING] * 3 + [Sent.DELIVERED, Sent.DELIVERED, Sent.NOTHING]
    types = [body["type"] for body in crm.bodies()]
    assert types == ["lead.dead"] * 4 + ["lead.completed"]  # the second waits for the first
    ids = [request.headers["webhook-id"] for request in crm.requests]
    assert len(set(ids[:4])) == 1 and ids[4] != ids[0]  # the same id on every try: the CRM can drop repeats
    assert crm.bodies()[0]["dead_reason"] == "gave up"


def test_outcomes_are_dead_lettered_after_bounded_tries_or_a_refusal(
    parts: tuple[LeadStore, Outbox, OutcomeSender], crm: CRM, redis_client: redis.Redis, key_prefix: str
) -> None:
    store, outbox, sender = parts
    completed_lead(store, "hubspot:3", "hubspot")
    outbox.notify("hubspot:3", kind="lead.completed", call=CALL)
    crm.script = [500, 500, 500, 500]
    results = []
    for _ in range(4):
        due_now(redis_client, outbox, "hubspot:3", key_prefix)
        results.append(sender.run("hubspot:3"))
    assert results == [Sent.RETRYING] * 3 + [Sent.DEAD]
    completed_lead(store, "hubspot:4", "hubspot")
    outbox.notify("hubspot:4", kind="lead.completed", call=CALL)
    crm.script = [410]
    assert sender.run("hubspot:4") == Sent.DEAD
    dead = outbox.dead()
    assert [(item.lead_id, item.attempts) for item in dead] == [("hubspot:4", 1), ("hubspot:3", 4)]
    assert "gave up after 4 tries" in dead[1].reason and "410" in dead[0].reason
    record = store.get("hubspot:3")
    assert record is not None and record.extra["outcome_status"] == "dead"
    assert outbox.pending() == 0


def test_a_template_reshapes_the_body_and_sources_without_outcome_url_send_nothing(
    parts: tuple[LeadStore, Outbox, OutcomeSender], crm: CRM
) -> None:
    store, outbox, sender = parts
    completed_lead(store, "lsq:abc-1", "lsq")
    completed_lead(store, "quiet:1", "quiet")
    assert not outbox.notify("quiet:1", kind="lead.completed", call=CALL)
    assert not outbox.notify("nobody", kind="lead.completed", call=CALL)
    outbox.notify("lsq:abc-1", kind="lead.completed", call=CALL)
    assert sender.run("lsq:abc-1") == Sent.DELIVERED
    assert crm.bodies() == [{"ProspectID": "abc-1", "Activity": {"Note": "Interested after 42 s"}}]
    assert str(crm.requests[0].url) == HOOK + "/lsq"


def test_a_missing_secret_is_a_dead_outcome_not_an_unsigned_send(
    parts: tuple[LeadStore, Outbox, OutcomeSender], crm: CRM, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, outbox, sender = parts
    completed_lead(store, "hubspot:5", "hubspot")
    outbox.notify("hubspot:5", kind="lead.completed", call=CALL)
    monkeypatch.delenv("OUTCOME_SECRET")
    assert sender.run("hubspot:5") == Sent.DEAD and crm.requests == []
