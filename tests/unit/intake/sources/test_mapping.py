"""Each preset turns its CRM's documented payload into the expected lead; the mapping's parts on their own."""

from __future__ import annotations

from typing import Any

import pytest

from config.sources_models import SourceConfig
from router.intake.sources.decoding import decode_body
from router.intake.sources.mapping import MappingError, SourceMapping
from tests.fixtures import crm


def mapping(**config: Any) -> SourceMapping:
    return SourceMapping(SourceConfig.model_validate({"name": "src", "auth": "none", **config}))


def test_leadsquared_flat_record_uses_mobile_then_phone_and_keeps_all_fields() -> None:
    mapped = mapping(preset="leadsquared", country_code="+91").map(crm.LEADSQUARED_CREATE)
    (lead,) = mapped.leads
    assert lead.id == "src:5d0b6b8e-7d3b-11ee-b962-0242ac120002"
    assert lead.number == "+919876543210"  # Mobile is null, so Phone; +91-98765 43210 normalised
    assert lead.name == "Asha Menon"
    assert lead.fields["mx_Product"] == "Life Insurance" and lead.fields["ProspectStage"] == "Prospect"
    assert "ProspectID" not in lead.fields and "Mobile" not in lead.fields


def test_hubspot_workflow_contact_prefers_the_mobile_and_unwraps_property_values() -> None:
    (lead,) = mapping(preset="hubspot", country_code="+91").map(crm.HUBSPOT_WORKFLOW_CONTACT).leads
    assert (lead.id, lead.number, lead.name) == ("src:3234574", "+919845012345", "Meera Iyer")
    assert lead.fields["lifecyclestage"] == "lead" and lead.fields["email"] == "meera@example.in"


def test_zoho_form_skips_an_empty_mobile_and_drops_the_trunk_zero() -> None:
    payload = decode_body(crm.ZOHO_FORM, content_type="application/x-www-form-urlencoded")
    (lead,) = mapping(preset="zoho", country_code="+91", number_format="national").map(payload).leads
    assert (lead.id, lead.number, lead.name) == ("src:4876876000000624001", "9845098450", "Ravi Kumar")
    assert lead.fields["Lead_Source"] == "Trade Show"


def test_salesforce_outbound_message_is_one_lead_per_notification() -> None:
    payload = decode_body(crm.SALESFORCE_TWO_LEADS, content_type="text/xml; charset=utf-8")
    leads = mapping(preset="salesforce", country_code="+91").map(payload).leads
    assert [(lead.id, lead.number, lead.name) for lead in leads] == [
        ("src:00Q5g00000AbCdEEAZ", "+919900123456", "Priya Nair"),
        ("src:00Q5g00000AbCdFEAZ", "+913324567890", "Arjun Das"),
    ]
    assert leads[0].fields["LeadSource"] == "Web" and leads[0].fields["type"] == "Lead"


def test_pipedrive_creation_is_a_lead_and_a_change_is_ignored() -> None:
    source = mapping(preset="pipedrive", country_code="+91")
    (lead,) = source.map(crm.PIPEDRIVE_CREATE_PERSON).leads
    assert (lead.id, lead.number, lead.name) == ("src:812", "+919986011223", "Kiran Rao")
    changed = source.map(crm.PIPEDRIVE_CHANGE_PERSON)
    assert (changed.leads, changed.ignored) == ((), 1)


def test_declared_mapping_overrides_the_preset() -> None:
    source = mapping(
        preset="generic", id="lead.ref", phone=["lead.alt", "lead.tel"], name_template="{lead.first} ({lead.city})",
        fields={"City": "lead.city", "Missing": "lead.nothing"}, number_format="as_sent",
        agent={"field": "lead.owner", "map": {"asha@acme.in": "alice"}},
        pool={"value": "default"},
        filter={"field": "lead.stage", "equals": "New"},
    )
    payload = {"lead": {"ref": 42, "tel": "998-314-242", "first": "James", "city": "Pune", "owner": "asha@acme.in",
                        "stage": "new"}}
    (lead,) = source.map(payload).leads
    assert lead.model_dump() == {
        "id": "src:42", "number": "998314242", "name": "James (Pune)", "pool": "default", "agent": "alice",
        "fields": {"City": "Pune"},
    }
    assert source.map({"lead": {**payload["lead"], "stage": "Won"}}).ignored == 1


def test_an_unmapped_agent_falls_back_to_the_default_or_to_the_rules() -> None:
    source = mapping(agent={"field": "owner", "map": {"a@x": "alice"}})
    (lead,) = source.map({"id": "1", "phone": "998314242", "owner": "z@x"}).leads
    assert lead.agent is None
    source = mapping(agent={"field": "owner", "map": {"a@x": "alice"}, "default": "bob"})
    assert source.map({"id": "1", "phone": "998314242", "owner": "z@x"}).leads[0].agent == "bob"


def test_no_phone_names_every_path_tried() -> None:
    with pytest.raises(MappingError, match="no phone number: tried 'Mobile', 'Phone'"):
        mapping(preset="leadsquared").map({**crm.LEADSQUARED_CREATE, "Phone": "  "})


def test_a_batch_is_refused_whole_naming_the_bad_event() -> None:
    batch = [{"id": "1", "phone": "998314242"}, {"id": "2"}]
    with pytest.raises(MappingError, match="event 1: no phone number"):
        mapping().map(batch)


def test_a_bad_number_is_a_mapping_error_naming_the_field() -> None:
    with pytest.raises(MappingError, match="number"):
        mapping().map({"id": "1", "phone": "12"})


def test_no_record_id_is_refused() -> None:
    with pytest.raises(MappingError, match="no record id"):
        mapping().map({"phone": "998314242"})


def test_more_than_100_events_are_refused() -> None:
    with pytest.raises(MappingError, match="at most 100 events"):
        mapping().map([{"id": str(i), "phone": "998314242"} for i in range(101)])


def test_fields_all_keeps_at_most_32_non_empty_scalars() -> None:
    payload = {"id": "1", "phone": "998314242", **{f"f{i}": str(i) for i in range(40)}, "empty": "", "n": None}
    (lead,) = mapping().map(payload).leads
    assert len(lead.fields) == 32 and "empty" not in lead.fields and "n" not in lead.fields


def test_a_zoho_style_key_with_spaces_is_a_path() -> None:
    (lead,) = mapping(id="Lead Id").map({"Lead Id": "77", "phone": "998314242"}).leads
    assert lead.id == "src:77"


def test_deeply_nested_payloads_are_mapped_without_exhausting_the_stack() -> None:
    nested: dict[str, object] = {"leaf": "x"}
    for _ in range(900):
        nested = {"n": nested}
    (lead,) = mapping().map({"id": "1", "phone": "998314242", "deep": nested}).leads
    assert lead.fields == {}
