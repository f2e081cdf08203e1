"""One read of a waiting lead's record from its CRM's API, and what follows from the answer.

The record is mapped by the source's fetch mapping and validated like any lead (a phone number among the candidate
paths, a known pool); the lead is then filled in and handed to delivery, so an agent is picked only once its
number is known. A read that may pass (5xx, 429, timeout) is tried again after a jittered backoff, up to
`ROUTER_FETCH_MAX_ATTEMPTS` tries; a refusal (404, 401, ...), a record no lead can be made of, a source that no
longer declares a fetch or a missing token dead-letters the lead with the reason (`lead-router dead list`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum

import structlog
from pydantic import SecretStr

from config.routing import RoutingConfig
from router.intake.sources.intake import book_for
from router.intake.sources.mapping import MappingError
from workers.delivery.policy import DeliveryPolicy
from workers.fetch.crm_api import CrmApi
from workers.fetch.waits import FetchWaits
from workers.store.counters import Counters
from workers.store.lead_record import Status
from workers.store.records import LeadStore

__all__ = ["Fetched", "Fetcher"]

log = structlog.get_logger(__name__)


class Fetched(StrEnum):
    """What one fetch step did (the Celery task's result, and the label in its log line)."""

    NOTHING = "nothing"
    FILLED = "filled"
    RETRYING = "retrying"
    DEAD = "dead"


class Fetcher:
    """Reads, maps and fills one waiting lead; `run` is safe to call for any lead at any time."""

    def __init__(
        self, *, waits: FetchWaits, store: LeadStore, api: CrmApi, routing: Callable[[], RoutingConfig],
        policy: DeliveryPolicy, max_attempts: int, enqueue: Callable[[str], None],
        on_dead: Callable[[str], object] | None = None, counters: Counters | None = None,
    ) -> None:
        self._waits = waits
        self._store = store
        self._api = api
        self._routing = routing
        self._policy = policy
        self._max_attempts = max_attempts
        self._enqueue = enqueue
        self._on_dead = on_dead  # tells the lead's CRM it will not be called (its outcome_url)
        self._counters = counters  # fetch_filled, fetch_retries, fetch_dead (lead_router_events_total)

    def close(self) -> None:
        self._api.close()

    def run(self, lead_id: str) -> Fetched:
        record = self._store.get(lead_id)
        if record is None or record.status != Status.FETCHING:
            self._waits.forget(lead_id)
            return Fetched.NOTHING
        attempt = int(record.extra.get("fetch_attempts") or 0) + 1
        crm_id = record.extra.get("fetch_id", "")
        routing = self._routing()
        source = book_for(routing).get(record.source)
        if source is None or source.config.fetch is None:
            return self._dead(lead_id, attempt, f"source {record.source!r} no longer declares a fetch")
        token = os.environ.get(source.config.fetch.token_env)
        if not token:
            return self._dead(lead_id, attempt, f"no API token: {source.config.fetch.token_env} is not set")
        reading = self._api.read(source.config, crm_id, token=SecretStr(token))
        if reading.kind == "retry":
            return self._retry(lead_id, attempt, reading.reason)
        if reading.kind == "refused" or reading.record is None:
            return self._dead(lead_id, attempt, f"the CRM's record cannot be read: {reading.reason}")
        try:
            lead = source.mapping.record_lead(reading.record, lead_id=lead_id)
        except MappingError as exc:
            return self._dead(lead_id, attempt, f"the CRM's record makes no lead: {exc}")
        pools = {pool.name for pool in routing.pools}
        if lead.pool is not None and lead.pool not in pools:
            return self._dead(lead_id, attempt, f"the CRM's record names an unknown pool {lead.pool!r}")
        if not self._waits.fill(lead_id, payload=lead.normalised(), attempts=attempt, source=record.source):
            return Fetched.NOTHING
        log.info("fetch_filled", lead_id=lead_id, source=record.source, attempts=attempt)
        self._count("fetch_filled")
        try:
            self._enqueue(lead_id)
        except Exception as exc:  # the lead is pending: the pump queues it when its lease runs out
            log.warning("enqueue_failed", lead_id=lead_id, error=type(exc).__name__)
        return Fetched.FILLED

    def _retry(self, lead_id: str, attempt: int, reason: str) -> Fetched:
        if attempt >= self._max_attempts:
            return self._dead(lead_id, attempt, f"gave up after {attempt} tries: {reason}")
        delay = self._policy.backoff(attempt)
        self._waits.retry_later(lead_id, attempts=attempt, error=reason, delay_seconds=delay)
        self._count("fetch_retries")
        log.info("fetch_retrying", lead_id=lead_id, attempts=attempt, delay=round(delay, 2), reason=reason[:200])
        return Fetched.RETRYING

    def _dead(self, lead_id: str, attempt: int, reason: str) -> Fetched:
        if not self._waits.give_up(lead_id, attempts=attempt, reason=reason):
            return Fetched.NOTHING
        self._count("fetch_dead")
        if self._on_dead is not None:
            self._on_dead(lead_id)
        return Fetched.DEAD

    def _count(self, name: str) -> None:
        if self._counters is not None:
            self._counters.incr(name)
