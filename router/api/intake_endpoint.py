"""`POST /v1/leads`, the hot path: what a posted lead gets, and a pure-ASGI way to serve it.

`answer_lead` is the endpoint's logic as a plain function: the content type, the signature, the JSON, the
lead's validation, then one Redis call that records and queues it; it returns the status and JSON body to
send, errors included (415, 401, 422, 409, 503). The FastAPI route (router/api/routes/leads.py) returns its
answer, and documents the endpoint in the OpenAPI schema.

`IntakeEndpoint` serves the same answers without FastAPI's routing, dependency solving and exception
middleware around them — at thousands of leads a second those cost as much as the work itself. It sits among
the app's own middlewares, inside the request log and the body limits (so every request is still logged,
bounded and timed out), and takes only `POST /v1/leads`; every other request goes on to FastAPI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

import redis
import structlog
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from router.api.deps import Intake
from router.api.schemas import LeadIn
from router.api.signatures import SignatureError
from router.intake.lead_intake import EnqueueFailed, IntakeConflict, UnknownPool, accept_lead, take_lead
from workers.json_input import loads_untrusted

__all__ = ["LEADS_PATH", "IntakeEndpoint", "LeadAnswer", "answer_lead", "refused_media", "render"]


LEADS_PATH = "/v1/leads"
log = structlog.get_logger(__name__)


class LeadAnswer(NamedTuple):
    status: int
    body: dict[str, Any]


def _problem(status: int, detail: Any) -> LeadAnswer:
    return LeadAnswer(status, {"detail": detail})


async def answer_lead(intake: Intake, *, headers: Mapping[str, str], body: bytes) -> LeadAnswer:
    """Take one posted lead: verify the signature (if configured), validate, record, enqueue; 202 once kept.

    The content type is the caller's to check first (`refused_media`), before reading the body.
    """
    try:
        webhook_id = intake.verifier.verify(headers=headers, body=body)
    except SignatureError as exc:
        log.warning("webhook_signature_rejected", reason=exc.reason)  # the only trace a refusal leaves
        return _problem(401, f"webhook signature rejected: {exc.reason}")
    parsed = _parse(body)
    if isinstance(parsed, LeadAnswer):
        return parsed
    lead = parsed
    structlog.contextvars.bind_contextvars(lead_id=lead.id)
    services, door = intake.services, intake.door
    try:
        if door.queues_itself:
            request_id = structlog.contextvars.get_contextvars().get("request_id") or ""
            result = await accept_lead(
                lead, door=door, source="api", pools=services.pool_names, agents=services.agent_names,
                webhook_id=webhook_id, request_id=request_id,
            )
        else:  # the broker is elsewhere: publish through Celery, off the event loop
            result = await run_in_threadpool(
                take_lead, lead, store=services.store, enqueue=intake.enqueue, source="api",
                pools=services.pool_names, agents=services.agent_names, webhook_id=webhook_id,
            )
    except UnknownPool as exc:
        return _problem(422, str(exc))
    except IntakeConflict as exc:
        return _problem(409, str(exc))
    except EnqueueFailed:
        return _problem(503, "the lead is recorded but the queue is unreachable; retry the same request later")
    except redis.RedisError as exc:
        log.error("redis_unavailable", error=type(exc).__name__, path=LEADS_PATH)
        return _problem(503, "storage (Redis) is unavailable; retry the same request later")
    status = 200 if result.duplicate else 202
    return LeadAnswer(status, {"id": result.id, "status": result.status, "duplicate": result.duplicate})


def refused_media(content_type: str | None) -> LeadAnswer | None:
    """Only `application/json` and `application/<anything>+json` (parameters such as charset allowed): 415."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return None
    return _problem(
        415, f"a lead must be sent as JSON with content-type application/json (got {media[:100] or 'none'!r})"
    )


def _parse(body: bytes) -> LeadIn | LeadAnswer:
    """The lead, or the 422 to answer."""
    if not body.strip():
        return _problem(422, "the request body is empty: send a JSON lead")
    try:
        data = loads_untrusted(body)
    except ValueError as exc:
        return _problem(422, f"malformed JSON: {exc}")
    try:
        return LeadIn.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return _problem(422, errors)


def render(answer: LeadAnswer) -> bytes:
    """The body as Starlette's `JSONResponse` renders it."""
    return json.dumps(answer.body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


class IntakeEndpoint:
    """Pure-ASGI middleware: serves `POST /v1/leads` with `answer_lead`; passes everything else on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        intake: Intake | None = getattr(scope["app"].state, "intake", None) if "app" in scope else None
        if (
            intake is None or scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != LEADS_PATH
        ):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        answer = refused_media(headers.get("content-type"))  # before a byte of the body is read
        if answer is None:
            body = await _read_body(receive)
            if body is None:
                return  # the client left (or the body limits refused the body and answered): nothing to send
            answer = await answer_lead(intake, headers=headers, body=body)
        content = render(answer)
        await send({
            "type": "http.response.start",
            "status": answer.status,
            "headers": [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")],
        })
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
