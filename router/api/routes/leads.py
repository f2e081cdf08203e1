"""`/v1/leads`: take a lead in (202), read its record (with a credential)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from router.api.deps import IntakeDep, ReaderDep, StoreDep
from router.api.intake_endpoint import answer_lead, refused_media, render
from router.api.records_view import record_view
from router.api.schemas import LeadAccepted, LeadIn, LeadRecord, Problem

router = APIRouter(prefix="/v1/leads", tags=["leads"])

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
        415: {"model": Problem, "description": "the body is not declared as JSON"},
        422: {"model": Problem}, 503: {"model": Problem},
    },
)
async def post_lead(request: Request, intake: IntakeDep) -> Response:
    """Take one lead: verify the signature (if configured), validate, record, enqueue; 202 once kept.

    (Served by `router.api.intake_endpoint.IntakeEndpoint` ahead of FastAPI's routing; this route gives the
    same answers through `answer_lead`, and the schema.)
    """
    answer = refused_media(request.headers.get("content-type"))
    if answer is None:
        answer = await answer_lead(intake, headers=request.headers, body=await request.body())
    return Response(render(answer), status_code=answer.status, media_type="application/json")


@router.get(
    "/{lead_id:path}",
    response_model=LeadRecord,
    dependencies=[ReaderDep],
    responses={
        401: {"model": Problem, "description": "no or a wrong bearer token"},
        403: {"model": Problem, "description": "reading leads is off (no ROUTER_READ_TOKEN nor ROUTER_ADMIN_TOKEN)"},
        404: {"model": Problem},
    },
)
async def get_lead(lead_id: str, store: StoreDep) -> LeadRecord:
    """The lead's record: status, agent and why, attempts with Ryng's answers, callbacks, history.

    Needs `Authorization: Bearer <ROUTER_READ_TOKEN or ROUTER_ADMIN_TOKEN>`.
    """
    view = await run_in_threadpool(record_view, store, lead_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead with id {lead_id!r}")
    return view
