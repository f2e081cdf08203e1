"""Live agent state in Redis: pause (with a reason) and resume, weight and capacity overrides, listings.

Changes apply to the next pick on every worker. The keys (agent hashes, pools, reservations) are listed in
`docs/KEYS.md`; the agent hash holds ordinal, id, weight, capacity, wrap_up_ms (from configuration, written by
`Assigner.sync`); paused, pause_reason, paused_at, weight_set, capacity_set (live overrides, kept across
restarts); open, assigned, last_ms, released_ms, wrap_until, picks_day and picks_today (the picks of that UTC day,
by its number since the epoch) (kept by the pick and release scripts).
"""

from __future__ import annotations

import json
import time

from pydantic import BaseModel, field_serializer

from workers.clock import iso_seconds
from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys

__all__ = ["AgentState", "AgentStore", "PoolState", "RoutingStats", "UnknownAgentError"]


class UnknownAgentError(KeyError):
    """The agent has never been registered (it is in no routing configuration that was synced)."""


class AgentState(BaseModel):
    name: str
    ordinal: int
    agent_id: int | None
    configured: bool
    weight: int
    capacity: int
    open: int
    assigned: int
    #: Picks since midnight UTC.
    picks_today: int = 0
    paused: bool
    pause_reason: str | None
    paused_at: float | None
    wrap_up_until: float | None
    last_assigned_at: float | None

    @field_serializer("paused_at", "wrap_up_until", "last_assigned_at", when_used="json")
    def _as_iso(self, seconds: float | None) -> str | None:
        """Epoch seconds in Python, ISO-8601 with its offset in JSON (what people read)."""
        return iso_seconds(seconds)


class PoolState(BaseModel):
    name: str
    strategy: str
    members: list[str]
    last_agent: str | None
    config: dict[str, object]


class RoutingStats(BaseModel):
    agents: int
    paused: int
    open: int
    assigned: int
    reservations: int


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(float(value)) if value not in (None, "") else default
    except ValueError:
        return default


def _seconds(value: str | None) -> float | None:
    number = _int(value)
    return number / 1000 if number else None


class AgentStore:
    """Reads and changes live agent state; cheap to build (one per request is fine)."""

    def __init__(self, client: RedisClient, *, keys: Keys) -> None:
        self._client = client
        self._keys = keys
        self._set = load_script(client, "agent_set")

    def _change(self, name: str, fields: dict[str, str]) -> None:
        args: list[str] = []
        for field, value in fields.items():
            args += [field, value]
        if not self._set(keys=[self._keys.agent(name)], args=args):
            raise UnknownAgentError(name)

    def pause(self, name: str, *, reason: str) -> AgentState:
        """Stop routing to the agent until resumed; reservations already held stay."""
        stamp = str(int(time.time() * 1000))
        self._change(name, {"paused": "1", "pause_reason": reason.strip() or "paused", "paused_at": stamp})
        return self.get(name)

    def resume(self, name: str) -> AgentState:
        self._change(name, {"paused": "", "pause_reason": "", "paused_at": ""})
        return self.get(name)

    def set(
        self, name: str, *, weight: int | None = None, capacity: int | None = None, reset: bool = False
    ) -> AgentState:
        """Override weight (≥ 1) and/or capacity (≥ 0, 0 = unlimited); `reset` returns to configuration."""
        if weight is not None and weight < 1:
            raise ValueError("weight must be at least 1")
        if capacity is not None and capacity < 0:
            raise ValueError("capacity must be 0 (unlimited) or more")
        fields = {"weight_set": "", "capacity_set": ""} if reset else {}
        if weight is not None:
            fields["weight_set"] = str(weight)
        if capacity is not None:
            fields["capacity_set"] = str(capacity)
        if fields:
            self._change(name, fields)
        return self.get(name)

    def get(self, name: str) -> AgentState:
        state = self._states([name])[0]
        if state is None:
            raise UnknownAgentError(name)
        return state

    def agents(self, *, include_removed: bool = False) -> list[AgentState]:
        """Configured agents (and, with `include_removed`, every agent ever registered), by ordinal."""
        keys = self._keys
        source = self._client.hkeys(keys.agent_ordinals) if include_removed else self._client.smembers(keys.agents)
        names = [str(name) for name in source]
        states = [state for state in self._states(names) if state is not None]
        return sorted(states, key=lambda state: state.ordinal)

    def pools(self) -> list[PoolState]:
        result = []
        keys = self._keys
        for name in sorted(str(item) for item in self._client.smembers(keys.pools)):
            raw = self._client.get(keys.pool_config(name))
            config: dict[str, object] = json.loads(raw) if raw else {}
            # The round-robin cursor, else the last agent any strategy picked (every pick updates the streak).
            last = self._client.get(keys.pool_cursor(name)) or self._client.hget(keys.pool_streak(name), "agent")
            result.append(
                PoolState(
                    name=name, strategy=str(config.get("strategy", "round_robin")),
                    members=[str(member) for member in self._client.zrange(keys.pool_members(name), 0, -1)],
                    last_agent=None if last is None else str(last), config=config,
                )
            )
        return result

    def stats(self) -> RoutingStats:
        agents = self.agents()
        return RoutingStats(
            agents=len(agents), paused=sum(agent.paused for agent in agents),
            open=sum(agent.open for agent in agents), assigned=sum(agent.assigned for agent in agents),
            reservations=int(self._client.zcard(self._keys.reservations)),
        )

    def _states(self, names: list[str]) -> list[AgentState | None]:
        fields = ("ordinal", "id", "weight", "weight_set", "capacity", "capacity_set", "open", "assigned",
                  "paused", "pause_reason", "paused_at", "wrap_until", "last_ms", "picks_day", "picks_today")
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.hmget(self._keys.agent(name), fields)
        pipe.smembers(self._keys.agents)
        *rows, members = pipe.execute()
        configured = {str(name) for name in members}
        now = time.time()
        today = str(int(now // 86400))
        states: list[AgentState | None] = []
        for name, row in zip(names, rows, strict=True):
            v: dict[str, str | None] = dict(zip(fields, row, strict=True))
            if v["ordinal"] is None:
                states.append(None)
                continue
            wrap = _seconds(v["wrap_until"])
            states.append(
                AgentState(
                    name=name, ordinal=_int(v["ordinal"]),
                    agent_id=_int(v["id"]) if (v["id"] or "").isdigit() else None,
                    configured=name in configured,
                    weight=_int(v["weight_set"], _int(v["weight"], 1)),
                    capacity=_int(v["capacity_set"], _int(v["capacity"])),
                    open=_int(v["open"]), assigned=_int(v["assigned"]),
                    picks_today=_int(v["picks_today"]) if v["picks_day"] == today else 0, paused=v["paused"] == "1",
                    pause_reason=v["pause_reason"], paused_at=_seconds(v["paused_at"]),
                    wrap_up_until=wrap if wrap and wrap > now else None,
                    last_assigned_at=_seconds(v["last_ms"]),
                )
            )
        return states
