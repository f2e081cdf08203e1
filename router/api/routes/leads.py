"""`/v1/leads`: take a lead in (202), list leads and read a record (with a credential)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from router.api.deps import IntakeDep, KeysDep, ReaderDep, RedisDep, StoreDep
from router.api.intake_endpoint import answer_lead, refused_media, render
from router.api.records_view import record_view
from router.api.schemas import LeadAccepted, LeadIn, LeadList, LeadRecord, LeadSummary, Problem
from workers.store import lead_list
from workers.store.lead_record import Status

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


_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no or a wrong bearer token"},
    403: {"model": Problem, "description": "reading leads is off (no ROUTER_READ_TOKEN nor ROUTER_ADMIN_TOKEN)"},
}
_STATUSES = frozenset(str(value) for value in Status)


@router.get("", response_model=LeadList, dependencies=[ReaderDep], responses={**_READ_ERRORS, 422: {"model": Problem}})
async def list_leads(
    client: RedisDep,
    keys: KeysDep,
    status_filter: Annotated[str | None, Query(
        alias="status", description="one status or several, comma-separated (e.g. `waiting,retrying`)")] = None,
    agent: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    pool: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    since: Annotated[datetime | None, Query(
        description="leads accepted at or after this ISO-8601 time, with its offset (`2026-11-30T09:00:00+01:00`)",
    )] = None,
    cursor: Annotated[str | None, Query(max_length=2000, description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> LeadList:
    """Leads, newest first, filtered by status, agent, pool and acceptance time; paged by an opaque cursor.

    Needs `Authorization: Bearer <ROUTER_READ_TOKEN or ROUTER_ADMIN_TOKEN>`.
    """
    statuses = frozenset(part.strip() for part in (status_filter or "").split(",") if part.strip())
    if unknown := sorted(statuses - _STATUSES):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            f"status: unknown {', '.join(map(repr, unknown))}; one of {', '.join(sorted(_STATUSES))}")
    if since is not None and since.utcoffset() is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            "since: give the time with its offset, e.g. 2026-11-30T09:00:00Z or ...+01:00")
    wanted = lead_list.LeadFilter(statuses=statuses, agent=agent, pool=pool,
                                  since_ms=None if since is None else int(since.timestamp() * 1000))
    listing = lead_list.LeadList(client, keys=keys)
    try:
        page = await run_in_threadpool(listing.page, wanted, limit=limit, cursor=cursor)
    except lead_list.BadCursorError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    return LeadList(leads=[LeadSummary.model_validate(lead) for lead in page.leads], next_cursor=page.next_cursor)


@router.get(
    "/{lead_id:path}",
    response_model=LeadRecord,
    dependencies=[ReaderDep],
    responses={**_READ_ERRORS, 404: {"model": Problem}},
)
async def get_lead(lead_id: str, store: StoreDep) -> LeadRecord:
    """The lead's record: status, agent and why, attempts with Ryng's answers, callbacks, history.

    Needs `Authorization: Bearer <ROUTER_READ_TOKEN or ROUTER_ADMIN_TOKEN>`.
    """
    view = await run_in_threadpool(record_view, store, lead_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no lead with id {lead_id!r}")
    return view
