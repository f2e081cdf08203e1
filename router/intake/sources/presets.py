"""Each CRM's default payload shape: where its id, phone, name and fields are, and which events are new leads.

A source's own keys win over its preset's; a source with only `name`, `preset` and `auth` uses these. The
shapes follow the vendors' public documentation (named per preset); the README's "Connect your CRM" says what
each CRM sees in answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from config.conditions import Condition
from config.sources_models import Preset, SourceConfig

__all__ = ["PRESET_DEFAULTS", "Resolved", "resolve"]


@dataclass(frozen=True, slots=True)
class Resolved:
    """A source's mapping with its preset's defaults filled in."""

    events: str | None
    id: str
    phone: tuple[str, ...]
    name_template: str | None
    fields: Literal["all"] | dict[str, str]
    fields_root: str | None
    filter: Condition | None


PRESET_DEFAULTS: dict[Preset, Resolved] = {
    # https://apidocs.leadsquared.com/webhooks/ : one flat lead per request, values strings or null.
    "leadsquared": Resolved(
        events=None, id="ProspectID", phone=("Mobile", "Phone"), name_template="{FirstName} {LastName}",
        fields="all", fields_root=None, filter=None,
    ),
    # https://developers.hubspot.com/docs/methods/workflows/webhook_information : the contact as the legacy
    # contacts API returns it (`vid`, `properties.<name>.value`); newer bodies carry `hs_object_id` / `objectId`.
    "hubspot": Resolved(
        events=None, id="vid || properties.hs_object_id.value || properties.hs_object_id || objectId || id",
        phone=(
            "properties.mobilephone.value", "properties.mobilephone",
            "properties.phone.value", "properties.phone",
        ),
        name_template="{properties.firstname.value || properties.firstname} "
                      "{properties.lastname.value || properties.lastname}",
        fields="all", fields_root="properties", filter=None,
    ),
    # https://www.zoho.com/crm/help/automation/webhooks.html : the admin's parameters; Zoho's own API names.
    "zoho": Resolved(
        events=None, id="id || Lead_Id || \"Lead Id\" || LEADID", phone=("Mobile", "Phone"),
        name_template="{First_Name} {Last_Name}", fields="all", fields_root=None, filter=None,
    ),
    # https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_notifications.htm
    # : 1-100 Notification elements, each with an sObject of the fields the admin chose.
    "salesforce": Resolved(
        events="Notification", id="sObject.Id", phone=("sObject.MobilePhone", "sObject.Phone"),
        name_template="{sObject.FirstName} {sObject.LastName}", fields="all", fields_root="sObject", filter=None,
    ),
    # https://pipedrive.readme.io/docs/guide-for-webhooks-v2 : {meta, data, previous}; a new person is
    # meta.action "create" (v1: "added", with `current`).
    "pipedrive": Resolved(
        events=None, id="meta.entity_id || meta.id || current.id",
        phone=(
            "data.phones[?primary].value | [0]", "data.phones[0].value",
            "current.phone[?primary].value | [0]", "current.phone[0].value",
        ),
        name_template="{data.name || current.name}", fields="all", fields_root="data || current",
        filter=Condition.model_validate(
            {"all": [{"field": "meta.action", "one_of": ["create", "added"]},
                     {"field": "meta.entity || meta.object", "equals": "person"}]}
        ),
    ),
    # Flat JSON or form: the router's own names, and the usual alternatives.
    "generic": Resolved(
        events=None, id="id || lead_id || ID", phone=("number", "phone", "mobile", "Phone", "Mobile"),
        name_template="{name}", fields="all", fields_root=None, filter=None,
    ),
}


#: Pipedrive with a fetch: a new lead (`create.lead`, id only) is a new lead too, beside a new person.
_PIPEDRIVE_WITH_LEADS = Condition.model_validate(
    {"all": [{"field": "meta.action", "one_of": ["create", "added"]},
             {"field": "meta.entity || meta.object", "one_of": ["person", "lead"]}]}
)


def resolve(source: SourceConfig) -> Resolved:
    """The source's mapping: its own keys, else its fetch API's (where the events and ids are), else its preset's."""
    base = PRESET_DEFAULTS[source.preset]
    api = source.fetch.defaults(source.preset) if source.fetch is not None else None
    if source.fetch is not None and source.preset == "pipedrive":
        base = replace(base, filter=_PIPEDRIVE_WITH_LEADS)
    if api is not None and api.events is not None:
        base = replace(base, events=api.events)
    if api is not None and api.id is not None:
        base = replace(base, id=api.id)
    return Resolved(
        events=source.events if source.events is not None else base.events,
        id=source.id or base.id,
        phone=source.phone or base.phone,
        name_template=source.name_template if source.name_template is not None else base.name_template,
        fields=source.fields if source.fields is not None else base.fields,
        fields_root=source.fields_root if source.fields_root is not None else base.fields_root,
        filter=source.filter if source.filter is not None else base.filter,
    )
