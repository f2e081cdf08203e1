"""The assigner: which agent gets a lead. Every pick is one atomic Lua call (eligibility, strategy, cursor
and capacity reservation together), so any number of workers on any number of hosts never double-assign,
skip or exceed capacity.

Python decides the pool (rules), which pool members are off shift (schedules), and what to do when nobody is
eligible (wait, overflow to another pool, or let Ryng choose). The keys the pick touches (the pool's members
among them, from the routing configuration) are passed to it; the layout is in `docs/KEYS.md`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from config.routing import PoolConfig, RoutingConfig
from config.routing_models import Strategy
from workers.lua import STRATEGIES, load_script
from workers.routing import rules, schedule
from workers.routing.reservations import Reservations
from workers.store.connections import RedisClient
from workers.store.keys import Keys

__all__ = ["STRATEGIES", "Assigner", "LeadFacts", "NextPick", "Pick", "Skip", "cancel_reservation"]

_MIN_RETRY = 0.1
#: How many times `sync` reads the registered pools again when another process changed them meanwhile.
_SYNC_READS = 10


@dataclass(frozen=True)
class LeadFacts:
    """What routing needs to know about a lead."""

    lead_id: str
    number: str
    fields: Mapping[str, str]
    source: str = "api"
    pool: str | None = None
    agent: str | None = None


@dataclass(frozen=True)
class Skip:
    """A pool member passed over, and why: paused, off_shift, at_capacity, wrap_up or unknown."""

    agent: str
    reason: str


@dataclass(frozen=True)
class Pick:
    """The decision for one lead; `ryng` means "let Ryng choose" (agentMapping all-agents)."""

    outcome: Literal["assigned", "wait", "ryng", "unroutable"]
    agent: str | None
    agent_id: int | None
    pool: str
    rule: str | None
    strategy: str
    reason: str
    skipped: tuple[Skip, ...] = ()
    retry_after_seconds: float | None = None


@dataclass(frozen=True)
class NextPick:
    """Who the next plain lead routed to a pool would get (no number, no rule): `agent` None when nobody is
    eligible, and the members passed over with why."""

    pool: str
    agent: str | None
    strategy: str
    reason: str
    skipped: tuple[Skip, ...] = ()


#: The lead id a peek asks for: it never holds a reservation, so the pick runs in full (and writes nothing).
_PEEK_LEAD = "\x00peek"


def _number_key(number: str) -> str:
    return re.sub(r"[^0-9+]", "", number)


def _agent_id(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def cancel_reservation(client: RedisClient, *, keys: Keys, lead_id: str) -> bool:
    """Free a lead's reservation without any routing configuration (for operator tools): no wrap-up."""
    return Reservations(client, keys=keys).release(lead_id, now_ms=int(time.time() * 1000), cancel=True)


