"""`/v1/leads`: take a lead in (202), read its record."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from router.api.deps import EnqueueDep, ServicesDep, StoreDep, VerifierDep
from router.api.records_view import record_view
from router.api.schemas import LeadAccepted, LeadIn, LeadRecord, Problem
from router.api.signatures import SignatureError
from router.intake.lead_intake import EnqueueFailed, IntakeConflict, UnknownPool, take_lead
from workers.json_input import loads_untrusted

router = APIRouter(prefix="/v1/leads", tags=["leads"])
log = structlog.get_logger(__name__)

_LEAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        # Inline: the route reads the raw body (signatures), so FastAPI never registers LeadIn in components.
        "content": {"application/json": {"schema": LeadIn.model_json_schema()}},
    }
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=LeadAccepted,
    openapi_extra=_LEAD_BODY,
    responses={
        200: {"model": LeadAccepted, "description": "already received with the same payload"},
        401: {"model": Problem}, 409: {"model": Problem}, 413: {"model": Problem},
        422: {"model": Problem}, 503: {"model": Problem},
    },
)
async def post_lead(
    request: Request, services: ServicesDep, verifier: VerifierDep, enqueue: EnqueueDep
) -> JSONResponse:
    """Take one lead: verify the signature (if configured), validate, record, enqueue; 202 once kept."""
    body = await request.body()
    try:
        webhook_id = verifier.verify(headers=request.headers, body=body)
    except SignatureError as exc:
        log.warning("webhook_signature_rejected", reason=exc.reason)  # the only trace a refusal leaves
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"webhook signature rejected: {exc.reason}") from None
    lead = _parse(body)
    structlog.contextvars.bind_contextvars(lead_id=lead.id)
    try:
        result = await run_in_threadpool(
            take_lead, lead, store=services.store, enqueue=enqueue, source="api", pools=services.pool_names,
            webhook_id=webhook_id,
        )
    except UnknownPool as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    except IntakeConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except EnqueueFailed:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the lead is recorded but the queue is unreachable; retry the same request later",
        ) from None
    code = status.HTTP_200_OK if result.duplicate else status.HTTP_202_ACCEPTED
    payload = LeadAccepted(id=result.id, status=result.status, duplicate=result.duplicate)
    return JSONResponse(payload.model_dump(), status_code=code)


@router.get("/{lead_id:path}", response_model=LeadRecord, responses={404: {"model": Problem}})
async def get_lead(lead_id: str, store: StoreDep) -> LeadRecord:
    """The lead's record: status, agent and why, attempts with Ryng's answers, callbacks, history."""
    view = await run_in_threadpool(record_view, store, lead_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead with id {lead_id!r}")
    return view


def _parse(body: bytes) -> LeadIn:
    if not body.strip():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "the request body is empty: send a JSON lead")
    try:
        data = loads_untrusted(body)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"malformed JSON: {exc}") from None
    try:
        return LeadIn.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, errors) from None
