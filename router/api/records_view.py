"""Turning a stored lead record into the API's view of it."""

from __future__ import annotations

from router.api.schemas import LeadRecord
from workers.store.records import LeadStore

_TEXT_FIELDS = (
    "wait_reason", "source", "agent", "agent_id", "pool", "rule", "strategy", "reason", "agent_mapping",
    "last_outcome", "last_status_code", "last_message", "dead_reason", "last_error", "created_at",
    "updated_at", "assigned_at", "posted_at", "connected_at", "completed_at", "disposition", "call_id",
    "talktime",
)


def record_view(store: LeadStore, lead_id: str) -> LeadRecord | None:
    record = store.get(lead_id)
    if record is None:
        return None
    payload = store.payload(record)
    texts = {name: record.get(name) or None for name in _TEXT_FIELDS}
    return LeadRecord(
        id=lead_id,
        status=record.get("status", "unknown"),
        number=payload.get("number"),
        name=payload.get("name"),
        fields=payload.get("fields") or {},
        attempts=int(record.get("attempts", "0") or 0),
        possible_duplicate=record.get("possible_duplicate") == "1",
        history=store.events(lead_id),
        **texts,
    )
