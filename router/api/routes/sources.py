"""`/v1/sources/{name}`: a CRM posts its own payload; the source declared in the routing file maps it to leads.

Order: the source by name (404), its authentication over the raw body (401), the body by content type (4xx),
the organisation check (Salesforce), the mapping (422 naming the paths tried; events the filter drops are
answered 2xx and counted), then the one intake (202 once kept; 200 for a known lead, a changed one kept as an
update; 503 when Redis or the broker is away). An event that carries only its record's id, for a source with a
`fetch`, is kept as `fetching` (202) and read from the CRM's API by a worker (`workers/fetch`). Each preset
answers the way its CRM expects (see `answers`). `GET` answers Meta's subscription check for a `meta` source.
"""

from __future__ import annotations

from typing import Any

import redis
import structlog
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from router.api.deps import EnqueueDep, ServicesDep
from router.api.schemas import Problem
from router.intake.lead_intake import EnqueueFailed, UnknownPool
from router.intake.sources import answers
from router.intake.sources.auth import RequestFacts, SourceAuthError, authenticate, check_payload, meta_challenge
from router.intake.sources.decoding import PayloadError, UnsupportedMediaType, decode_body, media_type
from router.intake.sources.intake import Source, book_for, take_payload
from router.intake.sources.mapping import MappingError

router = APIRouter(prefix="/v1/sources", tags=["sources"])
log = structlog.get_logger(__name__)

_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            kind: {"schema": {"type": "object" if kind.endswith(("json", "urlencoded")) else "string"}}
            for kind in ("application/json", "application/x-www-form-urlencoded", "text/plain", "text/xml")
        },
    }
}


def _source(services: ServicesDep, name: str) -> Source:
    source = book_for(services.routing).get(name)
    if source is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no source named {name!r} in the routing file")
    return source


def _public_url(request: Request, public_base: str | None) -> str:
    """The URL the CRM called (signatures cover it): rebuilt on ROUTER_PUBLIC_URL behind a proxy."""
    if public_base is None:
        return str(request.url)
    query = request.url.query
    return f"{public_base}{request.url.path}" + (f"?{query}" if query else "")


@router.head("/{name}", include_in_schema=False)
async def head_source(name: str, services: ServicesDep) -> Response:
    """LeadSquared checks a webhook URL with HEAD."""
    _source(services, name)
    return Response(status_code=200)


@router.get("/{name}", responses={403: {"model": Problem}, 404: {"model": Problem}})
async def verify_subscription(name: str, request: Request, services: ServicesDep) -> Response:
    """Meta's subscription check (`hub.mode=subscribe`, `hub.verify_token`, `hub.challenge`): the challenge echoed."""
    source = _source(services, name)
    try:
        challenge = meta_challenge(source.config.auth, dict(request.query_params))
    except SourceAuthError as exc:
        log.warning("source_subscription_refused", source=name, reason=exc.reason)
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"subscription check refused: {exc.reason}") from None
    return Response(challenge, media_type="text/plain")


@router.post(
    "/{name}",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_BODY,
    responses={
        200: {"description": "known leads (a changed one kept as an update), or events the filter dropped"},
        401: {"model": Problem}, 404: {"model": Problem}, 413: {"model": Problem}, 415: {"model": Problem},
        422: {"model": Problem}, 503: {"model": Problem},
    },
)
async def post_source(name: str, request: Request, services: ServicesDep, enqueue: EnqueueDep) -> Response:
    """Take a CRM's own payload (JSON, form, text/plain JSON, Salesforce SOAP) through the source's mapping."""
    source = _source(services, name)
    preset = source.config.preset
    structlog.contextvars.bind_contextvars(source=name)
    body = await request.body()
    facts = RequestFacts(
        method=request.method, url=_public_url(request, services.settings.router_public_url),
        headers={key.lower(): value for key, value in request.headers.items()},
        query=dict(request.query_params), body=body,
    )
    try:
        authenticate(source.config.auth, facts)
    except SourceAuthError as exc:
        log.warning("source_auth_rejected", reason=exc.reason)
        return answers.refused(preset, 401, f"authentication failed: {exc.reason}")
    try:
        payload = await _payload(request, body)
        check_payload(source.config.auth, payload)
    except UnsupportedMediaType as exc:
        return answers.refused(preset, 415, str(exc))
    except PayloadError as exc:
        return answers.refused(preset, 400 if media_type(request.headers.get("content-type")).endswith("xml")
                               else 422, str(exc))
    except SourceAuthError as exc:
        log.warning("source_auth_rejected", reason=exc.reason)
        return answers.refused(preset, 401, f"authentication failed: {exc.reason}")
    try:
        taken = await run_in_threadpool(
            take_payload, source, payload, store=services.store, enqueue=enqueue, counters=services.counters,
            pools=services.pool_names, agents=services.agent_names, fetches=services.fetch_waits,
        )
    except (MappingError, UnknownPool) as exc:
        log.warning("source_payload_refused", reason=str(exc)[:300])
        return answers.refused(preset, 422, str(exc))
    except EnqueueFailed:
        return answers.unavailable(preset, "the lead is recorded but the queue is unreachable; send it again later")
    except redis.RedisError as exc:  # nothing answered 2xx unless kept: the CRM sends again later
        log.error("redis_unavailable", error=type(exc).__name__)
        return answers.unavailable(preset, "storage (Redis) is unavailable; send it again later")
    return answers.accepted(preset, name, taken)


async def _payload(request: Request, body: bytes) -> Any:
    if media_type(request.headers.get("content-type")) == "multipart/form-data":
        try:
            form = await request.form(max_files=0, max_fields=500)
        except Exception as exc:  # Starlette raises its own errors for a broken multipart body
            raise PayloadError(f"malformed multipart form: {type(exc).__name__}") from None
        values = {key: value for key, value in form.items() if isinstance(value, str)}
        if len(values) != len(form):
            raise PayloadError("file uploads are not taken: send form fields only")
        return values
    return decode_body(body, content_type=request.headers.get("content-type"))
