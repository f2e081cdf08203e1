"""The operator's snapshot: everything a team lead watches, read from Redis in a handful of round trips.

One `Snapshot` says, at one moment: every agent with its state (available, paused, off shift, wrap-up, at
capacity), open leads, picks today and last pick; each pool's rotation with the agent the next plain lead would
get (asked of the assigner's own pick script, which writes nothing for a peek); the rate limiter's budget; the
leads waiting, by reason, with when they are due; the leads waiting for their record from the CRM's API (status
`fetching`) and when the next read is due; the latest leads with their agent, rule and reason; dead
letters; whether delivery is paused; callbacks that matched no lead. The routing page (`/ui`) and
`lead-router status` both show it. It holds no phone numbers or names: lead ids, agents and reasons only.

Round trips: one pipeline for the sets and counters, one for the fields of the leads listed, one pair for the
agents, and one script call per pool.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from workers.clock import iso, iso_seconds
from workers.routing.agents import AgentState, AgentStore
from workers.routing.assigner import Assigner
from workers.routing.schedule import off_shift
from workers.store.connections import RedisClient
from workers.store.keys import Keys, broker_queue

if TYPE_CHECKING:
    from workers.services import Services

__all__ = [
    "AgentRow", "Budget", "DeadRow", "LeadRow", "PoolRow", "Snapshot", "SnapshotReader", "WaitingGroup",
    "agent_state",
]

AgentStateName = Literal["available", "paused", "off_shift", "wrap_up", "at_capacity"]
#: How many parked leads are read to count waiting leads by reason (the total is always exact).
WAITING_SAMPLE = 1000


class AgentRow(BaseModel):
    name: str
    state: AgentStateName
    pause_reason: str | None = None
    open: int
    capacity: int = Field(description="0 = unlimited")
    weight: int
    picks_today: int
    picks_total: int
    last_pick_at: str | None = None
    wrap_up_until: str | None = None


class SkippedRow(BaseModel):
    agent: str
    reason: str


class PoolRow(BaseModel):
    name: str
    strategy: str
    members: list[str] = Field(description="in rotation order")
    next_agent: str | None = Field(description="who the next plain lead would get; null when nobody is eligible")
    next_reason: str
    skipped: list[SkippedRow]


class Budget(BaseModel):
    """The shared Ryng rate limiter: requests granted in the current sliding window, and what is left."""

    limit: int
    used: int
    remaining: int
    window_seconds: float
    next_slot_in_seconds: float = Field(description="0 when a request may go now")


class WaitingGroup(BaseModel):
    reason: str = Field(description="no_agent_eligible, rate_limit, ryng_unauthorized, backoff, or a status")
    count: int
    next_due_at: str
    last_due_at: str


class LeadRow(BaseModel):
    id: str
    status: str
    agent: str
    pool: str
    rule: str
    reason: str
    created_at: str


class DeadRow(BaseModel):
    id: str
    reason: str
    dead_at: str


class Snapshot(BaseModel):
    taken_at: str
    agents: list[AgentRow]
    pools: list[PoolRow]
    budget: Budget
    waiting_total: int = Field(description="leads parked until a time (every reason)")
    waiting: list[WaitingGroup] = Field(description="by reason, from the first WAITING_SAMPLE parked leads")
    drain_eta_seconds: float = Field(description="estimate: when the last waiting or queued lead may reach Ryng")
    fetching: int = Field(description="leads waiting for their record from the CRM's API (status `fetching`)")
    fetching_next_due_at: str | None = Field(
        description="when the next read of such a record is due (a read under way: when its lease ends); null if none")
    in_flight: int = Field(description="leads not yet in a final state")
    queue_depth: int | None = Field(description="delivery messages in the broker queue; null if not on this Redis")
    recent: list[LeadRow]
    dead_total: int
    dead_latest: list[DeadRow]
    delivery_paused: bool
    pause_reason: str | None = None
    paused_since: str | None = None
    callbacks_unmatched: int


def agent_state(agent: AgentState, *, off: bool) -> AgentStateName:
    """One word for the agent's state; the first that applies of paused, off shift, wrap-up, at capacity."""
    if agent.paused:
        return "paused"
    if off:
        return "off_shift"
    if agent.wrap_up_until:
        return "wrap_up"
    if agent.capacity and agent.open >= agent.capacity:
        return "at_capacity"
    return "available"


