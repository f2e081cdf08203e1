"""Taking a lead in: record it durably, then enqueue it. Shared by the HTTP route, CSV import and queues."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Literal

import structlog

from router.api.schemas import LeadIn
from workers.store.records import LeadStore, Status

log = structlog.get_logger(__name__)


class IntakeConflict(Exception):
    """The lead id is known with a different payload."""


class UnknownPool(ValueError):
    """The lead names a pool the routing configuration does not have."""


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
    webhook_id: str | None = None,
    on_change: Literal["conflict", "update"] = "conflict",
) -> IntakeResult:
    """Record first (so a 202 means kept), then enqueue. A crash in between is covered by the lead's lease.

    `pools`, when given, are the configured pool names: a lead naming another pool is refused (UnknownPool).
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
    if pools is not None and lead.pool is not None and lead.pool not in pools:
        raise UnknownPool(f"pool: unknown pool {lead.pool!r}; configured pools: {', '.join(sorted(pools))}")
    accepted = store.accept(lead_id=lead.id, payload=lead.normalised(), source=source)
    if accepted.outcome == "conflict" and on_change == "update":
        store.record_update(lead.id, payload=lead.normalised(), source=source)
        return IntakeResult(id=lead.id, status=accepted.status, duplicate=True, updated=True)
    if accepted.outcome == "conflict":
        raise IntakeConflict(
            f"lead {lead.id!r} was already received with a different payload (status {accepted.status})"
        )
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
