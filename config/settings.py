"""The router's settings: environment variables (and `.env`), validated once per process.

Every setting is documented in `.env.example`. A bad value stops start-up with one line naming it
(see `load_settings`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_USERNAME = re.compile(r"^[A-Za-z0-9_.@+-]{1,64}$")


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it."""


class Settings(BaseSettings):
    """All settings; field names map to upper-case environment variables."""

    # An empty variable (`ROUTER_ROUTING_FILE=` as in .env.example) means "not set": the default applies.
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True, env_ignore_empty=True)

    # --- Ryng ---------------------------------------------------------------------------------------
    ryng_base_url: str | None = Field(default=None, description="Ryng REST base URL")
    ryng_subdomain: str | None = Field(default=None, description="Ryng account subdomain")
    ryng_access_token: SecretStr | None = Field(default=None, description="Ryng access token")
    ryng_rate_limit_per_min: int = Field(default=60, ge=1, le=100_000)
    ryng_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    ryng_body_format: Literal["json", "form"] = "json"
    ryng_form_agent_field: Literal["agents", "agent"] = "agents"
    ryng_campaign_name_template: str = "{lead_id}"
    ryng_lead_id_field: int = Field(default=8, ge=1, le=8, description="customFieldN that carries the lead id")
    ryng_field_map: str = Field(default="", description="Name:N,... fixed customField slots for lead fields")
    ryng_rate_window_seconds: float = Field(
        default=61.0, gt=0, le=3600,
        description="the limiter's window (Ryng's minute plus a second of margin; shorter only for tests)")
    ryng_max_batch: int = Field(
        default=1, ge=1, le=500, description="leads one request may carry under a backlog (1: batching off)")
    ryng_batch_delay_seconds: float = Field(
        default=1.0, ge=0, le=60, description="how long a lead may wait to be batched when a backlog builds")

    # --- Storage and queue --------------------------------------------------------------------------
    redis_url: str | None = None
    celery_broker_url: str | None = None
    celery_visibility_timeout: int = Field(default=3600, ge=5, le=86_400)
    router_key_prefix: str = Field(default="lr", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    router_embedded_redis_dir: str = "var/redis"
    router_embedded_redis_port: int = Field(
        default=6390, ge=1, le=65535, description="`lead-router run`'s embedded Redis port (kept from run to run)")
    router_run_dir: str = Field(
        default="var", description="`lead-router run`'s kept secrets and run.env (where the CLI finds its Redis)")
    # --- Scale-out and failover ----------------------------------------------------------------------
    celery_queue: str = Field(default="leads", pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
                              description="the broker queue the workers take delivery tasks from")
    celery_broker_master_name: str | None = Field(
        default=None, description="with CELERY_BROKER_URL=sentinel://...: the Sentinel service name")
    router_redis_min_replicas: int = Field(
        default=0, ge=0, le=16, description="replicas that must hold a new lead before the API answers 202")
    router_redis_replica_timeout_ms: int = Field(default=1000, ge=10, le=60_000)
    # --- Retention ----------------------------------------------------------------------------------
    router_retention_seconds: float = Field(
        default=30 * 86_400, gt=0, description="how long a finished lead keeps its full record and history")
    router_tombstone_seconds: float = Field(
        default=180 * 86_400, gt=0, description="how long its tombstone then answers idempotency")
    router_retention_sweep_seconds: float = Field(default=60.0, gt=0, le=86_400)
    router_export_file: str | None = Field(
        default=None, description="JSON Lines file the outcomes are appended to before records shrink")
    router_export_stream: bool = Field(
        default=False, description="also append them to the Redis stream <prefix>:export")

    # --- Routing ------------------------------------------------------------------------------------
    router_agents: str = ""
    router_routing_file: str | None = None

    # --- Delivery -----------------------------------------------------------------------------------
    router_max_attempts: int = Field(default=8, ge=1, le=100)
    router_backoff_base_seconds: float = Field(default=2.0, gt=0, le=600)
    router_backoff_max_seconds: float = Field(default=300.0, gt=0, le=3000)
    router_max_deliveries: int = Field(default=6, ge=1, le=100)
    router_lease_seconds: float = Field(default=60.0, ge=1, le=3000)
    router_pump_interval_seconds: float = Field(default=0.5, gt=0, le=60)
    router_pause_probe_seconds: float = Field(default=60.0, ge=1, le=3600)
    router_reservation_timeout_seconds: float = Field(default=3600.0, ge=1)

    # --- HTTP face ----------------------------------------------------------------------------------
    router_public_url: str | None = None
    router_callback_secret: SecretStr | None = None
    router_admin_token: SecretStr | None = None
    router_webhook_secrets: SecretStr | None = None
    router_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    router_github_webhook_secret: SecretStr | None = None
    router_max_body_bytes: int = Field(default=65_536, ge=1024, le=10_000_000)
    router_header_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    router_body_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    router_host: str = "127.0.0.1"
    router_port: int = Field(default=8000, ge=1, le=65535)

    # --- Outcomes back to the CRM (a source's outcome_url) ---------------------------------------------
    router_outcome_max_attempts: int = Field(default=12, ge=1, le=100)
    router_outcome_backoff_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    router_outcome_backoff_max_seconds: float = Field(default=1800.0, gt=0, le=86_400)
    router_outcome_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # --- Records of id-only events read from the CRM's API (a source's [sources.fetch]) ----------------
    router_fetch_max_attempts: int = Field(default=10, ge=1, le=100)
    router_fetch_backoff_base_seconds: float = Field(default=5.0, gt=0, le=3600)
    router_fetch_backoff_max_seconds: float = Field(default=900.0, gt=0, le=86_400)
    # --- Front door: who may read leads, and how many connections one client may hold ------------------
    router_read_token: SecretStr | None = Field(default=None, description="bearer token that may read leads")
    router_loopback_reads: bool = Field(
        default=False, description="development only (`lead-router run`): loopback clients read leads freely"
    )
    router_max_connections_per_client: int = Field(
        default=64, ge=0, le=100_000, description="open connections per client address (0: no cap)"
    )

    # --- Sandbox ------------------------------------------------------------------------------------
    sandbox_host: str = "127.0.0.1"
    sandbox_port: int = Field(default=8100, ge=1, le=65535)
    sandbox_token: str = "sandbox-token"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "console"] = "auto"

    @field_validator("ryng_base_url", "router_public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must start with http:// or https:// and name a host")
        return value.rstrip("/")

    @field_validator("ryng_subdomain")
    @classmethod
    def _subdomain(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not re.fullmatch(r"[A-Za-z0-9-]{1,63}", value):
            raise ValueError("must be a bare subdomain such as 'acme' (letters, digits, dashes)")
        return value

    @field_validator("router_agents")
    @classmethod
    def _agents(cls, value: str) -> str:
        for name in _split(value):
            if not _USERNAME.match(name):
                raise ValueError(f"{name!r} is not a valid agent username")
        return value

    @field_validator("redis_url", "celery_broker_url")
    @classmethod
    def _broker_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if "://" not in value:
            raise ValueError("must be a URL such as redis://host:6379/0")
        return value

    @field_validator("ryng_campaign_name_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            value.format(lead_id="x", agent="y", pool="z")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"may use only {{lead_id}}, {{agent}} and {{pool}}: {exc}") from exc
        return value

    @field_validator("ryng_field_map")
    @classmethod
    def _field_map(cls, value: str) -> str:
        parse_field_map(value)
        return value

    @model_validator(mode="after")
    def _coherent(self) -> Settings:
        if self.router_backoff_max_seconds < self.router_backoff_base_seconds:
            raise ValueError("ROUTER_BACKOFF_MAX_SECONDS must be at least ROUTER_BACKOFF_BASE_SECONDS")
        slots = parse_field_map(self.ryng_field_map).values()
        if self.ryng_lead_id_field in slots:
            raise ValueError("RYNG_FIELD_MAP uses the slot of RYNG_LEAD_ID_FIELD")
        return self

    # --- derived ------------------------------------------------------------------------------------
    @property
    def agents(self) -> list[str]:
        return _split(self.router_agents)

    @property
    def delivery_lock_seconds(self) -> float:
        """How long a worker holds a lead: the lease, but never shorter than the longest Ryng request."""
        return max(self.router_lease_seconds, 2 * self.ryng_timeout_seconds + 5)

    @property
    def ryng_url(self) -> str | None:
        """The Ryng REST base URL, or None when the sandbox is in use."""
        if self.ryng_base_url:
            return self.ryng_base_url
        if self.ryng_subdomain:
            return f"https://{self.ryng_subdomain}.ryng.in/rest-api/v1"
        return None

    @property
    def uses_sandbox(self) -> bool:
        return self.ryng_access_token is None or not self.ryng_access_token.get_secret_value()

    @property
    def field_map(self) -> dict[str, int]:
        return parse_field_map(self.ryng_field_map)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_field_map(value: str) -> dict[str, int]:
    """Parse `Name:3,Product:4` into {"Name": 3, "Product": 4}; slots are 1..8 and unique."""
    mapping: dict[str, int] = {}
    for item in _split(value):
        name, sep, slot = item.rpartition(":")
        if not sep or not name or not slot.isdigit() or not 1 <= int(slot) <= 8:
            raise ValueError(f"{item!r} must look like FieldName:N with N from 1 to 8")
        if int(slot) in mapping.values() or name in mapping:
            raise ValueError(f"{item!r} repeats a field name or a slot")
        mapping[name] = int(slot)
    return mapping


def load_settings() -> Settings:
    """Build settings, turning a validation error into one line per bad setting."""
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
            lines.append(f"{name}: {error['msg']}")
        raise SettingsError("invalid setting " + "; ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached); tests call `get_settings.cache_clear()`."""
    return load_settings()
