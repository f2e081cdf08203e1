"""Security over real HTTP: the webhook signature matrix (with secret rotation), admin bearer auth, the callback
secret path, and secrets never leaking into logs, error bodies or the OpenAPI document."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.harness import Stack
from workers.store.connections import connect
from workers.store.keys import Keys

OLD_KEY, NEW_KEY = secrets.token_bytes(24), secrets.token_bytes(24)
OLD_SECRET = "whsec_" + base64.b64encode(OLD_KEY).decode()
NEW_SECRET = "whsec_" + base64.b64encode(NEW_KEY).decode()
GITHUB_SECRET = "gh-" + secrets.token_hex(16)
ADMIN_TOKEN = "adm-" + secrets.token_hex(16)
CALLBACK_SECRET = "cb-" + secrets.token_hex(16)
ALL_SECRETS = [OLD_SECRET, NEW_SECRET, OLD_SECRET[6:], NEW_SECRET[6:], GITHUB_SECRET, ADMIN_TOKEN, CALLBACK_SECRET]


def standard_headers(key: bytes, body: bytes, *, msg_id: str, timestamp: int | None = None) -> dict[str, str]:
    """Standard Webhooks 1.0, computed here independently of router.api.signatures."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(), "content-type": "application/json"}


def github_headers(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"x-hub-signature-256": f"sha256={digest}", "content-type": "application/json"}


def body_of(lead_id: str, number: str = "998314242") -> bytes:
    return json.dumps({"id": lead_id, "number": number}).encode()


@dataclass
class Case:
    name: str
    lead_id: str
    headers: dict[str, str]
    body: bytes
    expected: int


def matrix() -> list[Case]:
    now = int(time.time())
    cases = [
        Case("old secret", "SIGOK01", standard_headers(OLD_KEY, body_of("SIGOK01"), msg_id="msg_1"),
             body_of("SIGOK01"), 202),
        Case("new secret (rotation)", "SIGOK02", standard_headers(NEW_KEY, body_of("SIGOK02"), msg_id="msg_2"),
             body_of("SIGOK02"), 202),
        Case("github", "SIGOK03", github_headers(GITHUB_SECRET, body_of("SIGOK03")), body_of("SIGOK03"), 202),
        Case("unsigned", "SIGBAD01", {"content-type": "application/json"}, body_of("SIGBAD01"), 401),
        Case("tampered body", "SIGBAD02", standard_headers(OLD_KEY, body_of("SIGBAD02"), msg_id="msg_3"),
             body_of("SIGBAD02", "998314999"), 401),
        Case("wrong secret", "SIGBAD03",
             standard_headers(secrets.token_bytes(24), body_of("SIGBAD03"), msg_id="msg_4"), body_of("SIGBAD03"), 401),
        Case("stale", "SIGBAD04", standard_headers(OLD_KEY, body_of("SIGBAD04"), msg_id="msg_5", timestamp=now - 400),
             body_of("SIGBAD04"), 401),
        Case("future", "SIGBAD05", standard_headers(OLD_KEY, body_of("SIGBAD05"), msg_id="msg_6", timestamp=now + 400),
             body_of("SIGBAD05"), 401),
        Case("github wrong secret", "SIGBAD06", github_headers("not-the-secret", body_of("SIGBAD06")),
             body_of("SIGBAD06"), 401),
        Case("github tampered", "SIGBAD07", github_headers(GITHUB_SECRET, body_of("SIGBAD07")),
             body_of("SIGBAD07", "998314999"), 401),
    ]
    both = standard_headers(NEW_KEY, body_of("SIGOK04"), msg_id="msg_7")
    stale_sig = standard_headers(OLD_KEY, b"other", msg_id="msg_7")["webhook-signature"]
    both["webhook-signature"] = f"{stale_sig} {both['webhook-signature']}"  # a sender mid-rotation
    cases.append(Case("two signatures, one valid", "SIGOK04", both, body_of("SIGOK04"), 202))
    other_id = standard_headers(OLD_KEY, body_of("SIGBAD08"), msg_id="msg_8") | {"webhook-id": "msg_other"}
    cases.append(Case("webhook-id swapped", "SIGBAD08", other_id, body_of("SIGBAD08"), 401))
    no_v1 = standard_headers(OLD_KEY, body_of("SIGBAD09"), msg_id="msg_9")
    no_v1["webhook-signature"] = no_v1["webhook-signature"].replace("v1,", "v1a,")
    cases.append(Case("no v1 entry", "SIGBAD09", no_v1, body_of("SIGBAD09"), 401))
    return cases


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    stack = make_stack(
        ROUTER_WEBHOOK_SECRETS=f"{OLD_SECRET},{NEW_SECRET}", ROUTER_GITHUB_WEBHOOK_SECRET=GITHUB_SECRET,
        ROUTER_ADMIN_TOKEN=ADMIN_TOKEN, ROUTER_CALLBACK_SECRET=CALLBACK_SECRET, LOG_LEVEL="DEBUG",
    )
    stack.start_api()
    return stack


