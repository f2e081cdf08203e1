"""The lead record: its statuses, and one typed view of the Redis hash that stores it.

The hash is what every process reads and writes (field names are part of the stored data); `LeadRecord.from_hash`
is the one place that turns it into types, `LeadRecord.to_hash` the one place that turns it back.

States: accepted → queued → assigned → posted → connected → completed, or retrying/waiting on the way, or dead.
A lead whose event carried only its CRM id starts `fetching` (no number yet) until its record is read, then queued.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, Literal

__all__ = [
    "DELIVERED", "FINAL", "OPEN", "AgentMapping", "LeadRecord", "SendOutcome", "Status", "WaitReason",
]


class Status(StrEnum):
    ACCEPTED = "accepted"
    FETCHING = "fetching"
    QUEUED = "queued"
    WAITING = "waiting"
    ASSIGNED = "assigned"
    RETRYING = "retrying"
    POSTED = "posted"
    CONNECTED = "connected"
    COMPLETED = "completed"
    DEAD = "dead"


#: Statuses after which no delivery may happen again.
DELIVERED = frozenset({Status.POSTED, Status.CONNECTED, Status.COMPLETED})
FINAL = DELIVERED | {Status.DEAD}
#: Statuses a worker may still act on.
OPEN = frozenset(Status) - FINAL


class WaitReason(StrEnum):
    """Why a lead waits (status `waiting`): it is parked until the reason may have passed."""

    NO_AGENT_ELIGIBLE = "no_agent_eligible"
    RYNG_UNAUTHORIZED = "ryng_unauthorized"
    RATE_LIMIT = "rate_limit"


#: How the campaign names its agent: one agent picked by the router, or Ryng's own choice among all agents.
AgentMapping = Literal["global", "all-agents", ""]
#: The last send's outcome: `sending` while a request is out, else the Ryng client's `Outcome` value.
SendOutcome = Literal["", "sending", "accepted", "rejected", "unauthorized", "retryable", "ambiguous"]


def _int(value: str | None, default: int = 0) -> int:
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        return default




@dataclass(frozen=True, slots=True)
class LeadRecord:
    """One lead's stored record. Text fields absent from the hash read as ""; unknown fields are kept in `extra`."""

    id: str
    status: Status
    source: str = ""
    #: The lead as taken (JSON text); `payload` reads it.
    payload_json: str = "{}"
    fingerprint: str = ""
    created_at: str = ""
    created_ms: int = 0
    updated_at: str = ""
    attempts: int = 0
    crashes: int = 0
    replays: int = 0
    in_task: bool = False
    # routing
    agent: str = ""
    agent_id: str = ""
    pool: str = ""
    rule: str = ""
    strategy: str = ""
    reason: str = ""
    agent_mapping: AgentMapping = ""
    assigned_at: str = ""
    waiting_since_ms: int = 0
    wait_reason: str = ""
    # sending
    last_outcome: str = ""
    last_status_code: str = ""
    last_message: str = ""
    last_error: str = ""
    possible_duplicate: bool = False
    posted_at: str = ""
    retry_in_seconds: str = ""
    #: The batch campaign that carried the lead (empty when it went alone), and how many leads it carried.
    batch: str = ""
    batch_size: int = 0
    #: A batch holding the lead was refused (4xx): it is sent alone from then on.
    batch_split: bool = False
    # the end
    dead_reason: str = ""
    dead_at: str = ""
    replayed_at: str = ""
    # Ryng's callbacks
    connected_at: str = ""
    completed_at: str = ""
    disposition: str = ""
    talktime: str = ""
    call_status: str = ""
    call_id: str = ""
    recording_url: str = ""
    called_agent: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_hash(cls, raw: Mapping[str, str]) -> LeadRecord:
        """The typed record of a stored hash (as `HGETALL` returns it, decoded)."""
        values: dict[str, Any] = {name: raw[stored] for name, stored in _STORED.items() if stored in raw}
        values["status"] = Status(raw["status"]) if raw.get("status") in _STATUSES else Status.ACCEPTED
        values["payload_json"] = raw.get("payload") or "{}"
        for name in _INT_FIELDS:
            values[name] = _int(raw.get(name))
        for name in _FLAG_FIELDS:
            values[name] = raw.get(name) == "1"
        if values.get("agent_mapping") not in ("global", "all-agents", ""):
            values["agent_mapping"] = ""
        values["extra"] = {name: value for name, value in raw.items() if name not in _STORED_NAMES}
        values.setdefault("id", "")
        return cls(**values)

    def to_hash(self) -> dict[str, str]:
        """The hash fields of this record (the inverse of `from_hash`)."""
        out: dict[str, str] = dict(self.extra)
        for name, stored in _STORED.items():
            value = getattr(self, name)
            out[stored] = ("1" if value else "0") if name in _FLAG_FIELDS else str(value)
        return out

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def payload(self) -> dict[str, Any]:
        """The lead as taken; a stored payload that is not a JSON object raises ValueError (a poison lead)."""
        loaded = json.loads(self.payload_json)
        if not isinstance(loaded, dict):
            raise ValueError(f"the stored lead payload is a JSON {type(loaded).__name__}, not an object")
        return loaded

    @property
    def readable_payload(self) -> dict[str, Any]:
        """The payload for display: an unreadable one reads as empty."""
        try:
            return self.payload
        except ValueError:
            return {}

    @property
    def number(self) -> str:
        return str(self.readable_payload.get("number", ""))

    @property
    def fields(self) -> dict[str, str]:
        """The lead's own fields (from the CRM), as text."""
        return {str(k): str(v) for k, v in (self.readable_payload.get("fields") or {}).items()}


#: Attribute → hash field (the same name, but for the payload's JSON text).
_STORED = {f.name: ("payload" if f.name == "payload_json" else f.name) for f in fields(LeadRecord) if f.name != "extra"}
_STORED_NAMES = frozenset(_STORED.values())
_INT_FIELDS = ("created_ms", "attempts", "crashes", "replays", "waiting_since_ms", "batch_size")
_FLAG_FIELDS = ("in_task", "possible_duplicate", "batch_split")
_STATUSES = frozenset(Status)