class Assigner:
    """Picks agents for leads; one instance per process, shared by its threads."""

    def __init__(
        self,
        client: RedisClient,
        *,
        keys: Keys,
        routing: RoutingConfig,
        reservation_timeout_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._keys = keys
        self._routing = routing
        self._timeout_ms = int(reservation_timeout_seconds * 1000)
        self._clock = clock
        self._pick = {name: load_script(client, "pick", strategy=name) for name in STRATEGIES}
        self._sync = load_script(client, "routing_sync")
        self._reservations = Reservations(client, keys=keys)
        self._sticky_store_ms = int(max((pool.sticky_seconds for pool in routing.pools), default=0) * 1000)
        self._members = {pool.name: list(dict.fromkeys(routing.members(pool.name))) for pool in routing.pools}
        # Per pool, the members that keep a schedule: only they can be off shift.
        self._scheduled = {
            pool.name: [name for name in routing.members(pool.name)
                        if (agent := routing.agent(name)) is not None and agent.schedule is not None]
            for pool in routing.pools
        }

    @property
    def routing(self) -> RoutingConfig:
        return self._routing

    def sync(self) -> None:
        """Register the configured agents and pools in Redis (idempotent; keeps live state and cursors)."""
        agents = [
            {
                "name": agent.name,
                "id": "" if agent.id is None else str(agent.id),
                "weight": agent.weight,
                "capacity": agent.capacity,
                "wrap_up_ms": int(agent.wrap_up_seconds * 1000),
            }
            for agent in self._routing.agents
        ]
        pools = [
            {"name": pool.name, "members": self._members[pool.name], "config": pool.model_dump_json()}
            for pool in self._routing.pools
        ]
        keys, names = self._keys, list(self._members)
        fixed = [keys.agent_ordinals, keys.agent_ordinal_seq, keys.agents, keys.pools]
        fixed += [keys.agent(agent.name) for agent in self._routing.agents]
        fixed += [key for name in names for key in (keys.pool_members(name), keys.pool_config(name))]
        for _ in range(_SYNC_READS):
            drop = sorted(str(name) for name in self._client.smembers(keys.pools) if name not in self._members)
            stale = [key for name in drop for key in (keys.pool_members(name), keys.pool_config(name))]
            request = json.dumps({"agents": agents, "pools": pools, "drop": drop})
            if self._sync(keys=fixed + stale, args=[request]):
                return
        raise RuntimeError("the registered pools kept changing while syncing the routing configuration")

    def pick(self, lead: LeadFacts, *, waited_seconds: float = 0.0, now: float | None = None) -> Pick:
        """Choose an agent for `lead` and reserve one unit of their capacity, or say wait / let Ryng choose.

        Idempotent per lead id: while the lead holds a reservation the same agent comes back, nothing moves.
        `waited_seconds` is how long the lead has already waited for an eligible agent.
        """
        at = self._clock() if now is None else now
        number = _number_key(lead.number)
        request: dict[str, Any] = {
            "lead_id": lead.lead_id, "number": number, "now_ms": int(at * 1000), "reservation_ms": self._timeout_ms,
            "sticky_store_ms": self._sticky_store_ms,
        }
        lead_keys = [self._keys.reservation(lead.lead_id), self._keys.reservations, self._keys.sticky(number)]
        if lead.agent:
            pool = lead.pool or self._routing.default_pool
            request.update(mode="explicit", agent=lead.agent, pool=pool, rule="", strategy="explicit",
                           members=[lead.agent])
            return self._decode(self._call("round_robin", lead_keys, request), rule=None, skipped=())
        found = rules.route(
            self._routing, fields=lead.fields, source=lead.source, number=lead.number,
            lead_id=lead.lead_id, pool=lead.pool,
        )
        pool_name, waited, prefix = found.pool, waited_seconds, ""
        skipped: list[Skip] = []
        moment = datetime.fromtimestamp(at, tz=UTC)
        while True:
            config = self._routing.pool(pool_name)
            off = schedule.off_shift(self._routing, self._scheduled[pool_name], moment)
            request.update(
                mode="pick", pool=pool_name, rule=found.rule or "", strategy=config.strategy, off_shift=off,
                sticky_ms=int(config.sticky_seconds * 1000), catch_up=config.catch_up,
                members=self._members[pool_name],
            )
            reply = self._call(config.strategy, lead_keys, request)
            if reply["outcome"] != "none":
                return self._decode(reply, rule=found.rule, skipped=tuple(skipped), prefix=prefix)
            skipped.extend(Skip(agent, reason) for agent, reason in _pairs(reply.get("skipped")))
            if config.when_empty == "wait" and waited < config.max_wait_seconds:
                hint = self._retry_hint(config, reply, off, moment, waited)
                return Pick(
                    outcome="wait", agent=None, agent_id=None, pool=pool_name, rule=found.rule,
                    strategy=config.strategy,
                    reason=f"{prefix}nobody eligible in pool {pool_name!r}; waiting",
                    skipped=tuple(skipped), retry_after_seconds=hint,
                )
            if config.when_empty != "ryng" and config.overflow is not None:
                if config.when_empty == "wait":
                    waited = max(0.0, waited - config.max_wait_seconds)
                prefix += f"overflow from {pool_name!r}; "
                pool_name = config.overflow
                continue
            if config.when_empty == "ryng":
                return Pick(
                    outcome="ryng", agent=None, agent_id=None, pool=pool_name, rule=found.rule,
                    strategy=config.strategy,
                    reason=f"{prefix}nobody eligible in pool {pool_name!r}; Ryng chooses",
                    skipped=tuple(skipped),
                )
            # Waited the pool's limit with nowhere to overflow: never hand the lead to Ryng's first agent.
            return Pick(
                outcome="unroutable", agent=None, agent_id=None, pool=pool_name, rule=found.rule,
                strategy=config.strategy,
                reason=f"{prefix}nobody eligible in pool {pool_name!r} for {config.max_wait_seconds:g} s",
                skipped=tuple(skipped),
            )

    def peek(self, pool: str, *, now: float | None = None) -> NextPick:
        """The agent the pool's next plain lead would get, by the same atomic script as `pick`, changing nothing."""
        at = self._clock() if now is None else now
        config = self._routing.pool(pool)
        off = schedule.off_shift(self._routing, self._scheduled[pool], datetime.fromtimestamp(at, tz=UTC))
        request: dict[str, Any] = {
            "lead_id": _PEEK_LEAD, "number": "", "now_ms": int(at * 1000), "reservation_ms": self._timeout_ms,
            "sticky_store_ms": 0, "mode": "pick", "peek": True, "pool": pool, "rule": "",
            "strategy": config.strategy, "off_shift": off, "sticky_ms": 0, "catch_up": config.catch_up,
            "members": self._members[pool],
        }
        lead_keys = [self._keys.reservation(_PEEK_LEAD), self._keys.reservations, self._keys.sticky("")]
        reply = self._call(config.strategy, lead_keys, request)
        skipped = tuple(Skip(agent, reason) for agent, reason in _pairs(reply.get("skipped")))
        if reply["outcome"] != "next":
            return NextPick(pool=pool, agent=None, strategy=config.strategy, reason="nobody eligible",
                            skipped=skipped)
        return NextPick(pool=pool, agent=str(reply["agent"]), strategy=str(reply["strategy"]),
                        reason=str(reply["reason"]), skipped=skipped)

    def release(self, *, lead_id: str, now: float | None = None, cancel: bool = False) -> bool:
        """Free the lead's capacity reservation; False if it held none.

        After a call the agent enters wrap-up. `cancel=True` is for a lead that never reached the agent (dead
        before Ryng accepted it): no wrap-up, and the agent does not become the number's sticky owner.
        """
        at = self._clock() if now is None else now
        return self._reservations.release(lead_id, now_ms=int(at * 1000), cancel=cancel)

    def expire_reservations(self, now: float | None = None, *, limit: int = 1000) -> int:
        """Release reservations older than the reservation timeout (no terminal callback came)."""
        at = self._clock() if now is None else now
        return self._reservations.expire(now_ms=int(at * 1000), limit=limit)

    # --- internals ------------------------------------------------------------------------------------
    def _call(self, strategy: Strategy, lead_keys: list[str], request: dict[str, Any]) -> dict[str, Any]:
        pool = str(request["pool"])
        keys = [*lead_keys, self._keys.agent_ordinals, self._keys.pool_cursor(pool), self._keys.pool_wrr(pool),
                self._keys.pool_streak(pool), *(self._keys.agent(name) for name in request["members"])]
        raw = self._pick[strategy](keys=keys, args=[json.dumps(request)])
        reply: dict[str, Any] = json.loads(raw)
        return reply

    def _decode(
        self, reply: dict[str, Any], *, rule: str | None, skipped: tuple[Skip, ...], prefix: str = ""
    ) -> Pick:
        existing = reply["outcome"] == "existing"
        own = tuple(Skip(agent, reason) for agent, reason in _pairs(reply.get("skipped")))
        return Pick(
            outcome="assigned", agent=str(reply["agent"]), agent_id=_agent_id(reply.get("agent_id")),
            pool=str(reply["pool"]), rule=(reply.get("rule") or None) if existing else rule,
            strategy=str(reply["strategy"]), reason=prefix + str(reply["reason"]), skipped=skipped + own,
        )

    def _retry_hint(
        self, config: PoolConfig, reply: dict[str, Any], off: list[str], moment: datetime, waited: float
    ) -> float:
        hint = min(config.retry_seconds, config.max_wait_seconds - waited)
        wrap_until = reply.get("wrap_until")
        if isinstance(wrap_until, int | float) and wrap_until:
            hint = min(hint, wrap_until / 1000 - moment.timestamp())
        for name in off:
            agent = self._routing.agent(name)
            start = schedule.next_start(agent.schedule if agent else None, moment)
            if start is not None:
                hint = min(hint, (start - moment).total_seconds())
        return max(_MIN_RETRY, round(hint, 3))


def _pairs(value: Any) -> list[tuple[str, str]]:
    """Lua's empty table comes back as {}; pairs come back as [agent, reason] lists."""
    if not isinstance(value, list):
        return []
    return [(str(item[0]), str(item[1])) for item in value]
