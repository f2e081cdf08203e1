"""What the sandbox records and reports: campaigns, rows, simulated calls, callback deliveries, stats."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

AgentMapping = Literal["global", "inline", "all-agents"]
BodyFormat = Literal["json", "form"]
CallbackKind = Literal["connect", "terminal"]


class CampaignRow(BaseModel):
    """One customer row of a campaign, with the agent the sandbox assigned it to."""

    index: int
    number: str
    agents_assigned: list[str] = Field(default_factory=list, description="the row's own agents, as sent")
    agent: str = Field(description="username of the assigned agent")
    agent_id: int
    custom_fields: dict[str, str] = Field(default_factory=dict, description="customField1..8 as sent")
    fields: dict[str, str] = Field(default_factory=dict, description="custom fields keyed by their names")


class CampaignSubmission(BaseModel):
    """A validated Create Campaign request, before the sandbox numbers and records it."""

    name: str | None = None
    body_format: BodyFormat
    agent_mapping: AgentMapping
    agents: list[str] = Field(default_factory=list, description="usernames named by the request")
    custom_field_names: dict[str, str] = Field(default_factory=dict)
    connect_callback_url: str | None = None
    terminal_callback_url: str | None = None
    rows: list[CampaignRow]


class CampaignRecord(CampaignSubmission):
    """An accepted campaign, as listed by `GET /_sandbox/campaigns`."""

    id: int
    received_at: str
    response_delayed_seconds: float = Field(
        default=0.0, description="> 0 when a timeout fault withheld the answer (an ambiguous send)"
    )


class CallbackDelivery(BaseModel):
    """One callback the sandbox sent (with its retries)."""

    kind: CallbackKind
    event: str
    url: str
    attempts: int = 0
    status_codes: list[int | None] = Field(default_factory=list, description="None: no HTTP answer")
    status_code: int | None = Field(default=None, description="the last answer's status code")
    delivered: bool = False
    error: str | None = None


class CallRecord(BaseModel):
    """One simulated call: one accepted row of a campaign that carried callback URLs."""

    call_id: int
    call_log_id: int
    campaign_id: int
    row_index: int
    number: str
    agent: str
    agent_id: int
    disposition: str
    state: Literal["scheduled", "ringing", "connected", "ended", "cancelled", "failed"] = "scheduled"
    deliveries: list[CallbackDelivery] = Field(default_factory=list)


class SandboxStats(BaseModel):
    """Counters, as returned by `GET /_sandbox/stats`."""

    total_requests: int = 0
    accepted: int = 0
    by_status: dict[str, int] = Field(default_factory=dict)
    rate_limited: int = Field(default=0, description="429s sent by the rate limiter")
    faults_injected: int = 0
    timeouts_injected: int = 0
    max_requests_in_window: int = Field(default=0, description="most campaign requests in any window")
    window_seconds: float = 60.0
    assigned_by_agent: dict[str, int] = Field(default_factory=dict)
    calls: int = 0
    callbacks_delivered: int = 0
    callbacks_failed: int = 0