def test_signature_matrix_refuses_without_a_trace(stack: Stack) -> None:
    client = connect(stack.redis_url)
    keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
    bodies: list[str] = []
    for case in matrix():
        response = stack.client.post(f"{stack.api_url}/v1/leads", content=case.body, headers=case.headers)
        bodies.append(response.text)
        assert response.status_code == case.expected, (case.name, response.text)
        if case.expected == 401:
            assert "signature" in response.json()["detail"], case.name
    queued = "\n".join(client.lrange("leads", 0, -1))  # type: ignore[arg-type]
    for case in matrix():
        traces = list(client.scan_iter(keys.match(f"*{case.lead_id}*")))
        if case.expected == 202:
            assert traces and f'"lead_id": "{case.lead_id}"' in queued, case.name
            assert stack.lead(case.lead_id)["status"] == "queued"
        else:
            assert traces == [], (case.name, traces)  # no record, no history, no lock
            assert case.lead_id not in queued, case.name  # and nothing queued
            assert stack.client.get(f"{stack.api_url}/v1/leads/{case.lead_id}").status_code == 404
    # The same signed delivery again (a CRM retry) is idempotent.
    first = matrix()[0]
    again = stack.client.post(f"{stack.api_url}/v1/leads", content=first.body, headers=first.headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    refusals = sum(1 for case in matrix() if case.expected == 401)
    assert stack.procs[-1].log().count("webhook_signature_rejected") == refusals  # the one trace they leave
    _assert_no_secret("error bodies", "\n".join(bodies))
    client.close()


def test_admin_and_callback_auth_and_no_secret_leaks(stack: Stack, make_stack: Callable[..., Stack]) -> None:
    api = stack.api_url
    answers: list[httpx.Response] = []
    for path in ("/v1/admin/dead", "/v1/admin/delivery"):
        answers.append(none := stack.client.get(api + path))
        answers.append(wrong := stack.client.get(api + path, headers={"Authorization": "Bearer nope"}))
        answers.append(basic := stack.client.get(api + path, headers={"Authorization": f"Basic {ADMIN_TOKEN}"}))
        right = stack.client.get(api + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert (none.status_code, wrong.status_code, basic.status_code, right.status_code) == (401, 401, 401, 200)
    replay = stack.client.post(api + "/v1/admin/dead/replay", json={"all": True})
    assert replay.status_code == 401

    callback = {"callID": "c1", "event": "agent-connected", "customFields": {"customField8": "nobody"}}
    for kind in ("connect", "terminal"):
        for wrong_secret in ("nope", CALLBACK_SECRET[:-1], CALLBACK_SECRET + "x", CALLBACK_SECRET.upper()):
            answer = stack.client.post(f"{api}/v1/ryng/{wrong_secret}/{kind}", json=callback)
            answers.append(answer)
            assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}
        assert stack.client.post(f"{api}/v1/ryng/{CALLBACK_SECRET}/{kind}", json=callback).status_code == 200

    # Without ROUTER_ADMIN_TOKEN the admin API is off, whatever bearer is sent.
    closed = make_stack(ROUTER_CALLBACK_SECRET=CALLBACK_SECRET)
    closed.start_api()
    off = closed.client.get(closed.api_url + "/v1/admin/dead", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert off.status_code == 403

    documents = [stack.client.get(api + path).text for path in ("/openapi.json", "/docs", "/redoc")]
    assert "/v1/admin/dead" in documents[0] and "/v1/ryng" not in documents[0]
    _assert_no_secret("OpenAPI and docs", "\n".join(documents))
    _assert_no_secret("error bodies", "\n".join(a.text + str(a.headers) for a in answers))
    _assert_no_secret("API logs", stack.logs() + closed.logs())


def _assert_no_secret(where: str, text: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text, f"a secret appears in {where}"
