"""The Ryng client: post one lead as a one-row campaign (or a batch as one campaign) and classify what happened.

`RyngClient.create_campaign` never raises for HTTP or network trouble; it returns a `RyngResult` whose
`outcome` tells the caller what to do:

    ACCEPTED      2xx without `"error": true` (a 2xx with a non-JSON body counts too)
    RETRY         5xx, 429, 408, a 2xx with `"error": true`, or a request that was never sent
                  (ConnectError, ConnectTimeout, PoolTimeout): back off and resend
    UNAUTHORIZED  401/403, or `"error": true` with a message mentioning "Unauthorized": pause delivery
    REJECTED      any other 4xx, or a 3xx (redirects are not followed): dead-letter with the response
    AMBIGUOUS     the request may have reached Ryng but no verdict came back (ReadTimeout, WriteTimeout,
                  RemoteProtocolError, ReadError, ...): resend and flag a possible duplicate

Bodies are parsed tolerantly (at most 64 KiB is read; invalid or non-object JSON is fine) and kept raw,
truncated to 2000 characters. The access token goes only into the `x-access-token` header: it is not in
`repr()`, not logged, and is scrubbed from any text returned in a `RyngResult`.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from types import TracebackType
from typing import Literal

import httpx
import structlog

from workers.ryng.payload import BatchRequest, CampaignRequest, assign_slots, prepare_body
from workers.tls import tls_context

__all__ = [
    "CAMPAIGN_PATH",
    "BatchRequest",
    "CampaignRequest",
    "Outcome",
    "RyngClient",
    "RyngResult",
    "assign_slots",
    "classify",
    "parse_retry_after",
]

CAMPAIGN_PATH = "campaign"  # relative: joined onto base_url (e.g. https://acme.ryng.in/rest-api/v1)
USER_AGENT = "lead-router/0.1"
MAX_BODY_CHARS = 2000
MAX_READ_BYTES = 64 * 1024
CONNECT_TIMEOUT_CAP = 3.0
_REDACTED = "[redacted]"

_log = structlog.get_logger(__name__)


class Outcome(StrEnum):
    """What the caller should do with the lead after one attempt."""

    ACCEPTED = "accepted"
    RETRY = "retry"
    UNAUTHORIZED = "unauthorized"
    REJECTED = "rejected"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True, slots=True)
class RyngResult:
    """One attempt's outcome; `body` is raw and truncated, `retry_after` in seconds."""

    outcome: Outcome
    status_code: int | None
    message: str
    body: str
    retry_after: float | None
    elapsed_ms: int
    dropped_fields: tuple[str, ...]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


@dataclass(frozen=True, slots=True)
class _Reply:
    """What could be read from a response body."""

    is_json: bool  # parsed as JSON at all
    is_object: bool
    error: bool
    message: str | None


def _parse_reply(raw: bytes) -> _Reply:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return _Reply(is_json=False, is_object=False, error=False, message=None)
    if not isinstance(data, dict):
        return _Reply(is_json=True, is_object=False, error=False, message=None)
    flag = data.get("error")
    error = flag is True or (isinstance(flag, str) and flag.strip().lower() == "true")
    message = data.get("message")
    return _Reply(
        is_json=True,
        is_object=True,
        error=error,
        message=None if message is None else str(message),
    )


def classify(status: int, raw: bytes) -> tuple[Outcome, str]:
    """The outcome of a response with `status` and body bytes `raw`, and a message for the result."""
    reply = _parse_reply(raw)
    said = reply.message
    if 200 <= status < 300 and not reply.error:
        if not reply.is_json:
            return Outcome.ACCEPTED, said or f"HTTP {status} with a non-JSON body; taken as accepted"
        if not reply.is_object:
            return Outcome.ACCEPTED, f"HTTP {status} with a non-object JSON body; taken as accepted"
        return Outcome.ACCEPTED, said or f"HTTP {status}"
    message = said or f"HTTP {status}" + ("" if reply.is_object else " (no JSON message)")
    if status in (401, 403):
        return Outcome.UNAUTHORIZED, message
    if reply.error and said is not None and "unauthorized" in said.lower():
        return Outcome.UNAUTHORIZED, message
    if 200 <= status < 300:  # "error": true: failure whatever the status (Ryng's 500 text comes as 200 too)
        return Outcome.RETRY, message
    if status in (408, 429) or status >= 500:
        return Outcome.RETRY, message
    if 300 <= status < 400:
        return Outcome.REJECTED, f"{message}; redirect not followed (check RYNG_BASE_URL)"
    return Outcome.REJECTED, message


