"""A source's mapping: a CRM payload in, leads out (or why not), without code.

`SourceMapping.map(payload)` splits the payload into events (`events` path, or a JSON array, or the payload
itself), drops the events its filter refuses, and makes each other event a lead: id (namespaced by the source:
`hubspot:123`), phone (the first non-empty candidate, normalised), name (a template), fields, pool and agent.
Every event must make a lead, or the whole request is refused (`MappingError`, naming the event and the paths
tried): a CRM's batch is all or nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jmespath
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult
from pydantic import ValidationError

from config.sources_models import PickConfig, SourceConfig, record_source
from router.api.schemas import MAX_FIELDS, LeadIn
from router.intake.sources.numbers import normalise_number
from router.intake.sources.presets import Resolved, resolve
from workers.routing.rules import matches

__all__ = ["MAX_EVENTS", "IdOnly", "Mapped", "MappingError", "SourceMapping"]

#: Events in one request (Salesforce sends up to 100 notifications at once).
MAX_EVENTS = 100
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_SPACES = re.compile(r"\s+")


class MappingError(ValueError):
    """The payload cannot be made into leads; the message says which event and why (safe to answer)."""


@dataclass(frozen=True, slots=True)
class IdOnly:
    """An event naming a record without its phone: the lead waits for its record from the CRM's API."""

    id: str
    crm_id: str


@dataclass(frozen=True, slots=True)
class Mapped:
    """What a payload became: the leads to take (in order), the id-only events to fetch, the events dropped."""

    leads: tuple[LeadIn, ...]
    ignored: int
    fetches: tuple[IdOnly, ...] = ()


@lru_cache(maxsize=1024)
def _compiled(path: str) -> ParsedResult | None:
    try:
        return jmespath.compile(path)
    except JMESPathError:
        return None


def lookup(data: Any, path: str) -> Any:
    """The value at `path`: a key as written first (Zoho's `Lead Id`), else the JMESPath expression's result."""
    if isinstance(data, Mapping) and path in data:
        return data[path]
    expression = _compiled(path)
    if expression is None:
        return None
    try:
        return expression.search(data)
    except (JMESPathError, TypeError, ValueError):
        return None


def _text(value: Any) -> str | None:
    """A scalar as the lead stores it; empty, null and structures read as missing."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


class _PathView(Mapping[str, str]):
    """An event seen through paths, for the filter's conditions (`field` is a path)."""

    def __init__(self, event: Any) -> None:
        self._event = event

    def __getitem__(self, path: str) -> str:
        value = _text(lookup(self._event, path))
        if value is None:
            raise KeyError(path)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


#: Objects nested deeper than this are not flattened into fields (a hostile payload cannot exhaust the stack).
_MAX_DEPTH = 8


