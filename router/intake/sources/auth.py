"""Per-source authentication: shared tokens (header or URL), HTTP basic, Standard Webhooks, HubSpot v1/v2/v3,
Meta's `X-Hub-Signature-256` (and its subscription check), and Salesforce's organisation id.

HubSpot (https://developers.hubspot.com/docs/api/webhooks/validating-requests):

    v1  X-HubSpot-Signature    = hex SHA-256(client secret + body)
    v2  X-HubSpot-Signature    = hex SHA-256(client secret + method + URI + body)   (X-HubSpot-Signature-Version: v2)
    v3  X-HubSpot-Signature-v3 = base64 HMAC-SHA256(client secret, method + URI + body + timestamp),
        X-HubSpot-Request-Timestamp in ms, refused when further than the tolerance from now.

The URI is the one the CRM called: behind a proxy the router rebuilds it from `ROUTER_PUBLIC_URL`. Every
comparison is constant time; `SourceAuthError.reason` never holds a secret or an expected value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from config.sources_models import SourceAuth
from router.api.signatures import SignatureError, WebhookVerifier

__all__ = [
    "RequestFacts", "SourceAuthError", "authenticate", "check_payload", "meta_challenge", "sign_hubspot", "sign_meta",
]

#: HubSpot v3 decodes these in the URI before signing.
_V3_DECODED = ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A", "%2C", "%3B")


class SourceAuthError(Exception):
    """The request does not prove it comes from the source's CRM. `reason` is safe to answer and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What authentication looks at: the method, the public URL called, headers (lower-case), query, raw body."""

    method: str
    url: str
    headers: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes


def _same(given: str | bytes, expected: str | bytes) -> bool:
    left = given.encode() if isinstance(given, str) else given
    right = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(left, right)


def authenticate(auth: SourceAuth | Literal["none"], request: RequestFacts, *, now: float | None = None) -> str | None:
    """Verify one request; returns a verified delivery id (Standard Webhooks' `webhook-id`) when there is one."""
    if auth == "none" or auth.scheme in ("none", "salesforce"):
        return None  # salesforce: checked on the payload (check_payload)
    secret = auth.secret()
    if secret is None:
        raise SourceAuthError("the source's secret is not configured")
    moment = time.time() if now is None else now
    if auth.scheme == "token":
        given = request.headers.get(auth.header.lower(), "") if auth.header else request.query.get(auth.query or "", "")
        if not given:
            raise SourceAuthError("missing token")
        if not _same(given.strip(), secret):
            raise SourceAuthError("wrong token")
        return None
    if auth.scheme == "basic":
        _basic(request.headers.get("authorization", ""), username=auth.username or "", password=secret)
        return None
    if auth.scheme == "standard_webhooks":
        verifier = WebhookVerifier.from_config(
            standard_secrets=secret, github_secret=None, tolerance_seconds=auth.tolerance_seconds
        )
        try:
            return verifier.verify(headers=request.headers, body=request.body, now=moment)
        except SignatureError as exc:
            raise SourceAuthError(exc.reason) from None
    if auth.scheme == "meta":
        given = request.headers.get("x-hub-signature-256", "").strip()
        if not given:
            raise SourceAuthError("unsigned request")
        if not _same(given.lower(), sign_meta(secret=secret, body=request.body)):
            raise SourceAuthError("no signature matched")
        return None
    _hubspot(auth, secret=secret, request=request, now=moment)
    return None


def sign_meta(*, secret: str, body: bytes) -> str:
    """Meta's `X-Hub-Signature-256`: `sha256=` and the hex HMAC-SHA256 of the raw body with the app secret.

    https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads
    """
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_CHALLENGE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def meta_challenge(auth: SourceAuth | Literal["none"], query: Mapping[str, str]) -> str:
    """The `hub.challenge` to echo when Meta's subscription check names the right verify token.

    https://developers.facebook.com/docs/graph-api/webhooks/getting-started#verification-requests
    """
    if auth == "none" or auth.scheme != "meta" or not auth.verify_token_env:
        raise SourceAuthError("this source answers no subscription check")
    expected = os.environ.get(auth.verify_token_env) or ""
    if query.get("hub.mode") != "subscribe" or not expected:
        raise SourceAuthError("not a subscription check")
    if not _same(query.get("hub.verify_token", ""), expected):
        raise SourceAuthError("wrong verify token")
    challenge = query.get("hub.challenge", "")
    if not _CHALLENGE.match(challenge):
        raise SourceAuthError("missing or malformed hub.challenge")
    return challenge


def check_payload(auth: SourceAuth | Literal["none"], payload: Any) -> None:
    """Checks on the decoded payload: a Salesforce Outbound Message must come from the configured organisation."""
    if auth == "none" or auth.scheme != "salesforce":
        return
    given = payload.get("OrganizationId") if isinstance(payload, Mapping) else None
    expected = auth.organization_id or ""
    if not isinstance(given, str) or not given:
        raise SourceAuthError("no OrganizationId in the message")
    # Salesforce writes ids in 15- or 18-character form; the first 15 characters are the id itself.
    if not _same(given[:15], expected[:15]):
        raise SourceAuthError("message from another Salesforce organisation")


def _basic(header: str, *, username: str, password: str) -> None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise SourceAuthError("missing basic credentials")
    try:
        user, sep, given = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise SourceAuthError("malformed basic credentials") from None
    # Both compared, always: the time taken does not say which one was wrong.
    ok = _same(user, username) & _same(given, password)
    if not sep or not ok:
        raise SourceAuthError("wrong basic credentials")


def sign_hubspot(*, version: str, secret: str, method: str, url: str, body: bytes, timestamp_ms: int = 0) -> str:
    """The signature HubSpot sends for a request (v1 and v2 hex, v3 base64)."""
    if version == "v1":
        return hashlib.sha256(secret.encode() + body).hexdigest()
    if version == "v2":
        return hashlib.sha256(secret.encode() + method.encode() + url.encode() + body).hexdigest()
    uri = url
    for encoded in _V3_DECODED:
        uri = uri.replace(encoded, unquote(encoded)).replace(encoded.lower(), unquote(encoded))
    content = method.encode() + uri.encode() + body + str(timestamp_ms).encode()
    return base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()


def _hubspot(auth: SourceAuth, *, secret: str, request: RequestFacts, now: float) -> None:
    headers = request.headers
    if "x-hubspot-signature-v3" in headers and "v3" in auth.versions:
        raw = headers.get("x-hubspot-request-timestamp", "").strip()
        if not raw.isdigit() or len(raw) > 16:
            raise SourceAuthError("missing or invalid X-HubSpot-Request-Timestamp")
        if abs(now * 1000 - int(raw)) > auth.tolerance_seconds * 1000:
            raise SourceAuthError("timestamp outside tolerance")
        expected = sign_hubspot(
            version="v3", secret=secret, method=request.method, url=request.url, body=request.body,
            timestamp_ms=int(raw),
        )
        if not _same(headers["x-hubspot-signature-v3"].strip(), expected):
            raise SourceAuthError("no signature matched")
        return
    given = headers.get("x-hubspot-signature", "").strip()
    if not given:
        raise SourceAuthError("unsigned request")
    version = headers.get("x-hubspot-signature-version", "v1").strip().lower()
    if version not in ("v1", "v2") or version not in auth.versions:
        raise SourceAuthError(f"signature version {version[:8]!r} is not accepted")
    expected = sign_hubspot(version=version, secret=secret, method=request.method, url=request.url, body=request.body)
    if not _same(given.lower(), expected):
        raise SourceAuthError("no signature matched")
