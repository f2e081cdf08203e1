"""Turning a stored lead record into the API's view of it."""

from __future__ import annotations

from router.api.schemas import LeadRecord as LeadRecordView
from workers.store.records import LeadStore

_TEXT_FIELDS = (
    "wait_reason", "source", "agent", "agent_id", "pool", "rule", "strategy", "reason", "agent_mapping",
    "last_outcome", "last_status_code", "last_message", "dead_reason", "last_error", "created_at",
    "updated_at", "assigned_at", "posted_at", "connected_at", "completed_at", "disposition", "call_id",
    "talktime", "batch",
)


def record_view(store: LeadStore, lead_id: str) -> LeadRecordView | None:
    record = store.get(lead_id)
    if record is None:
        return None
    texts = {name: getattr(record, name) or None for name in _TEXT_FIELDS}
    return LeadRecordView(
        id=lead_id,
        status=record.status,
        number=record.readable_payload.get("number"),
        name=record.readable_payload.get("name"),
        fields=record.readable_payload.get("fields") or {},
        attempts=record.attempts,
        possible_duplicate=record.possible_duplicate,
        batch_size=record.batch_size,
        updates=int(record.extra.get("updates", "0") or 0),
        outcome_status=record.extra.get("outcome_status") or None,
        outcome_attempts=int(record.extra.get("outcome_attempts", "0") or 0),
        outcome_last_error=record.extra.get("outcome_last_error") or None,
        outcome_delivered_at=record.extra.get("outcome_delivered_at") or None,
        fetch_status=record.extra.get("fetch_status") or None,
        fetch_attempts=int(record.extra.get("fetch_attempts", "0") or 0),
        fetch_last_error=record.extra.get("fetch_last_error") or None,
        fetched_at=record.extra.get("fetched_at") or None,
        history=store.events(lead_id),
        **texts,
    )
