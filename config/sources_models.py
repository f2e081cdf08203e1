"""The routing file's `[[sources]]`: named ways in for a CRM's own payload, and how each becomes a lead.

A source names a `preset` (the CRM's default payload shape) and may override any part of its mapping:

    [[sources]]
    name = "lsq"
    preset = "leadsquared"
    auth = { scheme = "token", header = "x-api-key", secret_env = "LSQ_WEBHOOK_TOKEN" }
    phone = ["Mobile", "Phone"]          # the first non-empty wins
    country_code = "+91"                 # for numbers written without one
    name_template = "{FirstName} {LastName}"
    fields = { Product = "mx_Product" }  # or "all" (flattened)
    agent = { field = "OwnerIdEmailAddress", map = { "asha@acme.in" = "asha" } }
    filter = { field = "ProspectStage", equals = "New" }

A path is a key of the payload as written (`Lead Id`), or else a JMESPath expression (`data.phones[0].value`).
The presets themselves live in `router.intake.sources.presets`; these models only say what may be written.
"""

from __future__ import annotations

import os
import re
from typing import Any, Literal

import jmespath
from jmespath.exceptions import JMESPathError
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from config.conditions import Condition
from config.fetch_models import MAPPING_KEYS, FetchConfig

__all__ = [
    "OUTCOME_FIELDS",
    "PRESETS",
    "PickConfig",
    "Preset",
    "SourceAuth",
    "SourceConfig",
    "check_outcome_template",
    "check_path",
    "condition_paths",
    "record_source",
    "source_problems",
]