class SnapshotReader:
    """Takes snapshots over one router's keys; cheap to build."""

    def __init__(
        self, client: RedisClient, *, keys: Keys, assigner: Assigner, limit: int, window_seconds: float,
        queue: str | None = None, recent: int = 10, dead: int = 5,
    ) -> None:
        self._client = client
        self._keys = keys
        self._assigner = assigner
        self._agents = AgentStore(client, keys=keys)
        self._limit = limit
        self._window = window_seconds
        self._queue = queue
        self._recent = recent
        self._dead = dead

    @classmethod
    def for_services(cls, services: Services) -> SnapshotReader:
        """A reader over the router's own Redis, limiter and routing; the queue is counted when the broker is the
        same Redis database (else `queue_depth` is null)."""
        from workers.services import LIMITER_WINDOW_SECONDS
        from workers.store.connections import redis_url
        from workers.task_message import same_redis

        settings = services.settings
        broker = settings.celery_broker_url
        on_store = broker is None or same_redis(redis_url(settings.redis_url), broker)
        return cls(
            services.redis, keys=services.keys, assigner=services.assigner,
            limit=settings.ryng_rate_limit_per_min, window_seconds=LIMITER_WINDOW_SECONDS,
            queue=settings.celery_queue if on_store else None,
        )

    def take(self) -> Snapshot:
        now = time.time()
        keys, window_us = self._keys, int(self._window * 1_000_000)
        pipe = self._client.pipeline(transaction=False)
        pipe.zcount(keys.rate, int(now * 1_000_000) - window_us, "+inf")
        pipe.zrangebyscore(keys.rate, int(now * 1_000_000) - window_us, "+inf", start=0, num=1, withscores=True)
        pipe.zcard(keys.parked)
        pipe.zrange(keys.parked, 0, WAITING_SAMPLE - 1, withscores=True)
        pipe.zcard(keys.pending)
        pipe.zcard(keys.dead)
        pipe.zrevrange(keys.dead, 0, self._dead - 1, withscores=True)
        pipe.hgetall(keys.paused)
        pipe.llen(keys.callbacks_unmatched)
        pipe.zrevrange(keys.created, 0, self._recent - 1)
        pipe.zcard(keys.fetches_due)
        pipe.zrange(keys.fetches_due, 0, 0, withscores=True)
        if self._queue is not None:
            pipe.llen(broker_queue(self._queue))
        (used, oldest, parked_total, parked, in_flight, dead_total, dead, paused, unmatched, recent_ids, fetching,
         next_fetch, *queue) = pipe.execute()
        parked = [(str(lead_id), float(due)) for lead_id, due in parked]
        dead = [(str(lead_id), float(at)) for lead_id, at in dead]
        recent_ids = [str(lead_id) for lead_id in recent_ids]

        pipe = self._client.pipeline(transaction=False)
        for lead_id, _ in parked:
            pipe.hmget(keys.lead(lead_id), ["status", "wait_reason"])
        for lead_id in recent_ids:
            pipe.hmget(keys.lead(lead_id), ["status", "agent", "pool", "rule", "reason", "created_at"])
        for lead_id, _ in dead:
            pipe.hget(keys.lead(lead_id), "dead_reason")
        fields = pipe.execute()
        waiting_fields, recent_fields = fields[:len(parked)], fields[len(parked):len(parked) + len(recent_ids)]
        dead_reasons = fields[len(parked) + len(recent_ids):]

        used = int(used)
        next_slot = 0.0
        if used >= self._limit and oldest:
            next_slot = max(0.0, (float(oldest[0][1]) + window_us) / 1_000_000 - now)
        budget = Budget(limit=self._limit, used=used, remaining=max(0, self._limit - used),
                        window_seconds=self._window, next_slot_in_seconds=round(next_slot, 3))
        queue_depth = int(queue[0]) if queue else None
        backlog = int(parked_total) + (queue_depth or 0)
        drain = max(0, backlog - budget.remaining) / max(1, self._limit) * self._window
        states = self._agents.agents()
        return Snapshot(
            taken_at=iso(int(now * 1000)),
            agents=self._agent_rows(states, now),
            pools=self._pool_rows({agent.name: agent.ordinal for agent in states}, now),
            budget=budget,
            waiting_total=int(parked_total),
            waiting=_waiting_groups(parked, waiting_fields),
            drain_eta_seconds=round(max(drain, next_slot if backlog else 0.0), 1),
            fetching=int(fetching),
            fetching_next_due_at=iso(int(next_fetch[0][1])) if next_fetch else None,
            in_flight=int(in_flight),
            queue_depth=queue_depth,
            recent=[
                LeadRow(id=lead_id, status=row[0] or "", agent=row[1] or "", pool=row[2] or "", rule=row[3] or "",
                        reason=row[4] or "", created_at=row[5] or "")
                for lead_id, row in zip(recent_ids, recent_fields, strict=True)
            ],
            dead_total=int(dead_total),
            dead_latest=[DeadRow(id=lead_id, reason=reason or "", dead_at=iso(int(at)))
                         for (lead_id, at), reason in zip(dead, dead_reasons, strict=True)],
            delivery_paused=bool(paused),
            pause_reason=paused.get("reason") if paused else None,
            paused_since=paused.get("since") if paused else None,
            callbacks_unmatched=int(unmatched),
        )

    def _agent_rows(self, states: list[AgentState], now: float) -> list[AgentRow]:
        off = set(off_shift(self._assigner.routing, [agent.name for agent in states], datetime.fromtimestamp(now, UTC)))
        return [
            AgentRow(
                name=agent.name, state=agent_state(agent, off=agent.name in off), pause_reason=agent.pause_reason,
                open=agent.open, capacity=agent.capacity, weight=agent.weight, picks_today=agent.picks_today,
                picks_total=agent.assigned, last_pick_at=iso_seconds(agent.last_assigned_at),
                wrap_up_until=iso_seconds(agent.wrap_up_until),
            )
            for agent in states
        ]

    def _pool_rows(self, ordinals: dict[str, int], now: float) -> list[PoolRow]:
        """Each pool's members in rotation order (by registration ordinal, as the pick orders them)."""
        rows = []
        routing = self._assigner.routing
        for pool in routing.pools:
            peek = self._assigner.peek(pool.name, now=now)
            members = sorted(dict.fromkeys(routing.members(pool.name)), key=lambda name: ordinals.get(name, 1 << 62))
            rows.append(PoolRow(
                name=pool.name, strategy=pool.strategy, members=members,
                next_agent=peek.agent, next_reason=peek.reason,
                skipped=[SkippedRow(agent=skip.agent, reason=skip.reason) for skip in peek.skipped],
            ))
        return rows


def _waiting_groups(parked: list[tuple[str, float]], fields: list[list[str | None]]) -> list[WaitingGroup]:
    """Parked leads by why they wait: the wait reason, `backoff` for a retry, else the lead's status."""
    dues: dict[str, list[float]] = {}
    for (_, due), (status, wait_reason) in zip(parked, fields, strict=True):
        reason = wait_reason or ("backoff" if status == "retrying" else status or "unknown")
        dues.setdefault(reason, []).append(due)
    counts = Counter({reason: len(values) for reason, values in dues.items()})
    return [
        WaitingGroup(reason=reason, count=count, next_due_at=iso(int(min(dues[reason]))),
                     last_due_at=iso(int(max(dues[reason]))))
        for reason, count in counts.most_common()
    ]