def _flatten(data: Any, prefix: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """Scalars of nested objects as `a.b` keys; HubSpot's `{value: ...}` property shape counts as its value."""
    if not isinstance(data, Mapping) or depth > _MAX_DEPTH:
        return
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and "value" in value and not isinstance(value["value"], dict | list):
            value = value["value"]
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.", depth + 1)
            continue
        text = _text(value)
        if text is not None:
            yield name, text[:1000]


class SourceMapping:
    """One source's mapping, compiled once per routing configuration."""

    def __init__(self, source: SourceConfig) -> None:
        self.source = source
        self.resolved: Resolved = resolve(source)
        #: The mapping of records read from the CRM's API (sources with a fetch).
        self.record: SourceMapping | None = SourceMapping(record_source(source)) if source.fetch else None

    @property
    def name(self) -> str:
        return self.source.name

    def events(self, payload: Any) -> list[Any]:
        """The events one request carries."""
        events_path = self.resolved.events
        found = lookup(payload, events_path) if events_path else payload
        if events_path and found is None:
            raise MappingError(f"no events at {events_path!r} in the payload")
        items = found if isinstance(found, list) else [found]
        if not items:
            raise MappingError("the payload carries no events")
        if len(items) > MAX_EVENTS:
            raise MappingError(f"at most {MAX_EVENTS} events in one request (got {len(items)})")
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise MappingError(f"event {index}: an event must be an object, not {type(item).__name__}")
        return items

    def wanted(self, event: Any) -> bool:
        """Whether the filter lets this event through as a new lead."""
        rule = self.resolved.filter
        return rule is None or matches(rule, fields=_PathView(event), lead={"source": self.name})

    def map(self, payload: Any) -> Mapped:
        """All events of one request as leads; any event that cannot be one refuses the whole request."""
        events = self.events(payload)
        leads: list[LeadIn] = []
        fetches: list[IdOnly] = []
        ignored = 0
        for index, event in enumerate(events):
            if not self.wanted(event):
                ignored += 1
                continue
            where = f"event {index}: " if len(events) > 1 else ""
            try:
                if self.record is not None and self._raw_number(event) is None:
                    fetches.append(self._id_only(event))
                else:
                    leads.append(self.lead(event))
            except MappingError as exc:
                raise MappingError(f"{where}{exc}") from None
        return Mapped(leads=tuple(leads), ignored=ignored, fetches=tuple(fetches))

    def _id_only(self, event: Any) -> IdOnly:
        path = self.source.fetch.id if self.source.fetch and self.source.fetch.id else self.resolved.id
        crm_id = _text(lookup(event, path))
        if crm_id is None:
            raise MappingError(f"no phone number and no record id to fetch at {path!r}")
        return IdOnly(id=f"{self.name}:{crm_id}", crm_id=crm_id)

    def record_lead(self, record: Any, *, lead_id: str) -> LeadIn:
        """A record read from the CRM's API as the lead `lead_id`, through the fetch's mapping."""
        if self.record is None:
            raise MappingError(f"source {self.name!r} declares no fetch")
        return self.record.lead(record, lead_id=lead_id)

    def _raw_number(self, event: Any) -> str | None:
        return next((value for value in (_text(lookup(event, path)) for path in self.resolved.phone) if value), None)

    def lead(self, event: Any, *, lead_id: str | None = None) -> LeadIn:
        """One event as a lead, validated like `POST /v1/leads`; MappingError says what is missing or wrong.

        `lead_id` is the lead's id when it is known already (a fetched record): the record's own id is not read.
        """
        resolved = self.resolved
        if lead_id is None:
            crm_id = _text(lookup(event, resolved.id))
            if crm_id is None:
                raise MappingError(f"no record id at {resolved.id!r}")
            lead_id = f"{self.name}:{crm_id}"
        raw_number = self._raw_number(event)
        if raw_number is None:
            raise MappingError(f"no phone number: tried {', '.join(repr(p) for p in resolved.phone)}")
        number = normalise_number(
            raw_number, country_code=self.source.country_code, number_format=self.source.number_format
        )
        data: dict[str, Any] = {
            "id": lead_id,
            "number": number,
            "name": self._name(event),
            "fields": self._fields(event),
            "pool": self._pick(self.source.pool, event),
            "agent": self._pick(self.source.agent, event),
        }
        try:
            return LeadIn.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or 'lead'}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            )
            raise MappingError(problems) from None

    def _name(self, event: Any) -> str | None:
        template = self.resolved.name_template
        if not template:
            return None
        text = _PLACEHOLDER.sub(lambda m: _text(lookup(event, m.group(1).strip())) or "", template)
        name = _SPACES.sub(" ", text).strip()
        return name[:200] or None

    def _fields(self, event: Any) -> dict[str, str]:
        chosen = self.resolved.fields
        if isinstance(chosen, dict):
            picked = ((name, _text(lookup(event, path))) for name, path in chosen.items())
            return {name: value[:1000] for name, value in picked if value is not None}
        root = lookup(event, self.resolved.fields_root) if self.resolved.fields_root else event
        # The id and phone are the lead's own: not repeated as fields (each alternative of `a || b` counts).
        paths = (self.resolved.id, *self.resolved.phone)
        used = {part.strip().strip('"') for path in paths for part in path.split("||")}
        fields: dict[str, str] = {}
        for name, value in _flatten(root):
            if len(fields) == MAX_FIELDS:
                break
            if name not in used and len(name) <= 64:
                fields[name] = value
        return fields

    @staticmethod
    def _pick(pick: PickConfig | None, event: Any) -> str | None:
        if pick is None:
            return None
        if pick.value is not None:
            return pick.value
        found = _text(lookup(event, pick.field or ""))
        if found is None:
            return pick.default
        return pick.map.get(found, pick.default if pick.map else found)
