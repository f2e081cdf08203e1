"""Sources with a fetch: id-only events wait for their record; the record maps to the lead by the fetch's mapping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.routing import RoutingConfigError, load_routing
from config.sources_models import SourceConfig
from router.intake.sources.mapping import IdOnly, MappingError, SourceMapping
from tests.fixtures import crm


def mapping(**config: Any) -> SourceMapping:
    return SourceMapping(SourceConfig.model_validate({"name": "src", "auth": "none", **config}))


def test_a_hubspot_app_webhook_is_an_id_only_event_and_its_contact_the_lead() -> None:
    source = mapping(preset="hubspot", country_code="+91", fetch={"token_env": "HS_TOKEN"},
                     filter={"field": "subscriptionType", "equals": "contact.creation"})
    mapped = source.map(crm.HUBSPOT_APP_CREATION)
    assert mapped.leads == () and mapped.fetches == (IdOnly(id="src:65059681032", crm_id="65059681032"),)
    lead = source.record_lead(crm.HUBSPOT_CONTACT_RECORD, lead_id="src:65059681032")
    assert (lead.id, lead.number, lead.name) == ("src:65059681032", "+919847033221", "Nisha Pillai")
    assert lead.fields["email"] == "nisha@example.in" and lead.fields["lifecyclestage"] == "lead"


def test_a_hubspot_workflow_contact_with_its_phone_is_taken_at_once_even_with_a_fetch() -> None:
    mapped = mapping(preset="hubspot", country_code="+91", fetch={"token_env": "HS_TOKEN"}).map(
        crm.HUBSPOT_WORKFLOW_CONTACT)
    assert [lead.id for lead in mapped.leads] == ["src:3234574"] and mapped.fetches == ()


def test_a_meta_leadgen_event_and_its_graph_record() -> None:
    source = mapping(fetch={"api": "meta", "token_env": "META_TOKEN"})
    assert source.map(crm.META_LEADGEN).fetches == (IdOnly(id="src:444444444444", crm_id="444444444444"),)
    lead = source.record_lead(crm.META_LEAD_RECORD, lead_id="src:444444444444")
    assert (lead.number, lead.name, lead.fields["email"]) == ("+919811122334", "Rahul Verma", "rahul@example.in")


def test_pipedrive_with_a_fetch_takes_new_leads_as_well_as_new_persons() -> None:
    source = mapping(preset="pipedrive", fetch={"token_env": "PD_TOKEN"})
    lead_event = crm.PIPEDRIVE_CREATE_LEAD
    mapped = source.map(lead_event)
    assert mapped.fetches == (IdOnly(id=f"src:{crm.PIPEDRIVE_LEAD_ID}", crm_id=crm.PIPEDRIVE_LEAD_ID),)
    assert mapping(preset="pipedrive").map(lead_event).ignored == 1  # without a fetch: not a new person
    person = source.record_lead(crm.PIPEDRIVE_PERSON_RECORD, lead_id=f"src:{crm.PIPEDRIVE_LEAD_ID}")
    assert (person.number, person.name) == ("+919986011223", "Kiran Rao")


def test_a_record_without_a_phone_names_the_paths_tried() -> None:
    source = mapping(preset="hubspot", fetch={"token_env": "HS_TOKEN"})
    with pytest.raises(MappingError, match=r"properties\.mobilephone"):
        source.record_lead({"id": "1", "properties": {"firstname": "X"}}, lead_id="src:1")


def test_fetch_mapping_overrides_the_api_defaults() -> None:
    source = mapping(fetch={"api": "meta", "token_env": "T", "mapping": {"name_template": "{id}", "fields": {}}})
    lead = source.record_lead(crm.META_LEAD_RECORD, lead_id="src:444444444444")
    assert lead.name == "444444444444" and lead.fields == {}


def test_without_a_fetch_an_id_only_event_is_still_refused() -> None:
    with pytest.raises(MappingError, match="no phone number"):
        mapping(preset="hubspot").map(crm.HUBSPOT_APP_CREATION)


@pytest.mark.parametrize(("fetch", "message"), [
    ('{ token_env = "T" }', "give api"),
    ('{ api = "hubspot" }', "token_env"),
    ('{ api = "meta", token_env = "T", url = "https://x.example/leads" }', "must contain {id}"),
    ('{ api = "meta", token_env = "T", url = "ftp://x/{id}" }', "not an http"),
    ('{ api = "meta", token_env = "T", mapping = { phone = ["a"], colour = "x" } }', "unknown keys colour"),
    ('{ api = "meta", token_env = "T", mapping = { country_code = "91x" } }', "fetch.mapping"),
    ('{ api = "custom", token_env = "T", url = "https://x.example/{id}", token_in = "query" }', "token_name"),
    ('{ api = "meta", token_env = "NOT_SET_ANYWHERE_42" }', "NOT_SET_ANYWHERE_42 is not set"),
])
def test_the_routing_file_checks_the_fetch_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fetch: str, message: str
) -> None:
    monkeypatch.setenv("T", "tok")
    path = tmp_path / "routing.toml"
    path.write_text(f'[[sources]]\nname = "s"\nauth = "none"\nfetch = {fetch}\n')
    with pytest.raises(RoutingConfigError, match=message) as caught:
        load_routing(path=str(path), agents=["alice"])
    assert "sources" in str(caught.value)


def test_a_fetch_token_is_named_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_TOKEN", "pat-na1-secret")
    path = tmp_path / "routing.toml"
    path.write_text('[[sources]]\nname = "hs"\npreset = "hubspot"\nauth = "none"\n\n'
                    '[sources.fetch]\ntoken_env = "HUBSPOT_TOKEN"\nbase_url = "http://127.0.0.1:9"\n')
    (source,) = load_routing(path=str(path), agents=["alice"]).sources
    assert source.fetch is not None and source.fetch.token_env == "HUBSPOT_TOKEN"
    assert "pat-na1-secret" not in source.model_dump_json()
