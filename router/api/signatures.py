"""Webhook signature verification: Standard Webhooks 1.0 and GitHub's `X-Hub-Signature-256`.

Pure logic (no web framework): the route hands over the request headers and the *raw* body bytes.

Standard Webhooks 1.0 (https://www.standardwebhooks.com/)::

    webhook-id: msg_2KWPBgLlAfxdpx2AI54pPJ85f4W        # same across retries: an idempotency hint
    webhook-timestamp: 1674087231                        # unix seconds, accepted within ±tolerance
    webhook-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4= v1,<another>

    signature = base64(HMAC-SHA256(key, f"{id}.{timestamp}.".encode() + raw_body))

Secrets are written `whsec_<base64>`; the HMAC key is the base64-decoded part. A secret *without* the
`whsec_` prefix is taken literally as its UTF-8 bytes (handy for senders that share a plain string).
Several secrets may be configured at once (rotation): a request passes when any secret verifies any `v1`
entry. Entries of other versions (e.g. `v1a`, asymmetric) are ignored.

GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw_body)>`; the secret is used as UTF-8 bytes.

Every comparison is constant time (`hmac.compare_digest`) over the raw digest bytes. Failures raise
`SignatureError`, whose `reason` is short and safe to return to the caller: it never contains a secret or
an expected signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SignatureError",
    "WebhookVerifier",
    "parse_secrets",
    "sign_github",
    "sign_standard",
]

DEFAULT_TOLERANCE_SECONDS = 300
_SECRET_PREFIX = "whsec_"
_STANDARD_HEADER = "webhook-signature"
_GITHUB_HEADER = "x-hub-signature-256"
_TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
_MSG_ID_RE = re.compile(r"[\x21-\x7e]{1,256}")  # printable ASCII, no spaces
_DIGEST_SIZE = hashlib.sha256().digest_size


class SignatureError(Exception):
    """The request's signature is missing, malformed, stale or wrong. `reason` is safe to show."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64decode_strict(value: str) -> bytes:
    """Decode standard base64, refusing stray characters; missing `=` padding is tolerated."""
    if len(value) % 4:
        value += "=" * (-len(value) % 4)
    return base64.b64decode(value, validate=True)


def parse_secrets(value: str) -> list[bytes]:
    """Parse a comma- or whitespace-separated list of secrets into HMAC keys.

    `whsec_<base64>` gives the decoded bytes; anything else is used literally as UTF-8 (so a literal
    secret cannot itself contain a comma or whitespace). Duplicates are dropped, order is kept.
    Raises ValueError naming the position of a malformed `whsec_` secret, never echoing it.
    """
    keys: list[bytes] = []
    tokens = [token for token in re.split(r"[,\s]+", value) if token]
    for position, token in enumerate(tokens, start=1):
        if token.startswith(_SECRET_PREFIX):
            try:
                key = _b64decode_strict(token[len(_SECRET_PREFIX):])
            except (binascii.Error, ValueError):
                message = f"webhook secret #{position}: the part after whsec_ is not valid base64"
                raise ValueError(message) from None
            if not key:
                raise ValueError(f"webhook secret #{position}: whsec_ secret is empty")
        else:
            key = token.encode("utf-8")
        if key not in keys:
            keys.append(key)
    return keys