Preset = Literal["leadsquared", "hubspot", "zoho", "salesforce", "pipedrive", "generic"]
PRESETS: tuple[Preset, ...] = ("leadsquared", "hubspot", "zoho", "salesforce", "pipedrive", "generic")
AuthScheme = Literal["none", "token", "basic", "standard_webhooks", "hubspot", "salesforce", "meta"]
HubSpotVersion = Literal["v1", "v2", "v3"]
NumberFormat = Literal["e164", "national", "as_sent"]
_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
_HEADER = r"^[A-Za-z0-9-]{1,64}$"
_ENV = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_COUNTRY_CODE = re.compile(r"^\+?[1-9][0-9]{0,2}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_path(path: str) -> str:
    """A path is accepted when it is a JMESPath expression or a plain key (spaces allowed, as Zoho writes them)."""
    if not path or len(path) > 500:
        raise ValueError("a path must be 1-500 characters")
    try:
        jmespath.compile(path)
    except JMESPathError as exc:
        if any(ch in path for ch in "[]{}|@`&!"):
            raise ValueError(f"{path!r} is neither a field name nor a valid JMESPath expression: {exc}") from None
    return path


def condition_paths(condition: Condition) -> list[str]:
    """Every `field` a condition reads (the filter's fields are payload paths)."""
    if condition.all is not None or condition.any is not None:
        return [path for part in (condition.all or condition.any or ()) for path in condition_paths(part)]
    return [condition.field] if condition.field is not None else []


#: What an outcome carries, and the placeholders an `outcome_template` may use.
OUTCOME_FIELDS = (
    "type", "lead_id", "crm_id", "source", "status", "agent", "disposition", "talktime", "call_started",
    "call_ended", "recording_url", "call_id", "attempts", "dead_reason", "at",
)


def check_outcome_template(template: Any) -> None:
    """Every string of the template may use only `{field}` placeholders of OUTCOME_FIELDS."""
    if isinstance(template, dict):
        for value in template.values():
            check_outcome_template(value)
    elif isinstance(template, list):
        for value in template:
            check_outcome_template(value)
    elif isinstance(template, str):
        for name in re.findall(r"\{([^{}]*)\}", template):
            if name not in OUTCOME_FIELDS:
                known = ", ".join(OUTCOME_FIELDS)
                raise ValueError(f"outcome_template: unknown placeholder {{{name}}}; known: {known}")


class SourceAuth(_Model):
    """How a source's requests prove they come from the CRM. Secrets are read from environment variables.

    - `token`: a shared secret in a header (`header`) or in the URL's query (`query`), compared in constant time.
    - `basic`: HTTP basic auth (`username`, password in `secret_env`) - Pipedrive's only option.
    - `standard_webhooks`: `webhook-id/-timestamp/-signature` headers; `secret_env` holds `whsec_...` secrets.
    - `hubspot`: `X-HubSpot-Signature` v1/v2 and `X-HubSpot-Signature-v3` (timestamp within
      `tolerance_seconds`); `secret_env` holds the app's client secret.
    - `salesforce`: the Outbound Message's `OrganizationId` must be `organization_id`.
    - `meta`: Meta's `X-Hub-Signature-256` (HMAC-SHA256 of the body with the app secret in `secret_env`); the
      subscription check (`GET` with `hub.verify_token`) is answered when it names `verify_token_env`'s value.
    """

    scheme: AuthScheme
    header: str | None = Field(default=None, pattern=_HEADER)
    query: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    username: str | None = Field(default=None, max_length=200)
    secret_env: str | None = Field(default=None, pattern=_ENV, description="environment variable with the secret")
    organization_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")
    verify_token_env: str | None = Field(
        default=None, pattern=_ENV, description="meta: environment variable with the subscription's verify token"
    )
    versions: tuple[HubSpotVersion, ...] = ("v1", "v2", "v3")
    tolerance_seconds: int = Field(default=300, ge=1, le=3600)

    @model_validator(mode="after")
    def _complete(self) -> SourceAuth:
        needs_secret = self.scheme in ("token", "basic", "standard_webhooks", "hubspot", "meta")
        if needs_secret and self.secret_env is None:
            raise ValueError(f"scheme {self.scheme!r} needs secret_env (the environment variable holding it)")
        if self.scheme == "token" and (self.header is None) == (self.query is None):
            raise ValueError("scheme 'token' needs exactly one of header or query")
        if self.scheme == "basic" and not self.username:
            raise ValueError("scheme 'basic' needs a username")
        if self.scheme == "salesforce" and self.organization_id is None:
            raise ValueError("scheme 'salesforce' needs organization_id")
        if self.scheme == "meta" and self.verify_token_env is None:
            raise ValueError("scheme 'meta' needs verify_token_env (the token Meta's subscription check sends)")
        if self.scheme == "hubspot" and not self.versions:
            raise ValueError("scheme 'hubspot' needs at least one of versions v1, v2, v3")
        return self

    def secret(self) -> str | None:
        """The secret's value from the environment (None when unset or empty)."""
        return os.environ.get(self.secret_env) or None if self.secret_env else None


class PickConfig(_Model):
    """A pool or agent for the lead: a fixed `value`, or read from a payload `field` and translated by `map`.

    A value the map does not know falls back to `default` (none: the routing rules decide).
    """

    value: str | None = None
    field: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    default: str | None = None

    @model_validator(mode="after")
    def _one(self) -> PickConfig:
        if (self.value is None) == (self.field is None):
            raise ValueError("give exactly one of value or field")
        if self.field is not None:
            check_path(self.field)
        return self


class SourceConfig(_Model):
    """One named source: `POST /v1/sources/{name}`. Unset mapping keys come from the preset."""

    name: str = Field(pattern=_NAME)
    preset: Preset = "generic"
    auth: Literal["none"] | SourceAuth = Field(description='how requests are verified; "none" must be explicit')
    events: str | None = Field(default=None, description="path to the list of events in one request")
    id: str | None = Field(default=None, description="path to the CRM's record id")
    phone: tuple[str, ...] | None = Field(default=None, description="candidate paths; the first non-empty wins")
    country_code: str | None = Field(default=None, description='country code for numbers without one, e.g. "+91"')
    number_format: NumberFormat = "e164"
    name_template: str | None = Field(default=None, max_length=500)
    fields: Literal["all"] | dict[str, str] | None = None
    fields_root: str | None = Field(default=None, description='with fields = "all": the object to flatten')
    pool: PickConfig | None = None
    agent: PickConfig | None = None
    filter: Condition | None = None
    outcome_url: str | None = Field(
        default=None, pattern=r"^https?://[^\s/]+", max_length=2000, description="where call outcomes are sent"
    )
    outcome_secret_env: str | None = Field(
        default=None, pattern=_ENV, description="environment variable with the whsec_ secret signing outcomes"
    )
    outcome_template: dict[str, Any] | None = Field(
        default=None, description="reshapes the outcome: {placeholder} strings over its fields, nested tables"
    )
    fetch: FetchConfig | None = Field(
        default=None, description="read an id-only event's record from the CRM's API (see config.fetch_models)"
    )

    @model_validator(mode="after")
    def _outcomes(self) -> SourceConfig:
        if self.outcome_url is not None and self.outcome_secret_env is None:
            raise ValueError("outcome_url needs outcome_secret_env: outcomes are always signed")
        if self.outcome_template is not None:
            check_outcome_template(self.outcome_template)
        return self

    @model_validator(mode="after")
    def _fetch(self) -> SourceConfig:
        fetch = self.fetch
        if fetch is None:
            return self
        if fetch.url is None and fetch.defaults(self.preset) is None:
            raise ValueError(f"fetch: give api (hubspot, meta, pipedrive) or url: preset {self.preset!r} has no API")
        if fetch.id is not None:
            check_path(fetch.id)
        for path in fetch.placeholders():
            check_path(path)
        if self.name != _RECORD:  # the fetched record's mapping is checked once, here
            record_source(self)
        return self

    @field_validator("events", "id", "fields_root")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else check_path(value)

    @field_validator("phone")
    @classmethod
    def _phones(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None:
            if not value:
                raise ValueError("name at least one path")
            for path in value:
                check_path(path)
        return value

    @field_validator("country_code")
    @classmethod
    def _country(cls, value: str | None) -> str | None:
        if value is not None and not _COUNTRY_CODE.match(value):
            raise ValueError(f"{value!r} is not a country calling code such as +91")
        return None if value is None else "+" + value.lstrip("+")

    @field_validator("name_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            for path in re.findall(r"\{([^{}]*)\}", value):
                check_path(path.strip())
        return value

    @field_validator("fields")
    @classmethod
    def _fields(cls, value: Literal["all"] | dict[str, str] | None) -> Literal["all"] | dict[str, str] | None:
        if isinstance(value, dict):
            for name, path in value.items():
                if not 1 <= len(name) <= 64:
                    raise ValueError(f"field name {name!r} must be 1-64 characters")
                check_path(path)
        return value

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: Condition | None) -> Condition | None:
        if value is not None:
            for path in condition_paths(value):
                check_path(path)
        return value


#: The name of the mapping a fetched record goes through (never a source of its own).
_RECORD = "fetched-record"


def record_source(source: SourceConfig) -> SourceConfig:
    """The mapping of a source's fetched records: `fetch.mapping`, else the source's own keys, else the API's.

    The record id is the event's, so the result has no `id`, `events` or `filter`; it has the source's preset.
    """
    fetch = source.fetch
    if fetch is None:
        raise ValueError(f"source {source.name!r} declares no fetch")
    api = fetch.defaults(source.preset)
    own = source.model_dump(include=set(MAPPING_KEYS), exclude_unset=True)
    data: dict[str, Any] = {**(api.mapping if api else {}), **own, **(fetch.mapping or {})}
    try:
        return SourceConfig.model_validate({"name": _RECORD, "preset": source.preset, "auth": "none", **data})
    except ValueError as exc:
        raise ValueError(f"fetch.mapping: {exc}") from None


def source_problems(
    sources: tuple[SourceConfig, ...], *, pools: list[str], agents: list[str]
) -> list[tuple[tuple[str, ...], str]]:
    """What one source alone cannot check: unique names, known pools and agents, secrets present."""
    problems: list[tuple[tuple[str, ...], str]] = []
    names = [source.name for source in sources]
    for index, source in enumerate(sources):
        path = ("sources", str(index))
        if source.name in names[:index]:
            problems.append(((*path, "name"), f"source {source.name!r} is declared twice"))
        for key, known, kind in (("pool", pools, "pool"), ("agent", agents, "agent")):
            pick: PickConfig | None = getattr(source, key)
            if pick is None:
                continue
            named = {pick.value, pick.default, *pick.map.values()} - {None}
            unknown = sorted(str(name) for name in named if name not in known)
            if unknown:
                problems.append(((*path, key), f"unknown {kind}s: {', '.join(unknown)}"))
        auth = source.auth
        if isinstance(auth, SourceAuth) and auth.secret_env is not None and auth.secret() is None:
            problems.append(((*path, "auth", "secret_env"), f"environment variable {auth.secret_env} is not set"))
        if isinstance(auth, SourceAuth) and auth.verify_token_env and not os.environ.get(auth.verify_token_env):
            problems.append(((*path, "auth", "verify_token_env"),
                             f"environment variable {auth.verify_token_env} is not set"))
        if source.fetch is not None and not os.environ.get(source.fetch.token_env):
            problems.append(((*path, "fetch", "token_env"),
                             f"environment variable {source.fetch.token_env} is not set"))
        if source.outcome_secret_env is not None and not os.environ.get(source.outcome_secret_env):
            problems.append(((*path, "outcome_secret_env"),
                             f"environment variable {source.outcome_secret_env} is not set"))
    return problems
