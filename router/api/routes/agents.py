"""Admin API for live agent control: list, pause/resume, weight and capacity; pools."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, Field

from router.api.deps import AdminDep, AgentStoreDep
from workers.routing.agents import AgentState, PoolState, RoutingStats, UnknownAgentError

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep])


_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such agent"}}


class PauseBody(BaseModel):
    reason: str = Field(default="paused", min_length=1, max_length=200)


class AgentPatch(BaseModel):
    weight: int | None = Field(default=None, ge=1, le=1000)
    capacity: int | None = Field(default=None, ge=0, le=10_000, description="0 = unlimited")
    reset: bool = Field(default=False, description="drop overrides, back to the routing configuration")


class AgentList(BaseModel):
    agents: list[AgentState]
    stats: RoutingStats


def _missing(name: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no agent named {name!r}")


@router.get("/agents")
def list_agents(store: AgentStoreDep) -> AgentList:
    """Every configured agent with live state (paused, open leads, wrap-up) and totals."""
    return AgentList(agents=store.agents(), stats=store.stats())


@router.post("/agents/{name}/pause", responses=_NOT_FOUND)
def pause_agent(name: str, store: AgentStoreDep, body: PauseBody | None = None) -> AgentState:
    """Stop routing leads to the agent (takes effect at the next pick on every worker)."""
    try:
        return store.pause(name, reason=(body or PauseBody()).reason)
    except UnknownAgentError:
        raise _missing(name) from None


@router.post("/agents/{name}/resume", responses=_NOT_FOUND)
def resume_agent(name: str, store: AgentStoreDep) -> AgentState:
    try:
        return store.resume(name)
    except UnknownAgentError:
        raise _missing(name) from None


@router.patch("/agents/{name}", responses=_NOT_FOUND)
def patch_agent(name: str, body: AgentPatch, store: AgentStoreDep) -> AgentState:
    """Override weight and/or capacity live; `reset` returns to the configured values."""
    try:
        return store.set(name, weight=body.weight, capacity=body.capacity, reset=body.reset)
    except UnknownAgentError:
        raise _missing(name) from None


@router.get("/pools")
def list_pools(store: AgentStoreDep) -> list[PoolState]:
    """Pools with their strategy, members in rotation order, and the last agent picked."""
    return store.pools()