def _standard_digest(*, secret: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(secret, content, hashlib.sha256).digest()


def sign_standard(*, secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` entry (`v1,<base64>`) a Standard Webhooks sender would send."""
    digest = _standard_digest(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_github(*, secret: bytes, body: bytes) -> str:
    """The `X-Hub-Signature-256` value (`sha256=<hex>`) GitHub would send."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _v1_candidates(header: str) -> list[bytes]:
    """Decoded `v1` signatures from a space-separated header; other versions and garbage are skipped."""
    candidates: list[bytes] = []
    for entry in header.split():
        version, sep, encoded = entry.partition(",")
        if not sep or version != "v1":
            continue
        try:
            raw = _b64decode_strict(encoded)
        except (binascii.Error, ValueError):
            continue
        if len(raw) == _DIGEST_SIZE:
            candidates.append(raw)
    return candidates


@dataclass(frozen=True, slots=True)
class WebhookVerifier:
    """Checks inbound webhooks. With no secret configured, verification is off and `verify` passes."""

    standard_secrets: Sequence[bytes] = field(repr=False)
    github_secret: bytes | None = field(default=None, repr=False)
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS

    def __post_init__(self) -> None:
        if any(not secret for secret in self.standard_secrets) or self.github_secret == b"":
            raise ValueError("webhook secrets must not be empty")
        if self.tolerance_seconds < 0:
            raise ValueError("tolerance_seconds must be >= 0")

    @classmethod
    def from_config(
        cls,
        *,
        standard_secrets: str | None,
        github_secret: str | None,
        tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    ) -> WebhookVerifier:
        """Build from setting strings (`ROUTER_WEBHOOK_SECRETS`, `ROUTER_GITHUB_WEBHOOK_SECRET`)."""
        return cls(
            standard_secrets=tuple(parse_secrets(standard_secrets or "")),
            github_secret=github_secret.encode("utf-8") if github_secret else None,
            tolerance_seconds=tolerance_seconds,
        )

    @property
    def enabled(self) -> bool:
        return bool(self.standard_secrets) or self.github_secret is not None

    def verify(self, *, headers: Mapping[str, str], body: bytes, now: float | None = None) -> str | None:
        """Verify one request; return the (signed) `webhook-id` for Standard Webhooks, else None.

        Standard Webhooks is checked when standard secrets are configured and `webhook-signature` is
        present; otherwise GitHub when its secret is configured and `X-Hub-Signature-256` is present;
        otherwise, if any secret is configured, the request is refused as unsigned.
        """
        lowered = {key.lower(): value for key, value in headers.items()}
        if self.standard_secrets and _STANDARD_HEADER in lowered:
            return self._verify_standard(lowered, body, time.time() if now is None else now)
        if self.github_secret is not None and _GITHUB_HEADER in lowered:
            _verify_github(self.github_secret, lowered[_GITHUB_HEADER], body)
            return None
        if self.enabled:
            raise SignatureError("unsigned request")
        return None

    def _verify_standard(self, headers: Mapping[str, str], body: bytes, now: float) -> str:
        msg_id = headers.get("webhook-id", "").strip()
        if not msg_id:
            raise SignatureError("missing webhook-id header")
        if not _MSG_ID_RE.fullmatch(msg_id):
            raise SignatureError("invalid webhook-id header")
        raw_timestamp = headers.get("webhook-timestamp", "").strip()
        if not raw_timestamp:
            raise SignatureError("missing webhook-timestamp header")
        if not _TIMESTAMP_RE.fullmatch(raw_timestamp):
            raise SignatureError("invalid webhook-timestamp header")
        timestamp = int(raw_timestamp)
        if abs(now - timestamp) > self.tolerance_seconds:
            raise SignatureError("timestamp outside tolerance")
        candidates = _v1_candidates(headers[_STANDARD_HEADER])
        if not candidates:
            raise SignatureError("no v1 signature in webhook-signature header")
        for secret in self.standard_secrets:
            expected = _standard_digest(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)
            # Compare against every candidate: the loop's length does not depend on where a match is.
            matched = False
            for candidate in candidates:
                matched |= hmac.compare_digest(expected, candidate)
            if matched:
                return msg_id
        raise SignatureError("no signature matched")


def _verify_github(secret: bytes, header: str, body: bytes) -> None:
    scheme, sep, hex_digest = header.strip().partition("=")
    if not sep or scheme != "sha256":
        raise SignatureError("malformed X-Hub-Signature-256 header")
    try:
        given = bytes.fromhex(hex_digest)
    except ValueError:
        raise SignatureError("malformed X-Hub-Signature-256 header") from None
    expected = hmac.new(secret, body, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise SignatureError("no signature matched")
