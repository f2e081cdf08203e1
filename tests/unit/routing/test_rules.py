"""Rules: operators, all/any, first match wins, explicit pool wins, default pool."""

from __future__ import annotations

import pytest

from config.routing import Condition, RoutingConfig
from workers.routing.rules import UnknownPoolError, matches, route

LEAD = {"source": "crm", "number": "+919800000001", "lead_id": "L1"}


def cond(**spec: object) -> Condition:
    return Condition.model_validate(spec)


@pytest.mark.parametrize(
    ("spec", "fields", "expected"),
    [
        ({"field": "Product", "equals": "Life Insurance"}, {"Product": " life insurance "}, True),
        ({"field": "Product", "equals": "Life Insurance"}, {"Product": "Car"}, False),
        ({"field": "Product", "equals": "Life"}, {}, False),
        ({"field": "Amount", "equals": 1000}, {"Amount": "1,000.0"}, True),
        ({"field": "VIP", "equals": True}, {"VIP": "yes"}, True),
        ({"field": "VIP", "equals": True}, {"VIP": "no"}, False),
        ({"field": "City", "one_of": ["Pune", "Delhi"]}, {"City": "delhi"}, True),
        ({"field": "City", "one_of": ["Pune", "Delhi"]}, {"City": "Agra"}, False),
        ({"field": "Email", "regex": r"@acme\.com$"}, {"Email": "x@acme.com"}, True),
        ({"field": "Email", "regex": r"@acme\.com$"}, {"Email": "x@acme.co"}, False),
        ({"field": "Email", "exists": True}, {"Email": "x"}, True),
        ({"field": "Email", "exists": True}, {"Email": "  "}, False),
        ({"field": "Email", "exists": False}, {}, True),
        ({"field": "Amount", "gt": 10}, {"Amount": "10"}, False),
        ({"field": "Amount", "gte": 10}, {"Amount": "10"}, True),
        ({"field": "Amount", "lt": 10}, {"Amount": "9.5"}, True),
        ({"field": "Amount", "lte": 10}, {"Amount": "abc"}, False),
        ({"field": "Amount", "gte": 10, "lt": 20}, {"Amount": "20"}, False),
        ({"lead": "source", "equals": "crm"}, {}, True),
        ({"lead": "number", "regex": r"^\+91"}, {}, True),
        ({"all": [{"field": "A", "exists": True}, {"lead": "source", "equals": "csv"}]}, {"A": "1"}, False),
        ({"any": [{"field": "A", "exists": True}, {"lead": "source", "equals": "csv"}]}, {"A": "1"}, True),
        ({"any": [{"all": [{"field": "A", "gt": 1}]}, {"field": "B", "exists": True}]}, {"A": "0"}, False),
    ],
)
def test_operators(spec: dict[str, object], fields: dict[str, str], expected: bool) -> None:
    assert matches(cond(**spec), fields=fields, lead=LEAD) is expected


ROUTING = RoutingConfig.model_validate(
    {
        "agents": [{"name": "a"}, {"name": "b"}],
        "pools": [{"name": "life", "members": ["a"]}, {"name": "rest", "members": ["b"]},
                  {"name": "big", "members": ["a", "b"]}],
        "default_pool": "rest",
        "rules": [
            {"name": "life", "pool": "life", "when": {"field": "Product", "equals": "Life Insurance"}},
            {"name": "big", "pool": "big", "when": {"field": "Amount", "gte": 1000}},
        ],
    }
)


def test_first_matching_rule_wins_then_default() -> None:
    both = {"Product": "Life Insurance", "Amount": "5000"}
    assert route(ROUTING, fields=both, source="api", number="1", lead_id="x").rule == "life"
    found = route(ROUTING, fields={"Amount": "5000"}, source="api", number="1", lead_id="x")
    assert (found.pool, found.rule) == ("big", "big")
    found = route(ROUTING, fields={}, source="api", number="1", lead_id="x")
    assert (found.pool, found.rule, found.why) == ("rest", None, "default pool")


def test_explicit_pool_wins_and_must_exist() -> None:
    found = route(ROUTING, fields={"Product": "Life Insurance"}, source="api", number="1", lead_id="x",
                  pool="rest")
    assert (found.pool, found.rule, found.why) == ("rest", None, "explicit pool")
    with pytest.raises(UnknownPoolError):
        route(ROUTING, fields={}, source="api", number="1", lead_id="x", pool="nope")
