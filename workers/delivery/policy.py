"""The delivery policy: how often to retry, how long to back off, how to name a campaign and fill its fields."""

from __future__ import annotations

import random
from dataclasses import dataclass

from config.settings import Settings
from workers.ryng.target import callback_urls

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
        )

    def backoff(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [base/2, min(max, base * 2**(attempt-1))]."""
        ceiling = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** max(0, attempt - 1))
        return (rng or random).uniform(min(ceiling, self.backoff_base_seconds / 2), ceiling)
