"""LeadIn, the lead a CRM sends: number cleaning, id rules, flat fields only, and the normalised payload."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from router.api.schemas import MAX_FIELDS, LeadIn
from workers.store.records import fingerprint


def lead(**overrides: Any) -> dict[str, Any]:
    return {"id": "XT243", "number": "998314242", "name": "James", "fields": {"Product": "Life Insurance"}} | overrides


def errors_for(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        LeadIn.model_validate(data)
    return [".".join(str(p) for p in error["loc"]) for error in caught.value.errors()]


@pytest.mark.parametrize(("given", "cleaned"), [
    ("998314242", "998314242"),
    ("+91 98123 45678", "+919812345678"),
    ("(022) 2345-6789", "02223456789"),
    ("+1.415.555.0100", "+14155550100"),
    ("\t+44 20 7946 0958\n", "+442079460958"),
    ("123456", "123456"),
    ("123456789012345", "123456789012345"),
])
def test_number_is_cleaned(given: str, cleaned: str) -> None:
    assert LeadIn.model_validate(lead(number=given)).number == cleaned


@pytest.mark.parametrize("number", [
    "", "12345", "1234567890123456", "98-ABC-1234", "++919812345678", "91+9812345678", "tel:998314242",
    "998314242 ext 5", "٩٩٨٣١٤٢٤٢",
])
def test_bad_numbers_are_refused(number: str) -> None:
    assert errors_for(lead(number=number)) == ["number"]


def test_number_must_be_a_string() -> None:
    assert errors_for(lead(number=998314242)) == ["number"]


@pytest.mark.parametrize("lead_id", ["XT243", "a", "x" * 128, "crm:lead/42?v=1", "Lead 42", "lé-ß-42"])
def test_good_ids(lead_id: str) -> None:
    assert LeadIn.model_validate(lead(id=lead_id)).id == lead_id


@pytest.mark.parametrize("lead_id", ["", "x" * 129, " XT243", "XT243 ", "XT\n243", "XT\x00243", "\u200bXT"])
def test_bad_ids(lead_id: str) -> None:
    assert errors_for(lead(id=lead_id)) == ["id"]


def test_id_must_be_a_string() -> None:
    assert errors_for(lead(id=243)) == ["id"]


def test_missing_required_and_unknown_keys() -> None:
    assert sorted(errors_for({"name": "x"})) == ["id", "number"]
    assert errors_for(lead(phone="998314242")) == ["phone"]


@pytest.mark.parametrize("value", [{"nested": "x"}, ["a", "b"], None])
def test_nested_or_empty_field_values_are_refused(value: Any) -> None:
    assert errors_for(lead(fields={"Product": value}))[0].startswith("fields.Product")


def test_text_that_cannot_be_utf8_is_refused_wherever_it_is() -> None:
    assert errors_for(lead(fields={"Product": "Life\ud800"})) == ["fields"]
    assert errors_for(lead(name="Ja\udfffmes")) == ["name"]
    assert errors_for(lead(fields={"Pro\ud800": "Life"}))[0].startswith("fields")


def test_flat_field_values_of_every_kind() -> None:
    parsed = LeadIn.model_validate(lead(fields={"Product": "Life", "Age": 42, "Premium": 1.5, "Smoker": False}))
    assert parsed.fields == {"Product": "Life", "Age": 42, "Premium": 1.5, "Smoker": False}


def test_field_limits() -> None:
    assert errors_for(lead(fields={"": "x"}))[0].startswith("fields")
    assert errors_for(lead(fields={"k" * 65: "x"}))[0].startswith("fields")
    assert errors_for(lead(fields={"Notes": "n" * 1001})) == ["fields"]
    LeadIn.model_validate(lead(fields={"Notes": "n" * 1000}))
    assert errors_for(lead(fields={f"f{n}": n for n in range(MAX_FIELDS + 1)})) == ["fields"]
    LeadIn.model_validate(lead(fields={f"f{n}": n for n in range(MAX_FIELDS)}))


@pytest.mark.parametrize(("key", "value"), [("pool", "sales-north"), ("agent", "alice.b@x"), ("pool", None)])
def test_good_pool_and_agent(key: str, value: str | None) -> None:
    assert getattr(LeadIn.model_validate(lead(**{key: value})), key) == value


@pytest.mark.parametrize(("key", "value"), [("pool", "sales north"), ("agent", ""), ("agent", "a" * 65),
                                            ("pool", "pool/1")])
def test_bad_pool_and_agent(key: str, value: str) -> None:
    assert errors_for(lead(**{key: value})) == [key]


def test_normalised_payload() -> None:
    parsed = LeadIn.model_validate_json(json.dumps(lead(
        number="+91 98123-45678", fields={"Product": "Life", "Age": 42, "Premium": 1.5, "Smoker": True,
                                          "Paid": False},
    )))
    assert parsed.normalised() == {
        "id": "XT243", "number": "+919812345678", "name": "James", "pool": None, "agent": None,
        "fields": {"Product": "Life", "Age": "42", "Premium": "1.5", "Smoker": "true", "Paid": "false"},
    }


def test_normalised_makes_equivalent_leads_fingerprint_alike() -> None:
    one = LeadIn.model_validate(lead(number="+91 98123 45678", fields={"Age": 42, "Product": "Life"}))
    two = LeadIn.model_validate(lead(number="+91-98123-45678", fields={"Product": "Life", "Age": "42"}))
    assert fingerprint(one.normalised()) == fingerprint(two.normalised())
    other = LeadIn.model_validate(lead(number="+91 98123 45679", fields={"Age": 42, "Product": "Life"}))
    assert fingerprint(one.normalised()) != fingerprint(other.normalised())


def test_normalised_is_json_ready_and_round_trips() -> None:
    parsed = LeadIn.model_validate(lead(pool="default", agent="alice"))
    payload = parsed.normalised()
    assert json.loads(json.dumps(payload)) == payload
    assert LeadIn.model_validate(payload).normalised() == payload


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValidationError):
        LeadIn.model_validate(lead(fields={"n": value}))


def test_numbers_are_held_to_the_field_length_too() -> None:
    LeadIn.model_validate(lead(fields={"n": 10**999}))  # 1000 digits: at the limit
    with pytest.raises(ValidationError, match="longer than 1000 characters"):
        LeadIn.model_validate(lead(fields={"n": 10**1000}))
    with pytest.raises(ValidationError, match="longer than 1000 characters"):
        LeadIn.model_validate(lead(fields={"n": -(10**999)}))
