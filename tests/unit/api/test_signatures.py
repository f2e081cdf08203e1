"""Webhook signatures: Standard Webhooks 1.0 (incl. the official test vector) and GitHub."""

from __future__ import annotations

import base64

import pytest

from router.api.signatures import (
    SignatureError,
    WebhookVerifier,
    parse_secrets,
    sign_github,
    sign_standard,
)

NOW = 1_700_000_000
BODY = b'{"id": "lead-1", "number": "+15550100"}'
OLD = b"old-secret-key-0123456789abcdef"
NEW = b"new-secret-key-fedcba9876543210"
GITHUB = b"github-secret"


def std_headers(
    *, secret: bytes = NEW, msg_id: str = "msg_1", ts: int = NOW, body: bytes = BODY
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign_standard(secret=secret, msg_id=msg_id, timestamp=ts, body=body),
    }


def verifier(*secrets: bytes, github: bytes | None = None, tolerance: int = 300) -> WebhookVerifier:
    return WebhookVerifier(standard_secrets=secrets, github_secret=github, tolerance_seconds=tolerance)


def reason_of(v: WebhookVerifier, headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> str:
    with pytest.raises(SignatureError) as info:
        v.verify(headers=headers, body=body, now=now)
    return info.value.reason


# --- official vector -------------------------------------------------------------------------------


def test_standard_webhooks_official_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    msg_id, ts, body = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    [key] = parse_secrets(secret)
    assert sign_standard(secret=key, msg_id=msg_id, timestamp=ts, body=body) == expected
    v = WebhookVerifier.from_config(standard_secrets=secret, github_secret=None)
    headers = {"Webhook-Id": msg_id, "Webhook-Timestamp": str(ts), "Webhook-Signature": expected}
    assert v.verify(headers=headers, body=body, now=ts + 10) == msg_id
    assert reason_of(v, headers, body + b" ", now=ts) == "no signature matched"


# --- Standard Webhooks -----------------------------------------------------------------------------


def test_valid_returns_webhook_id_and_headers_are_case_insensitive() -> None:
    headers = {k.upper(): val for k, val in std_headers(msg_id="msg_abc").items()}
    assert verifier(NEW).verify(headers=headers, body=BODY, now=NOW) == "msg_abc"


def test_unsigned_request_is_refused_when_secrets_are_configured() -> None:
    assert reason_of(verifier(NEW), {}) == "unsigned request"
    assert reason_of(verifier(NEW), {"x-hub-signature-256": sign_github(secret=GITHUB, body=BODY)}) == (
        "unsigned request"
    )


def test_disabled_verifier_passes_everything() -> None:
    v = verifier()
    assert not v.enabled
    assert v.verify(headers={}, body=BODY, now=NOW) is None
    assert v.verify(headers=std_headers(secret=b"whatever"), body=b"x", now=0) is None


def test_tampered_body_and_wrong_secret_fail() -> None:
    assert reason_of(verifier(NEW), std_headers(), body=BODY.replace(b"lead-1", b"lead-2")) == (
        "no signature matched"
    )
    assert reason_of(verifier(NEW), std_headers(secret=b"not-the-secret")) == "no signature matched"


def test_signed_id_and_timestamp_cannot_be_swapped() -> None:
    headers = std_headers(msg_id="msg_1")
    assert reason_of(verifier(NEW), {**headers, "webhook-id": "msg_2"}) == "no signature matched"
    assert reason_of(verifier(NEW), {**headers, "webhook-timestamp": str(NOW + 1)}) == "no signature matched"


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (300, True), (-301, False), (301, False)])
def test_timestamp_tolerance_boundary(offset: int, ok: bool) -> None:
    headers = std_headers(ts=NOW + offset)
    if ok:
        assert verifier(NEW).verify(headers=headers, body=BODY, now=NOW) == "msg_1"
    else:
        assert reason_of(verifier(NEW), headers) == "timestamp outside tolerance"