def _read_capped(response: httpx.Response, *, deadline: float) -> bytes:
    """At most MAX_READ_BYTES (+ one chunk) of the body, before `deadline` (time.monotonic()).

    httpx's read timeout applies to each read, so a body trickled byte by byte could take for ever; past the
    deadline this raises ReadTimeout (after a 2xx status: an ambiguous send). The rest is left unread.
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_READ_BYTES:
            break
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the answer took longer than the request timeout in total")
    return b"".join(chunks)


def _join(base: httpx.URL, path: str) -> httpx.URL:
    """`path` under `base` as a directory (as httpx's `base_url` joins: .../v1 + campaign is .../v1/campaign)."""
    raw = base.raw_path.split(b"?", 1)[0]
    return base.copy_with(raw_path=raw if raw.endswith(b"/") else raw + b"/").join(path)


def proxied_transport(url: httpx.URL) -> httpx.HTTPTransport:
    """A connection pool to `url`'s host, through the proxy the environment names for it (HTTPS_PROXY,
    HTTP_PROXY, ALL_PROXY, with NO_PROXY honoured), as an `httpx.Client` would use."""
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if proxy and not urllib.request.proxy_bypass(url.host):
        return httpx.HTTPTransport(proxy=proxy, verify=tls_context())
    return httpx.HTTPTransport(verify=tls_context())


class RyngClient:
    """One httpx connection pool to Ryng; make one per worker process and close it at shutdown."""

    __slots__ = ("_base_url", "_body_format", "_closed", "_extensions", "_form_agent_field", "_headers", "_secret",
                 "_timeout", "_transport", "_url")

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        timeout: float = 10.0,
        body_format: Literal["json", "form"] = "json",
        form_agent_field: Literal["agents", "agent"] = "agents",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("base_url must be an absolute http(s) URL")
        if not token:
            raise ValueError("token must not be empty")
        if not timeout > 0:
            raise ValueError("timeout must be positive")
        connect = min(CONNECT_TIMEOUT_CAP, timeout / 2)
        self._timeout = httpx.Timeout(timeout, connect=connect, pool=connect)
        self._base_url = str(url)
        self._body_format: Literal["json", "form"] = body_format
        self._form_agent_field: Literal["agents", "agent"] = form_agent_field
        self._secret = token
        self._url = _join(url, CAMPAIGN_PATH)
        self._headers = {"x-access-token": token, "user-agent": USER_AGENT, "accept": "application/json"}
        self._extensions = {"timeout": self._timeout.as_dict()}
        # Straight to the connection pool: no redirects to follow, no auth flow, no cookies to keep, so the client
        # layer of httpx (a third of a request's CPU) has nothing to do.
        self._transport = transport or proxied_transport(url)
        self._closed = False

    def __repr__(self) -> str:
        return f"RyngClient(base_url={self._base_url!r}, body_format={self._body_format!r})"

    @property
    def timeout(self) -> httpx.Timeout:
        return self._timeout

    def create_campaign(self, request: CampaignRequest | BatchRequest) -> RyngResult:
        """POST one lead (or a batch of leads as one campaign); returns a classified result and never raises for
        HTTP or network errors (a closed client raises RuntimeError)."""
        if self._closed:
            raise RuntimeError("the Ryng client is closed")
        prepared = prepare_body(
            request, body_format=self._body_format, form_agent_field=self._form_agent_field
        )
        started = time.perf_counter()
        deadline = time.monotonic() + (self._timeout.read or 0) + (self._timeout.connect or 0)
        status: int | None = None
        retry_after: float | None = None
        try:
            post = httpx.Request(
                "POST", self._url, content=prepared.content, data=prepared.data, files=prepared.files,
                headers=self._headers | prepared.headers, extensions=self._extensions,
            )
            response = self._transport.handle_request(post)
            try:
                response.request = post
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                raw = _read_capped(response, deadline=deadline)
                encoding = response.encoding or "utf-8"
            finally:
                response.close()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            outcome, message, text = Outcome.RETRY, f"not sent: {type(exc).__name__}: {exc}", ""
        except httpx.HTTPError as exc:
            detail = f"{type(exc).__name__}: {exc}"
            if status is not None and not 200 <= status < 300:
                # The status line arrived before the body failed: it is verdict enough.
                outcome, said = classify(status, b"")
                message, text = f"{said}; body unreadable: {detail}", ""
            else:
                outcome, message, text = Outcome.AMBIGUOUS, f"no verdict, may have been sent: {detail}", ""
        else:
            outcome, message = classify(status, raw)
            text = raw.decode(encoding, errors="replace")
        result = RyngResult(
            outcome=outcome,
            status_code=status,
            message=self._scrub(message)[:MAX_BODY_CHARS],
            body=self._scrub(text)[:MAX_BODY_CHARS],
            retry_after=retry_after,
            elapsed_ms=round((time.perf_counter() - started) * 1000),
            dropped_fields=prepared.dropped_fields,
        )
        _log.debug(
            "ryng_create_campaign",
            lead_id=request.lead_id,
            agent=request.agent,
            outcome=result.outcome.value,
            status_code=result.status_code,
            elapsed_ms=result.elapsed_ms,
            dropped_fields=list(result.dropped_fields),
        )
        return result

    def _scrub(self, text: str) -> str:
        """Remove the token should Ryng or an exception ever echo it back."""
        return text.replace(self._secret, _REDACTED) if self._secret in text else text

    def close(self) -> None:
        self._closed = True
        self._transport.close()

    def __enter__(self) -> RyngClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
