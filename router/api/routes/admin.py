"""Admin API for dead letters and the delivery pause (bearer token: `ROUTER_ADMIN_TOKEN`).

Mount with `app.include_router(admin.router)`. Every route needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from router.api.deps import AdminDep, EnqueueDep, PauseDep, ServicesDep
from router.api.schemas import Problem
from workers.store.dead_letters import BatchResult, DeadLetterDetail, DeadLetterPage, DeadLetters
from workers.store.pause import DeliveryPause

__all__ = ["DeliveryState", "PurgeBody", "ReplayBody", "ResumeAnswer", "router"]

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "missing or wrong admin bearer token"},
    403: {"model": Problem, "description": "the admin API is off (no ROUTER_ADMIN_TOKEN)"},
}
_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not JSON"},
    413: {"model": Problem, "description": "the body is over ROUTER_MAX_BODY_BYTES"},
}

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep], responses=_AUTH)

_IDS = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=128)]], Field(max_length=10_000)
]


class ReplayBody(BaseModel):
    """Either `ids` (dead lead ids) or `all: true`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"ids": ["XT243"]}, {"all": True}]})

    ids: _IDS = Field(default_factory=list)
    all: StrictBool = False

    @model_validator(mode="after")
    def _one_of(self) -> ReplayBody:
        if self.all == bool(self.ids):
            raise ValueError("give either a non-empty `ids` list or `all: true`, not both")
        return self


class PurgeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: Annotated[_IDS, Field(min_length=1)]


class DeliveryState(BaseModel):
    """Whether delivery to Ryng is paused (after Ryng answered 403), since when and why."""

    paused: bool
    reason: str | None = None
    since: str | None = None


class ResumeAnswer(BaseModel):
    resumed: bool = Field(description="true if delivery was paused and is now resumed")
    state: DeliveryState


def get_dead_letters(services: ServicesDep, enqueue: EnqueueDep) -> DeadLetters:
    return services.dead_letters(enqueue=enqueue)


DeadLettersDep = Annotated[DeadLetters, Depends(get_dead_letters)]


@router.get("/dead")
def list_dead(
    dead: DeadLettersDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeadLetterPage:
    """Dead-lettered leads, oldest death first: why and when each died."""
    return dead.listing(offset=offset, limit=limit)


@router.post("/dead/replay", responses=_BODY)
def replay_dead(body: ReplayBody, dead: DeadLettersDep) -> BatchResult:
    """Send dead leads through delivery again (same rules, assigner and limiter); history is kept."""
    return dead.replay_all(by="admin-api") if body.all else dead.replay(body.ids, by="admin-api")


@router.post("/dead/purge", responses=_BODY)
def purge_dead(body: PurgeBody, dead: DeadLettersDep) -> BatchResult:
    """Delete dead leads for good (record and history). Leads that are not dead are skipped."""
    return dead.purge(body.ids)


@router.get("/dead/{lead_id:path}", responses={404: {"model": Problem}})
def show_dead(lead_id: str, dead: DeadLettersDep) -> DeadLetterDetail:
    """One dead lead: its stored record and whole history."""
    detail = dead.show(lead_id)
    if detail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dead lead with id {lead_id!r}")
    return detail


def _state(pause: DeliveryPause) -> DeliveryState:
    current = pause.state()
    if current is None:
        return DeliveryState(paused=False)
    return DeliveryState(paused=True, reason=current.get("reason"), since=current.get("since"))


@router.get("/delivery")
def delivery_state(pause: PauseDep) -> DeliveryState:
    """Whether delivery is paused because Ryng refused the access token (403)."""
    return _state(pause)


@router.post("/delivery/resume")
def resume_delivery(pause: PauseDep) -> ResumeAnswer:
    """Resume delivery after fixing the token; waiting leads go out at their next turn (a 403 pauses again)."""
    resumed = pause.resume()
    return ResumeAnswer(resumed=resumed, state=_state(pause))