def test_tolerance_is_configurable_and_now_defaults_to_the_clock() -> None:
    assert reason_of(verifier(NEW, tolerance=10), std_headers(ts=NOW - 11)) == "timestamp outside tolerance"
    assert verifier(NEW, tolerance=10).verify(headers=std_headers(ts=NOW - 10), body=BODY, now=NOW) == "msg_1"
    with pytest.raises(SignatureError, match="timestamp outside tolerance"):
        verifier(NEW).verify(headers=std_headers(ts=NOW), body=BODY)  # the real clock is years later


def test_rotation_old_and_new_secret_each_pass_removed_one_fails() -> None:
    during = verifier(OLD, NEW)
    assert during.verify(headers=std_headers(secret=OLD), body=BODY, now=NOW) == "msg_1"
    assert during.verify(headers=std_headers(secret=NEW), body=BODY, now=NOW) == "msg_1"
    after = verifier(NEW)
    assert reason_of(after, std_headers(secret=OLD)) == "no signature matched"


def test_multiple_signature_entries_any_match_passes() -> None:
    old_entry = std_headers(secret=OLD)["webhook-signature"]
    new_entry = std_headers(secret=NEW)["webhook-signature"]
    headers = {**std_headers(), "webhook-signature": f"{old_entry} {new_entry}"}
    assert verifier(NEW).verify(headers=headers, body=BODY, now=NOW) == "msg_1"
    assert verifier(OLD).verify(headers=headers, body=BODY, now=NOW) == "msg_1"
    assert reason_of(verifier(b"third-secret"), headers) == "no signature matched"


def test_other_versions_and_garbage_entries_are_ignored() -> None:
    good = std_headers()["webhook-signature"]
    digest = good.split(",", 1)[1]
    noisy = f"v1a,{digest} garbage v1,!!!notbase64 v1,{base64.b64encode(b'short').decode()} {good}"
    assert verifier(NEW).verify(headers={**std_headers(), "webhook-signature": noisy}, body=BODY, now=NOW)
    # The right digest under another version prefix does not count.
    only_other = {**std_headers(), "webhook-signature": f"v2,{digest} v1a,{digest}"}
    assert reason_of(verifier(NEW), only_other) == "no v1 signature in webhook-signature header"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"webhook-timestamp": "12.5"}, "invalid webhook-timestamp header"),
        ({"webhook-timestamp": "-1700000000"}, "invalid webhook-timestamp header"),
        ({"webhook-timestamp": "1_700_000_000"}, "invalid webhook-timestamp header"),
        ({"webhook-timestamp": "soon"}, "invalid webhook-timestamp header"),
        ({"webhook-timestamp": ""}, "missing webhook-timestamp header"),
        ({"webhook-id": ""}, "missing webhook-id header"),
        ({"webhook-id": "has space"}, "invalid webhook-id header"),
        ({"webhook-signature": ""}, "no v1 signature in webhook-signature header"),
        ({"webhook-signature": "v1,"}, "no v1 signature in webhook-signature header"),
        ({"webhook-signature": "v1,%%%%"}, "no v1 signature in webhook-signature header"),
        ({"webhook-signature": "just-garbage"}, "no v1 signature in webhook-signature header"),
    ],
)
def test_malformed_headers(change: dict[str, str], reason: str) -> None:
    assert reason_of(verifier(NEW), {**std_headers(), **change}) == reason


def test_missing_id_or_timestamp_header() -> None:
    headers = std_headers()
    del headers["webhook-id"]
    assert reason_of(verifier(NEW), headers) == "missing webhook-id header"
    headers = std_headers()
    del headers["webhook-timestamp"]
    assert reason_of(verifier(NEW), headers) == "missing webhook-timestamp header"


def test_reasons_never_leak_secrets_or_expected_signatures() -> None:
    headers = std_headers(secret=b"wrong")
    expected = std_headers()["webhook-signature"]
    err_reason = reason_of(verifier(NEW), headers)
    for secret_like in (NEW.decode(), expected, expected.split(",", 1)[1]):
        assert secret_like not in err_reason
    assert repr(verifier(NEW, github=GITHUB)) == "WebhookVerifier(tolerance_seconds=300)"


