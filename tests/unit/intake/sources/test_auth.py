"""Each source authentication scheme: good, tampered, stale and missing credentials."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest

from config.sources_models import SourceAuth
from router.api.signatures import sign_standard
from router.intake.sources.auth import (
    RequestFacts,
    SourceAuthError,
    authenticate,
    check_payload,
    meta_challenge,
    sign_hubspot,
    sign_meta,
)

URL = "https://router.example/v1/sources/hs?portal=62515"
BODY = b'{"vid": 1}'
SECRET = "client-secret-123"
NOW = 1_764_500_000.0


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRC_SECRET", SECRET)


def request(headers: dict[str, str] | None = None, *, query: dict[str, str] | None = None,
            body: bytes = BODY) -> RequestFacts:
    return RequestFacts(method="POST", url=URL, headers={k.lower(): v for k, v in (headers or {}).items()},
                        query=query or {}, body=body)


def auth(**config: Any) -> SourceAuth:
    return SourceAuth.model_validate({"secret_env": "SRC_SECRET", **config})


def refused(scheme: SourceAuth, facts: RequestFacts, reason: str) -> None:
    with pytest.raises(SourceAuthError, match=reason):
        authenticate(scheme, facts, now=NOW)


def test_token_in_a_header() -> None:
    scheme = auth(scheme="token", header="x-api-key")
    assert authenticate(scheme, request({"X-Api-Key": SECRET}), now=NOW) is None
    refused(scheme, request({"X-Api-Key": SECRET + "x"}), "wrong token")
    refused(scheme, request(), "missing token")


def test_token_in_the_url() -> None:
    scheme = auth(scheme="token", query="token")
    assert authenticate(scheme, request(query={"token": SECRET}), now=NOW) is None
    refused(scheme, request(query={"token": "guess"}), "wrong token")
    refused(scheme, request({"token": SECRET}), "missing token")  # a header is not the URL


def test_basic() -> None:
    scheme = auth(scheme="basic", username="pipedrive")

    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    assert authenticate(scheme, request(basic("pipedrive", SECRET)), now=NOW) is None
    refused(scheme, request(basic("pipedrive", "nope")), "wrong basic credentials")
    refused(scheme, request(basic("someone", SECRET)), "wrong basic credentials")
    refused(scheme, request({"Authorization": "Basic !!!"}), "malformed")
    refused(scheme, request(), "missing basic credentials")


def test_standard_webhooks() -> None:
    scheme = auth(scheme="standard_webhooks")
    stamp = int(NOW)
    signature = sign_standard(secret=SECRET.encode(), msg_id="msg_1", timestamp=stamp, body=BODY)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(stamp), "webhook-signature": signature}
    assert authenticate(scheme, request(headers), now=NOW) == "msg_1"
    refused(scheme, request(headers, body=BODY + b" "), "no signature matched")
    refused(scheme, request({**headers, "webhook-timestamp": str(stamp - 600)}), "timestamp outside tolerance")
    refused(scheme, request(), "unsigned request")


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_hubspot_v1_and_v2(version: str) -> None:
    scheme = auth(scheme="hubspot")
    signature = sign_hubspot(version=version, secret=SECRET, method="POST", url=URL, body=BODY)
    headers = {"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": version}
    assert authenticate(scheme, request(headers), now=NOW) is None
    refused(scheme, request(headers, body=b'{"vid": 2}'), "no signature matched")
    refused(scheme, request(), "unsigned request")
    refused(auth(scheme="hubspot", versions=["v3"]), request(headers), "not accepted")


def test_hubspot_v2_signs_the_uri() -> None:
    scheme = auth(scheme="hubspot")
    signature = sign_hubspot(version="v2", secret=SECRET, method="POST", url=URL + "&x=1", body=BODY)
    refused(scheme, request({"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": "v2"}),
            "no signature matched")


def test_hubspot_v3_with_its_timestamp_window() -> None:
    scheme = auth(scheme="hubspot")
    stamp = int(NOW * 1000)
    signature = sign_hubspot(version="v3", secret=SECRET, method="POST", url=URL, body=BODY, timestamp_ms=stamp)
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": str(stamp)}
    assert authenticate(scheme, request(headers), now=NOW) is None
    refused(scheme, request(headers, body=b"{}"), "no signature matched")
    refused(scheme, request({**headers, "X-HubSpot-Request-Timestamp": str(stamp - 1)}), "no signature matched")
    stale = int((NOW - 301) * 1000)
    stale_signature = sign_hubspot(version="v3", secret=SECRET, method="POST", url=URL, body=BODY, timestamp_ms=stale)
    refused(scheme, request({"X-HubSpot-Signature-v3": stale_signature, "X-HubSpot-Request-Timestamp": str(stale)}),
            "timestamp outside tolerance")
    refused(scheme, request({"X-HubSpot-Signature-v3": signature}), "X-HubSpot-Request-Timestamp")


def test_hubspot_v3_decodes_the_listed_characters_in_the_uri() -> None:
    encoded = "https://router.example/v1/sources/hs?next=%2Fa%3Ab"
    decoded = "https://router.example/v1/sources/hs?next=/a:b"
    stamp = int(time.time() * 1000)
    assert sign_hubspot(version="v3", secret=SECRET, method="POST", url=encoded, body=BODY, timestamp_ms=stamp) == \
        sign_hubspot(version="v3", secret=SECRET, method="POST", url=decoded, body=BODY, timestamp_ms=stamp)


def test_salesforce_organisation_id() -> None:
    scheme = SourceAuth(scheme="salesforce", organization_id="00D5g000004ABCDEAA")
    assert authenticate(scheme, request(), now=NOW) is None
    check_payload(scheme, {"OrganizationId": "00D5g000004ABCDEAA"})
    check_payload(scheme, {"OrganizationId": "00D5g000004ABCD"})  # the 15-character form
    with pytest.raises(SourceAuthError, match="another Salesforce organisation"):
        check_payload(scheme, {"OrganizationId": "00D5g000004ZZZZEAA"})
    with pytest.raises(SourceAuthError, match="no OrganizationId"):
        check_payload(scheme, {})


def test_an_unset_secret_refuses_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRC_SECRET")
    refused(auth(scheme="token", header="x-api-key"), request({"x-api-key": ""}), "not configured")


def test_reasons_never_hold_the_secret() -> None:
    scheme = auth(scheme="token", header="x-api-key")
    with pytest.raises(SourceAuthError) as caught:
        authenticate(scheme, request({"x-api-key": SECRET[:-1]}), now=NOW)
    assert SECRET[:-1] not in caught.value.reason


def test_meta_signature_256() -> None:
    scheme = auth(scheme="meta", verify_token_env="SRC_SECRET")
    good = sign_meta(secret=SECRET, body=BODY)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert authenticate(scheme, request({"X-Hub-Signature-256": good}), now=NOW) is None
    refused(scheme, request({"X-Hub-Signature-256": good}, body=BODY + b" "), "no signature matched")
    refused(scheme, request({"X-Hub-Signature-256": sign_meta(secret="other", body=BODY)}), "no signature matched")
    refused(scheme, request(), "unsigned request")


def test_meta_subscription_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("META_VERIFY", "verify-me-42")
    scheme = auth(scheme="meta", verify_token_env="META_VERIFY")
    check = {"hub.mode": "subscribe", "hub.verify_token": "verify-me-42", "hub.challenge": "1158201444"}
    assert meta_challenge(scheme, check) == "1158201444"
    for bad, reason in (({**check, "hub.verify_token": "guess"}, "wrong verify token"),
                        ({**check, "hub.mode": "unsubscribe"}, "not a subscription check"),
                        ({**check, "hub.challenge": "<script>"}, "malformed hub.challenge")):
        with pytest.raises(SourceAuthError, match=reason):
            meta_challenge(scheme, bad)
    with pytest.raises(SourceAuthError, match="answers no subscription check"):
        meta_challenge(auth(scheme="token", query="token"), check)
    with pytest.raises(ValueError, match="verify_token_env"):
        auth(scheme="meta")
