"""The outbox: outcome messages waiting to reach a CRM, kept in Redis like leads (never in Celery countdowns).

Each lead has a queue of messages sent in order, oldest first; `outcomes:due` holds each lead with something to
send, scored by when it is due. The pump claims due leads (a lease, so one sender at a time) and queues a send;
a send settles the oldest message (delivered, or given up on into the dead outcomes), or reschedules it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import redis
import structlog
from pydantic import BaseModel

from config.routing import RoutingConfig
from workers.clock import iso, now_ms
from workers.lua import load_script
from workers.outcomes.messages import OutcomeKind, envelope, outcome_body
from workers.store.keys import Keys
from workers.store.records import MAX_EVENTS, LeadStore

__all__ = ["DeadOutcome", "Outbox"]

log = structlog.get_logger(__name__)

#: How long a queued message's id is remembered (a callback retried later than this would queue it again).
MARKER_TTL_SECONDS = 30 * 24 * 3600
MAX_DEAD = 10_000


class DeadOutcome(BaseModel):
    """An outcome message given up on: for whom, where to, why, and what it said."""

    lead_id: str
    url: str | None
    reason: str
    at: str
    attempts: int
    body: dict[str, Any]


class Outbox:
    """Queue, claim, settle and reschedule outcome messages; every change is one Lua call."""

    def __init__(
        self, client: redis.Redis, *, keys: Keys, store: LeadStore, routing: Callable[[], RoutingConfig],
        lease_seconds: float,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._store = store
        self._routing = routing
        self._lease_ms = int(lease_seconds * 1000)
        self._add = load_script(client, "outcome_add")
        self._claim = load_script(client, "outcome_claim_due")
        self._settle = load_script(client, "outcome_settle")
        self._retry = load_script(client, "outcome_retry")

    def notify(self, lead_id: str, *, kind: OutcomeKind, call: Mapping[str, Any] | None = None) -> bool:
        """Queue the lead's outcome for its source's CRM, if that source has an `outcome_url`; once per event."""
        record = self._store.get(lead_id)
        if record is None:
            return False
        source = next((s for s in self._routing().sources if s.name == record.source), None)
        if source is None or source.outcome_url is None:
            return False
        call_key = str((call or {}).get("callID") or record.call_id or "") if kind == "lead.completed" else ""
        message_id = f"{kind}:{call_key or record.dead_at or record.completed_at or iso()}:{lead_id}"
        message = envelope(source, outcome_body(record, kind=kind, call=call), message_id=message_id)
        queued = bool(self._add(
            keys=[self._keys.outcome_marker(message_id), self._keys.outcome_queue(lead_id), self._keys.outcomes_due,
                  self._keys.lead(lead_id)],
            args=[json.dumps(message, sort_keys=True), now_ms(), lead_id, MARKER_TTL_SECONDS],
        ))
        if queued:
            log.info("outcome_queued", lead_id=lead_id, kind=kind, source=source.name)
        return queued

    def claim_due(self, *, limit: int = 100) -> list[str]:
        """Leads whose next outcome is due, each claimed for one sender (until its lease runs out)."""
        claimed: list[str] = self._claim(keys=[self._keys.outcomes_due], args=[now_ms(), limit, self._lease_ms])
        return claimed

    def head(self, lead_id: str) -> str | None:
        """The lead's oldest unsent message (JSON as stored), or None."""
        raw: str | None = self._redis.lindex(self._keys.outcome_queue(lead_id), 0)  # type: ignore[assignment]
        return raw

    def attempts(self, lead_id: str) -> int:
        value = self._redis.hget(self._keys.lead(lead_id), "outcome_attempts")
        return int(str(value or 0))

    def forget(self, lead_id: str) -> None:
        """Nothing left to send for this lead."""
        self._redis.zrem(self._keys.outcomes_due, lead_id)

    def delivered(self, lead_id: str, raw: str, *, attempts: int, status: int) -> bool:
        entry = {"at": iso(), "event": "outcome_delivered", "attempts": attempts, "status": status}
        return self._settle_head(lead_id, raw, "delivered", history=entry, dead={})

    def give_up(self, lead_id: str, raw: str, *, attempts: int, reason: str) -> bool:
        message = json.loads(raw)
        dead = DeadOutcome(lead_id=lead_id, url=message.get("url"), reason=reason[:500], at=iso(), attempts=attempts,
                           body=message.get("body") or {})
        entry = {"at": iso(), "event": "outcome_dead", "attempts": attempts, "reason": reason[:500]}
        settled = self._settle_head(lead_id, raw, "dead", history=entry, dead=dead.model_dump())
        if settled:
            log.warning("outcome_dead", lead_id=lead_id, attempts=attempts, reason=reason[:200])
        return settled

    def retry_later(self, lead_id: str, *, attempts: int, error: str, delay_seconds: float) -> None:
        """Count the failed try and make the lead due again after the backoff (one Lua call)."""
        self._retry(
            keys=[self._keys.outcomes_due, self._keys.lead(lead_id), self._keys.metrics],
            args=[lead_id, now_ms() + int(delay_seconds * 1000), attempts, error[:500]],
        )

    def dead(self, *, limit: int = 100) -> list[DeadOutcome]:
        raw: list[str] = self._redis.lrange(self._keys.outcomes_dead, 0, limit - 1)  # type: ignore[assignment]
        return [DeadOutcome.model_validate_json(item) for item in raw]

    def pending(self) -> int:
        return int(self._redis.zcard(self._keys.outcomes_due))

    def _settle_head(self, lead_id: str, raw: str, how: str, *, history: dict[str, Any], dead: dict[str, Any]) -> bool:
        keys = [self._keys.outcome_queue(lead_id), self._keys.outcomes_due, self._keys.lead(lead_id),
                self._keys.outcomes_dead, self._keys.lead_events(lead_id), self._keys.metrics]
        args: list[str | int] = [
            how, now_ms(), lead_id, raw, json.dumps(dead, sort_keys=True), json.dumps(history, sort_keys=True),
            iso(), MAX_DEAD, MAX_EVENTS,
        ]
        return bool(self._settle(keys=keys, args=args))
