"""The sandbox's configuration: start-up options and the run-time fault settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_DISPOSITIONS: tuple[str, ...] = (
    "Interested",
    "Not Interested",
    "Call Back Later",
    "Wrong Number",
    "Converted",
)


class FaultSettings(BaseModel):
    """Faults applied to `POST /campaign` requests that pass the token check and the rate limit."""

    model_config = ConfigDict(extra="forbid")

    fail_next: int = Field(default=0, ge=0, description="answer the next N requests with fail_status")
    fail_status: int = Field(default=500, ge=400, le=599, description="status used by fail_next / fail_rate")
    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0, description="probability of a random failure")
    latency_ms: int = Field(default=0, ge=0, le=600_000, description="delay added to every campaign request")
    timeout_next: int = Field(default=0, ge=0, description="record the next N campaigns, answer late")
    timeout_seconds: float = Field(default=5.0, ge=0.0, le=3600.0, description="how late (timeout_next)")


class FaultsUpdate(BaseModel):
    """Body of `POST /_sandbox/faults`: only the fields given change; `seed` re-seeds the random faults."""

    model_config = ConfigDict(extra="forbid")

    fail_next: int | None = Field(default=None, ge=0)
    fail_status: int | None = Field(default=None, ge=400, le=599)
    fail_rate: float | None = Field(default=None, ge=0.0, le=1.0)
    latency_ms: int | None = Field(default=None, ge=0, le=600_000)
    timeout_next: int | None = Field(default=None, ge=0)
    timeout_seconds: float | None = Field(default=None, ge=0.0, le=3600.0)
    seed: int | None = None


class SandboxOptions(BaseModel):
    """Everything the sandbox can be told at start-up."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(default="sandbox-token", min_length=1, description="the accepted x-access-token")
    agents: dict[str, int] = Field(
        default_factory=lambda: {"alice": 10, "bob": 20},
        description="agent username -> numeric agent id, in Ryng's order (the first is 'the first agent')",
    )
    rate_limit_per_min: int = Field(default=60, ge=1, description="requests admitted per token per window")
    rate_window_seconds: float = Field(default=60.0, gt=0, description="the rolling window (60 s at Ryng)")
    reject_unknown_agents: bool = Field(default=True, description="400 when a request names an unknown agent")
    simulate_calls: bool = Field(default=True, description="place simulated calls and send callbacks")
    call_delay_seconds: float = Field(default=2.0, ge=0, description="acceptance -> agent-connected")
    call_step_seconds: float = Field(default=1.0, ge=0, description="gap between a call's milestones")
    callback_retry_seconds: float = Field(default=60.0, ge=0, description="interval between callback retries")
    callback_timeout_seconds: float = Field(default=10.0, gt=0, description="timeout of one callback POST")
    dispositions: list[str] = Field(default_factory=lambda: list(DEFAULT_DISPOSITIONS), min_length=1)
    fail_next: int = Field(default=0, ge=0)
    fail_status: int = Field(default=500, ge=400, le=599)
    fail_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    latency_ms: int = Field(default=0, ge=0, le=600_000)
    timeout_next: int = Field(default=0, ge=0)
    timeout_seconds: float = Field(default=5.0, ge=0.0, le=3600.0)
    seed: int | None = Field(default=None, description="seed of the random faults and call outcomes")

    @field_validator("agents")
    @classmethod
    def _agents_not_empty(cls, value: dict[str, int]) -> dict[str, int]:
        if not value:
            raise ValueError("the sandbox needs at least one agent")
        if len(set(value.values())) != len(value):
            raise ValueError("agent ids must be unique")
        return value

    def initial_faults(self) -> FaultSettings:
        """The fault settings the sandbox starts with (and returns to on reset)."""
        return FaultSettings(
            fail_next=self.fail_next,
            fail_status=self.fail_status,
            fail_rate=self.fail_rate,
            latency_ms=self.latency_ms,
            timeout_next=self.timeout_next,
            timeout_seconds=self.timeout_seconds,
        )


def parse_agents(text: str) -> dict[str, int]:
    """Parse `"alice:10,bob:20"` into `{"alice": 10, "bob": 20}`; raise ValueError on a bad entry."""
    agents: dict[str, int] = {}
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        username, sep, agent_id = entry.rpartition(":")
        if not sep or not username.strip() or not agent_id.strip().isdigit():
            raise ValueError(f"bad agent entry {entry!r}: expected username:id")
        agents[username.strip()] = int(agent_id)
    if not agents:
        raise ValueError("no agents given")
    return agents
