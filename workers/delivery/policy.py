"""The delivery policy: how often to retry, how long to back off, how to name a campaign and fill its fields, and
how many leads one request may carry under a backlog."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from config.settings import Settings
from workers.ryng.payload import CampaignRequest
from workers.ryng.target import callback_urls
from workers.store.lead_record import LeadRecord

__all__ = ["DeliveryPolicy"]


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """Retry, backoff and naming choices, built from settings."""

    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    max_crashes: int = 6
    campaign_name_template: str = "{lead_id}"
    field_slots: tuple[tuple[str, int], ...] = ()
    lead_id_slot: int = 8
    connect_callback_url: str | None = None
    terminal_callback_url: str | None = None
    #: Leads one request may carry when leads wait on the rate limiter (1: batching off).
    max_batch: int = 1
    #: How long a lead may wait to be carried by a batch when a backlog builds.
    batch_delay_seconds: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DeliveryPolicy:
        connect_url, terminal_url = callback_urls(settings)
        return cls(
            max_attempts=settings.router_max_attempts,
            backoff_base_seconds=settings.router_backoff_base_seconds,
            backoff_max_seconds=settings.router_backoff_max_seconds,
            max_crashes=settings.router_max_deliveries,
            campaign_name_template=settings.ryng_campaign_name_template,
            field_slots=tuple(sorted(settings.field_map.items())),
            lead_id_slot=settings.ryng_lead_id_field,
            connect_callback_url=connect_url,
            terminal_callback_url=terminal_url,
            max_batch=settings.ryng_max_batch,
            batch_delay_seconds=settings.ryng_batch_delay_seconds,
        )

    @property
    def batching(self) -> bool:
        return self.max_batch > 1

    def campaign_request(
        self, lead_id: str, record: LeadRecord, *, agent: str, agent_id: str, pool: str
    ) -> CampaignRequest:
        """The request that posts this lead to `agent` (raises for a payload that cannot become one)."""
        return CampaignRequest(
            lead_id=lead_id,
            name=self.campaign_name_template.format(lead_id=lead_id, agent=agent, pool=pool),
            number=str(record.payload["number"]),
            agent=agent,
            agent_id=int(agent_id) if agent_id.isdigit() else None,
            fields=_ryng_fields(record.payload),
            field_slots=dict(self.field_slots),
            lead_id_slot=self.lead_id_slot,
            connect_callback_url=self.connect_callback_url,
            terminal_callback_url=self.terminal_callback_url,
        )

    def backoff(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [base/2, min(max, base * 2**(attempt-1))]."""
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** max(0, attempt - 1))
        return (rng or random).uniform(min(ceiling, self.backoff_base_seconds / 2), ceiling)


def _ryng_fields(payload: Mapping[str, Any]) -> dict[str, str]:
    fields = {str(k): str(v) for k, v in (payload.get("fields") or {}).items()}
    if payload.get("name") and "Name" not in fields:
        fields = {"Name": str(payload["name"]), **fields}
    return fields
