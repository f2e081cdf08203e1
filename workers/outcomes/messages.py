"""What the router tells a CRM about its lead: the call's outcome, or that the lead will not be called.

One JSON body per event, the same for every CRM unless the source's `outcome_template` reshapes it:

    {"type": "lead.completed", "lead_id": "hubspot:3234574", "crm_id": "3234574", "source": "hubspot",
     "status": "completed", "agent": "alice", "disposition": "Interested", "talktime": "42",
     "call_started": "...", "call_ended": "...", "recording_url": "...", "call_id": "...", "attempts": 1,
     "dead_reason": null, "at": "..."}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from config.sources_models import SourceConfig
from workers.clock import iso
from workers.store.lead_record import LeadRecord

__all__ = ["OutcomeKind", "crm_id", "envelope", "outcome_body", "reshape"]

OutcomeKind = Literal["lead.completed", "lead.dead"]
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def crm_id(record: LeadRecord) -> str:
    """The CRM's own record id: the lead id without its source's namespace."""
    prefix = f"{record.source}:"
    return record.id[len(prefix):] if record.id.startswith(prefix) else record.id


def outcome_body(record: LeadRecord, *, kind: OutcomeKind, call: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The outcome of one lead, from its record and (for a finished call) Ryng's terminal callback."""
    call = call or {}

    def text(value: Any) -> str | None:
        return None if value in (None, "") else str(value)[:500]

    return {
        "type": kind,
        "lead_id": record.id,
        "crm_id": crm_id(record),
        "source": record.source,
        "status": "completed" if kind == "lead.completed" else "dead",
        "agent": text(call.get("agentUsername")) or text(record.called_agent) or text(record.agent),
        "disposition": text(call.get("disposition")) or text(record.disposition),
        "talktime": text(call.get("talktime")) or text(record.talktime),
        "call_started": text(call.get("callStarted")),
        "call_ended": text(call.get("callEnded")),
        "recording_url": text(call.get("recordingUrl")) or text(record.recording_url),
        "call_id": text(call.get("callID")) or text(record.call_id),
        "attempts": record.attempts,
        "dead_reason": text(record.dead_reason) if kind == "lead.dead" else None,
        "at": iso(),
    }


def reshape(template: Any, body: Mapping[str, Any]) -> Any:
    """The template with each `{field}` replaced; a string that is one placeholder keeps the value's type."""
    if isinstance(template, dict):
        return {key: reshape(value, body) for key, value in template.items()}
    if isinstance(template, list):
        return [reshape(value, body) for value in template]
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            return body.get(whole.group(1))
        return _PLACEHOLDER.sub(lambda m: "" if body.get(m.group(1)) is None else str(body[m.group(1)]), template)
    return template


def envelope(source: SourceConfig, body: Mapping[str, Any], *, message_id: str) -> dict[str, Any]:
    """The queued message: where it goes, which secret signs it, and what it says (reshaped once, here)."""
    shaped = reshape(source.outcome_template, body) if source.outcome_template is not None else dict(body)
    return {"id": message_id, "url": source.outcome_url, "secret_env": source.outcome_secret_env, "body": shaped}
