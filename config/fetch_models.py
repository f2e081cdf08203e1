"""A source's `[sources.fetch]`: reading the whole record from the CRM's API when an event carries only its id.

HubSpot app webhooks (`objectId`), Meta Lead Ads (`leadgen_id`) and Pipedrive's `create.lead` name a record
without its phone number. With a fetch, such an event is kept (202) and a worker reads the record before the
lead is routed:

    [sources.fetch]
    api = "hubspot"                 # hubspot | meta | pipedrive | custom (default: the source's preset)
    token_env = "HUBSPOT_TOKEN"     # the environment variable holding the API token (never the token itself)
    # base_url = "https://api.hubapi.com"     # the API's address, keeping the api's own path
    # url = "https://crm.example/api/leads/{id}"   # or the whole URL, `{id}` the CRM's record id
    # mapping = { phone = ["properties.phone"] }  # keys of the source's mapping, for the fetched record

The defaults of each api (URL, where the token goes, the mapping of its record) live in `FETCH_APIS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["FETCH_APIS", "MAPPING_KEYS", "FetchApi", "FetchApiDefaults", "FetchConfig", "TokenPlace"]

FetchApi = Literal["hubspot", "meta", "pipedrive", "custom"]
TokenPlace = Literal["bearer", "header", "query"]
_ENV = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
_URL = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
#: The keys of a source's mapping that `fetch.mapping` may set for the fetched record.
MAPPING_KEYS = frozenset({
    "phone", "country_code", "number_format", "name_template", "fields", "fields_root", "pool", "agent",
})


@dataclass(frozen=True, slots=True)
class FetchApiDefaults:
    """One CRM API: where a record is read, how the token is sent, and how its record maps to a lead."""

    base_url: str
    #: Path (and query) after the base URL; `{id}` is the CRM's record id.
    path: str
    token_in: TokenPlace
    token_name: str
    #: A second read whose `{path}` placeholders read the first record (Pipedrive: the lead's person).
    then_path: str | None = None
    #: Mapping keys for the fetched record (below the source's own keys and `fetch.mapping`).
    mapping: dict[str, Any] = field(default_factory=dict)
    #: Where the events and the record id are in the webhook (below the source's own keys).
    events: str | None = None
    id: str | None = None


FETCH_APIS: dict[str, FetchApiDefaults] = {
    # https://developers.hubspot.com/docs/api/crm/contacts : GET /crm/v3/objects/contacts/{contactId},
    # a private app's token as a bearer token; the record is {id, properties: {firstname, phone, ...}}.
    "hubspot": FetchApiDefaults(
        base_url="https://api.hubapi.com",
        path="/crm/v3/objects/contacts/{id}?properties=firstname,lastname,email,phone,mobilephone,"
             "hubspot_owner_id,lifecyclestage",
        token_in="bearer", token_name="Authorization",
        mapping={"phone": ["properties.mobilephone", "properties.phone"],
                 "name_template": "{properties.firstname} {properties.lastname}",
                 "fields": "all", "fields_root": "properties"},
    ),
    # https://developers.facebook.com/docs/marketing-api/guides/lead-ads/retrieving/ : GET /{leadgen_id} with a
    # Page access token; the record is {id, created_time, field_data: [{name, values: [...]}], ...}.
    "meta": FetchApiDefaults(
        base_url="https://graph.facebook.com", path="/v19.0/{id}", token_in="query", token_name="access_token",
        mapping={"phone": ["field_data[?name=='phone_number'].values[0] | [0]",
                           "field_data[?name=='phone'].values[0] | [0]"],
                 "name_template": "{field_data[?name=='full_name'].values[0] | [0]}",
                 "fields": {"email": "field_data[?name=='email'].values[0] | [0]", "form_id": "form_id",
                            "ad_id": "ad_id", "created_time": "created_time"}},
        events="entry[].changes[?field=='leadgen'][].value", id="leadgen_id",
    ),
    # https://developers.pipedrive.com/docs/api/v1/Leads#getLead then /Persons#getPerson : a lead names its
    # person (`data.person_id`), the person has `phone: [{value, primary, label}]`; the API token in `api_token`.
    "pipedrive": FetchApiDefaults(
        base_url="https://api.pipedrive.com", path="/api/v1/leads/{id}", token_in="query", token_name="api_token",
        then_path="/api/v1/persons/{data.person_id}",
        mapping={"phone": ["data.phone[?primary].value | [0]", "data.phone[0].value",
                           "data.phones[?primary].value | [0]", "data.phones[0].value"],
                 "name_template": "{data.name}", "fields": "all", "fields_root": "data"},
    ),
}


class FetchConfig(BaseModel):
    """How the worker reads an id-only event's record from the CRM's API (see the module's docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api: FetchApi | None = Field(default=None, description="the CRM API (default: the source's preset)")
    token_env: str = Field(pattern=_ENV, description="environment variable with the API token")
    base_url: str | None = Field(default=None, max_length=500, description="the API's address, api path kept")
    url: str | None = Field(default=None, max_length=2000, description="the whole URL; {id} is the record id")
    then_url: str | None = Field(default=None, max_length=2000, description="a second read over the first record")
    id: str | None = Field(default=None, description="path to the record id in the event (default: the source's)")
    token_in: TokenPlace | None = None
    token_name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    mapping: dict[str, Any] | None = Field(default=None, description="mapping keys for the fetched record")
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("base_url", "url", "then_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("url")
    @classmethod
    def _names_id(cls, value: str | None) -> str | None:
        if value is not None and "{id}" not in value:
            raise ValueError("url must contain {id}, the CRM's record id")
        return value

    @field_validator("mapping")
    @classmethod
    def _keys(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        unknown = sorted(set(value or {}) - MAPPING_KEYS)
        if unknown:
            raise ValueError(f"mapping: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(MAPPING_KEYS))}")
        return value

    @model_validator(mode="after")
    def _token_place(self) -> FetchConfig:
        if self.token_in == "header" and self.token_name is None:
            raise ValueError("token_in 'header' needs token_name (the header's name)")
        if self.token_in == "query" and self.token_name is None:
            raise ValueError("token_in 'query' needs token_name (the query parameter's name)")
        return self

    def defaults(self, preset: str) -> FetchApiDefaults | None:
        """The api's defaults: `api`, else the one of the source's preset (None for a custom API)."""
        return FETCH_APIS.get(self.api or preset)

    def placeholders(self) -> list[str]:
        """The record paths `then_url` reads."""
        return [name.strip() for name in _PLACEHOLDER.findall(self.then_url or "")]
