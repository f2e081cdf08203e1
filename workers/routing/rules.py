"""Rules: which pool a lead goes to. An explicit pool wins; else the first matching rule; else the default."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from config.routing import Condition, RoutingConfig

__all__ = ["Route", "UnknownPoolError", "matches", "route"]


class UnknownPoolError(ValueError):
    """A lead names a pool the routing configuration does not declare."""


@dataclass(frozen=True, slots=True)
class Route:
    pool: str
    rule: str | None
    why: str


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _number(value: str) -> float | None:
    try:
        return float(value.replace(",", "").strip())
    except ValueError:
        return None


def matches(
    condition: Condition, *, fields: Mapping[str, str], lead: Mapping[str, str]
) -> bool:
    """Evaluate a condition against lead fields and lead attributes (source, number, lead_id)."""
    if condition.all is not None:
        return all(matches(part, fields=fields, lead=lead) for part in condition.all)
    if condition.any is not None:
        return any(matches(part, fields=fields, lead=lead) for part in condition.any)
    raw = lead.get(condition.lead) if condition.lead is not None else fields.get(condition.field or "")
    if condition.exists is not None:
        present = raw is not None and str(raw).strip() != ""
        return present == condition.exists
    if raw is None:
        return False
    value = str(raw).strip()
    if condition.equals is not None:
        expected = condition.equals
        if isinstance(expected, bool):
            return value.lower() in (("true", "1", "yes") if expected else ("false", "0", "no"))
        if isinstance(expected, int | float):
            number = _number(value)
            return number is not None and number == float(expected)
        return value.casefold() == expected.strip().casefold()
    if condition.one_of is not None:
        return any(value.casefold() == str(option).strip().casefold() for option in condition.one_of)
    if condition.regex is not None:
        return _compiled(condition.regex).search(value) is not None
    number = _number(value)
    if number is None:
        return False
    return (
        (condition.gt is None or number > condition.gt)
        and (condition.gte is None or number >= condition.gte)
        and (condition.lt is None or number < condition.lt)
        and (condition.lte is None or number <= condition.lte)
    )


def route(
    routing: RoutingConfig, *, fields: Mapping[str, str], source: str, number: str, lead_id: str,
    pool: str | None = None,
) -> Route:
    """Choose the pool for a lead (string comparisons ignore case and surrounding spaces)."""
    pools = {config.name for config in routing.pools}
    if pool is not None:
        if pool not in pools:
            raise UnknownPoolError(f"unknown pool {pool!r}")
        return Route(pool=pool, rule=None, why="explicit pool")
    attributes = {"source": source, "number": number, "lead_id": lead_id}
    for rule in routing.rules:
        if matches(rule.when, fields=fields, lead=attributes):
            return Route(pool=rule.pool, rule=rule.name, why=f"rule {rule.name!r}")
    return Route(pool=routing.default_pool, rule=None, why="default pool")
