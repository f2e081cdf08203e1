"""Taking a lead in: record it durably, then enqueue it. Shared by the HTTP route, CSV import and queues.

`take_lead` is the synchronous way (CSV import, queue consumer, and the API when the broker is not the lead
store's Redis); `accept_lead` is the API's: one asynchronous Redis call records and queues the lead.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

import structlog

from router.api.schemas import LeadIn
from workers.store.front_door import FrontDoor
from workers.store.records import LeadStore, Status

log = structlog.get_logger(__name__)


class IntakeConflict(Exception):
    """The lead id is known with a different payload."""


class UnknownPool(ValueError):
    """The lead names a pool the routing configuration does not have."""


class UnknownAgent(UnknownPool):
    """The lead names an agent the routing configuration does not have (refused wherever an unknown pool is)."""


class EnqueueFailed(Exception):
    """The lead is recorded but could not be queued now; the pump will queue it later."""


@dataclass(frozen=True, slots=True)
class IntakeResult:
    id: str
    status: str
    duplicate: bool
    #: A known lead re-sent with changes, kept as an update (`on_change="update"`).
    updated: bool = False


def take_lead(
    lead: LeadIn,
    *,
    store: LeadStore,
    enqueue: Callable[[str], None],
    source: str,
    pools: Collection[str] | None = None,
    agents: Collection[str] | None = None,
    webhook_id: str | None = None,
    on_change: Literal["conflict", "update"] = "conflict",
) -> IntakeResult:
    """Record first (so a 202 means kept), then enqueue. A crash in between is covered by the lead's lease.

    `pools`, when given, are the configured pool names: a lead naming another pool is refused (UnknownPool);
    `agents` likewise the configured agents (UnknownAgent): Ryng would only answer "Agent not found".
    `webhook_id` (a verified Standard Webhooks `webhook-id`) is an idempotency hint: a redelivery of a webhook
    already taken is answered with that lead's status, whatever it carries.
    `on_change="update"` (CRM sources) keeps a known lead re-sent with other values as an update on its record
    and answers with its status, where the default refuses it (IntakeConflict).
    """
    if webhook_id:
        earlier = store.webhook_lead(webhook_id)
        record = store.get(earlier) if earlier else None
        if earlier and record is not None:
            return IntakeResult(id=earlier, status=record.status, duplicate=True)
    check_targets(lead, pools=pools, agents=agents)
    accepted = store.accept(lead_id=lead.id, payload=lead.normalised(), source=source)
    if accepted.outcome == "conflict" and on_change == "update":
        store.record_update(lead.id, payload=lead.normalised(), source=source)
        return IntakeResult(id=lead.id, status=accepted.status, duplicate=True, updated=True)
    if accepted.outcome == "conflict":
        raise _conflict(lead, accepted.status)
    if accepted.outcome == "exists" and accepted.status != Status.ACCEPTED:
        return IntakeResult(id=lead.id, status=accepted.status, duplicate=True)
    # A lead recorded before but still "accepted" was perhaps never queued: queue it (again), harmlessly.
    try:
        enqueue(lead.id)
    except Exception as exc:
        log.warning("enqueue_failed", lead_id=lead.id, error=type(exc).__name__)
        raise EnqueueFailed(str(exc)) from exc
    if webhook_id:
        store.remember_webhook(webhook_id, lead_id=lead.id)
    previous = store.transition(lead.id, Status.QUEUED, allowed=frozenset({Status.ACCEPTED}))
    current = None if previous else store.get(lead.id)
    status = current.status if current is not None else Status.QUEUED
    return IntakeResult(id=lead.id, status=str(status), duplicate=accepted.outcome == "exists")


async def accept_lead(
    lead: LeadIn,
    *,
    door: FrontDoor,
    source: str,
    pools: Collection[str] | None = None,
    agents: Collection[str] | None = None,
    webhook_id: str | None = None,
    request_id: str = "",
) -> IntakeResult:
    """`take_lead` for a door that queues itself: one Redis call records the lead and queues its delivery."""
    if webhook_id:
        earlier = await door.webhook_lead(webhook_id)
        if earlier is not None:
            return IntakeResult(id=earlier[0], status=earlier[1], duplicate=True)
    check_targets(lead, pools=pools, agents=agents)
    accepted = await door.take(
        lead_id=lead.id, payload=lead.normalised(), source=source, request_id=request_id, webhook_id=webhook_id
    )
    if accepted.outcome == "conflict":
        raise _conflict(lead, accepted.status)
    return IntakeResult(id=lead.id, status=accepted.status, duplicate=accepted.outcome == "exists")


def check_targets(lead: LeadIn, *, pools: Collection[str] | None, agents: Collection[str] | None) -> None:
    """Refuse a lead naming a pool or an agent the routing does not have (when it says which it has)."""
    if pools is not None and lead.pool is not None and lead.pool not in pools:
        raise UnknownPool(f"pool: unknown pool {lead.pool!r}; configured pools: {', '.join(sorted(pools))}")
    if agents and lead.agent is not None and lead.agent not in agents:
        raise UnknownAgent(f"agent: unknown agent {lead.agent!r}; configured agents: {_some(agents)}")


def _some(names: Collection[str], most: int = 20) -> str:
    ordered = sorted(names)
    return ", ".join(ordered[:most]) + (f" and {len(ordered) - most} more" if len(ordered) > most else "")


def _conflict(lead: LeadIn, status: str) -> IntakeConflict:
    return IntakeConflict(f"lead {lead.id!r} was already received with a different payload (status {status})")