# --- GitHub ----------------------------------------------------------------------------------------


def test_github_valid_invalid_and_missing_prefix() -> None:
    v = verifier(github=GITHUB)
    good = sign_github(secret=GITHUB, body=BODY)
    assert good.startswith("sha256=") and len(good) == 7 + 64
    assert v.verify(headers={"X-Hub-Signature-256": good}, body=BODY, now=NOW) is None
    upper_hex = "sha256=" + good.removeprefix("sha256=").upper()
    assert v.verify(headers={"X-Hub-Signature-256": upper_hex}, body=BODY) is None
    assert reason_of(v, {"X-Hub-Signature-256": good}, body=BODY + b"!") == "no signature matched"
    wrong = sign_github(secret=b"other", body=BODY)
    assert reason_of(v, {"X-Hub-Signature-256": wrong}) == "no signature matched"
    assert reason_of(v, {"X-Hub-Signature-256": good.removeprefix("sha256=")}) == (
        "malformed X-Hub-Signature-256 header"
    )
    assert reason_of(v, {"X-Hub-Signature-256": "sha1=" + good[7:]}) == "malformed X-Hub-Signature-256 header"
    assert reason_of(v, {"X-Hub-Signature-256": "sha256=zz"}) == "malformed X-Hub-Signature-256 header"
    assert reason_of(v, {"X-Hub-Signature-256": good[:-2]}) == "no signature matched"
    assert reason_of(v, {}) == "unsigned request"


def test_standard_takes_precedence_when_both_are_configured_and_present() -> None:
    v = verifier(NEW, github=GITHUB)
    github_only = {"x-hub-signature-256": sign_github(secret=GITHUB, body=BODY)}
    assert v.verify(headers=github_only, body=BODY, now=NOW) is None
    both_bad_standard = {**std_headers(secret=b"wrong"), **github_only}
    assert reason_of(v, both_bad_standard) == "no signature matched"
    assert v.verify(headers={**std_headers(), **github_only}, body=BODY, now=NOW) == "msg_1"


# --- secrets ---------------------------------------------------------------------------------------


def test_parse_secrets_whsec_raw_separators_and_duplicates() -> None:
    key = b"\x00\x01binary-key\xff"
    encoded = "whsec_" + base64.b64encode(key).decode()
    assert parse_secrets(f"{encoded}, plain-secret  {encoded},") == [key, b"plain-secret"]
    assert parse_secrets("") == []
    assert parse_secrets(" , ") == []
    assert parse_secrets("whsec_" + base64.b64encode(key).decode().rstrip("=")) == [key]  # padding optional


@pytest.mark.parametrize("bad", ["whsec_not*base64!", "whsec_", "whsec_QQ=Q"])
def test_parse_secrets_rejects_malformed_whsec_without_echoing(bad: str) -> None:
    with pytest.raises(ValueError, match="webhook secret #2") as info:
        parse_secrets(f"ok-secret,{bad}")
    payload = bad.removeprefix("whsec_")
    assert not payload or payload not in str(info.value)


def test_empty_secrets_and_negative_tolerance_are_refused() -> None:
    with pytest.raises(ValueError):
        WebhookVerifier(standard_secrets=[b""], github_secret=None)
    with pytest.raises(ValueError):
        WebhookVerifier(standard_secrets=[], github_secret=b"")
    with pytest.raises(ValueError):
        WebhookVerifier(standard_secrets=[NEW], github_secret=None, tolerance_seconds=-1)


def test_from_config() -> None:
    v = WebhookVerifier.from_config(
        standard_secrets="plain-a plain-b", github_secret="gh", tolerance_seconds=60
    )
    assert v.enabled and v.standard_secrets == (b"plain-a", b"plain-b") and v.github_secret == b"gh"
    assert v.tolerance_seconds == 60
    assert not WebhookVerifier.from_config(standard_secrets=None, github_secret="").enabled
