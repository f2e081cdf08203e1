"""`GET /v1/admin/routing`: the routing configuration this API process has in force, and who is on shift now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from router.api.deps import AdminDep, RoutingWatchDep
from workers.routing.schedule import next_start

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[AdminDep])


class AgentShift(BaseModel):
    name: str
    on_shift: bool
    next_shift_at: datetime | None = Field(default=None, description="when off shift: the next start")


class RoutingView(BaseModel):
    file: str | None = Field(description="ROUTER_ROUTING_FILE, or null for the ROUTER_AGENTS shortcut")
    loaded_at: datetime
    reloads: int = Field(description="changes of the file adopted since this process started")
    last_error: str | None = Field(description="why the latest change was refused (one line per mistake)")
    shifts: list[AgentShift]
    config: dict[str, Any] = Field(description="agents, pools, rules and default pool in force")


@router.get("/routing")
def routing_in_force(watch: RoutingWatchDep) -> RoutingView:
    """Agents, pools, rules and default pool in force; reload status; which agents are on shift now."""
    config = watch.config
    now = datetime.now(UTC)
    shifts = []
    for agent in config.agents:
        start = next_start(agent.schedule, now)
        shifts.append(AgentShift(name=agent.name, on_shift=start == now, next_shift_at=None if start == now else start))
    return RoutingView(
        file=watch.path, loaded_at=datetime.fromtimestamp(watch.loaded_at, UTC), reloads=watch.reloads,
        last_error=watch.last_error, shifts=shifts, config=config.model_dump(mode="json"),
    )
