"""Pydantic models at the HTTP boundary: what clients send and what they get back."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
)

_NUMBER_NOISE = re.compile(r"[\s\-().]")
_NUMBER = re.compile(r"^\+?[0-9]{6,15}$")
_NAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")

MAX_FIELDS = 32
MAX_FIELD_LENGTH = 1000
FieldValue = StrictStr | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)] | StrictBool


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class LeadIn(BaseModel):
    """One lead from a CRM. `id` is the CRM's lead id and the idempotency key."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"id": "XT243", "number": "998314242", "name": "James", "fields": {"Product": "Life Insurance"}}
            ]
        },
    )

    id: Annotated[StrictStr, Field(min_length=1, max_length=128, description="CRM lead id (1-128 printable)")]
    number: Annotated[StrictStr, Field(max_length=40, description="customer phone: 6-15 digits, optional +")]
    name: Annotated[StrictStr | None, Field(default=None, max_length=200)] = None
    pool: Annotated[StrictStr | None, Field(default=None, description="route to this pool")] = None
    agent: Annotated[StrictStr | None, Field(default=None, description="route to this agent username")] = None
    fields: Annotated[
        dict[Annotated[str, Field(min_length=1, max_length=64)], FieldValue],
        Field(default_factory=dict, description="flat map of string to string, finite number or bool (1000 chars)"),
    ]

    @field_validator("id")
    @classmethod
    def _printable_id(cls, value: str) -> str:
        if not value.isprintable() or value != value.strip():
            raise ValueError("must be printable characters without leading or trailing spaces")
        return value

    @field_validator("number")
    @classmethod
    def _phone(cls, value: str) -> str:
        cleaned = _NUMBER_NOISE.sub("", value)
        if not _NUMBER.match(cleaned):
            raise ValueError("must be a phone number: 6 to 15 digits, an optional leading +, "
                             "spaces, dashes and brackets allowed")
        return cleaned

    @field_validator("pool", "agent")
    @classmethod
    def _identifier(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError("must be 1-64 letters, digits or _ . @ + -")
        return value

    @field_validator("fields")
    @classmethod
    def _flat(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(value) > MAX_FIELDS:
            raise ValueError(f"at most {MAX_FIELDS} fields")
        for key, item in value.items():
            # Numbers too: a field's value reaches Ryng as text, so a 4000-digit integer is 4000 characters.
            if not isinstance(item, bool) and len(str(item)) > MAX_FIELD_LENGTH:
                raise ValueError(f"field {key!r} is longer than {MAX_FIELD_LENGTH} characters")
            # pydantic refuses a lone surrogate (JSON's "\\ud800") in a plain string, not in one member of a union.
            if isinstance(item, str) and not _is_unicode(item):
                raise ValueError(f"field {key!r} is not valid Unicode text (a lone surrogate such as \\ud800)")
        return value

    def normalised(self) -> dict[str, Any]:
        """The payload as stored and fingerprinted: field values as strings, booleans lower-case."""
        fields = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in self.fields.items()}
        return {
            "id": self.id, "number": self.number, "name": self.name, "pool": self.pool,
            "agent": self.agent, "fields": fields,
        }


class LeadAccepted(BaseModel):
    id: str
    status: str
    duplicate: bool = False


class LeadRecord(BaseModel):
    """A lead's record: where it is, who got it and why, what Ryng answered, what the calls did."""

    id: str
    status: str
    wait_reason: str | None = None
    source: str | None = None
    number: str | None = None
    name: str | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    agent: str | None = None
    agent_id: str | None = None
    pool: str | None = None
    rule: str | None = None
    strategy: str | None = None
    reason: str | None = None
    agent_mapping: str | None = None
    attempts: int = 0
    possible_duplicate: bool = False
    batch: str | None = Field(default=None, description="the batch campaign that carried the lead (RYNG_MAX_BATCH)")
    batch_size: int = Field(default=0, description="how many leads that batch carried")
    updates: int = Field(default=0, description="changed re-sends of this lead by its CRM, kept as updates")
    outcome_status: str | None = Field(default=None, description="outcome to the CRM: pending, retrying, "
                                                                 "delivered or dead")
    outcome_attempts: int = 0
    outcome_last_error: str | None = None
    outcome_delivered_at: str | None = None
    fetch_status: str | None = Field(default=None, description="an id-only event's record from the CRM's API: "
                                                               "waiting, retrying, fetched or dead")
    fetch_attempts: int = 0
    fetch_last_error: str | None = None
    fetched_at: str | None = None
    last_outcome: str | None = None
    last_status_code: str | None = None
    last_message: str | None = None
    dead_reason: str | None = None
    last_error: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    assigned_at: str | None = None
    posted_at: str | None = None
    connected_at: str | None = None
    completed_at: str | None = None
    disposition: str | None = None
    call_id: str | None = None
    talktime: str | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)


class Problem(BaseModel):
    detail: str | list[dict[str, Any]]


class LeadSummary(BaseModel):
    """One lead in a list: where it is and who got it (no number, name or fields: read the record for those)."""

    id: str
    status: str
    wait_reason: str | None = None
    source: str | None = None
    agent: str | None = None
    pool: str | None = None
    rule: str | None = None
    strategy: str | None = None
    attempts: int = 0
    last_outcome: str | None = None
    dead_reason: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    assigned_at: str | None = None
    posted_at: str | None = None


class LeadList(BaseModel):
    """A page of leads, newest first; `next_cursor` (when not null) fetches the next page."""

    leads: list[LeadSummary]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null at the end. A page may hold fewer leads than "
                    "`limit` (even none) and still have a next one: a page reads at most 5,000 index entries.")
