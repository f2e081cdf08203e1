"""A source's payload into the one intake: mapped leads go through `take_lead`, each keyed by its CRM record id.

Every lead of a request is mapped and checked before any is recorded (a batch is refused whole); each is then
taken as a lead of this source, where a re-send with changed values is kept as an update on the lead's record.
An event that names its record without the phone (a source with a `fetch`) is kept waiting for its record
(`workers.fetch.waits`), keyed by its CRM record id the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

import structlog

from config.routing import RoutingConfig
from config.sources_models import SourceConfig
from router.intake.lead_intake import IntakeResult, check_targets, take_lead
from router.intake.sources.mapping import IdOnly, Mapped, MappingError, SourceMapping
from workers.fetch.waits import FetchWaits
from workers.store.counters import Counters
from workers.store.records import LeadStore

__all__ = ["Source", "SourceBook", "SourceTaken", "book_for", "take_payload"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Source:
    """One declared source with its compiled mapping."""

    config: SourceConfig
    mapping: SourceMapping

    @property
    def name(self) -> str:
        return self.config.name


class SourceBook:
    """The sources of one routing configuration, by name."""

    def __init__(self, sources: Iterable[SourceConfig]) -> None:
        self._sources = {config.name: Source(config=config, mapping=SourceMapping(config)) for config in sources}

    def get(self, name: str) -> Source | None:
        return self._sources.get(name)

    @property
    def names(self) -> list[str]:
        return sorted(self._sources)


_last: tuple[RoutingConfig, SourceBook] | None = None
_last_lock = threading.Lock()


def book_for(routing: RoutingConfig) -> SourceBook:
    """The sources of the routing configuration in force, compiled once per configuration (it reloads live)."""
    global _last
    with _last_lock:
        if _last is None or _last[0] is not routing:
            _last = (routing, SourceBook(routing.sources))
        return _last[1]


@dataclass(frozen=True, slots=True)
class SourceTaken:
    """What one request did: the leads taken (new, known, or updated) and the events the filter dropped."""

    leads: tuple[IntakeResult, ...]
    ignored: int

    @property
    def created(self) -> bool:
        return any(not lead.duplicate for lead in self.leads)


def take_payload(
    source: Source,
    payload: Any,
    *,
    store: LeadStore,
    enqueue: Callable[[str], None],
    counters: Counters | None = None,
    pools: Collection[str] | None = None,
    agents: Collection[str] | None = None,
    fetches: FetchWaits | None = None,
) -> SourceTaken:
    """Map the payload (MappingError refuses it whole), check every lead's pool and agent, then take each lead.

    An id-only event of a source with a fetch is kept waiting for its record (`fetches`), status `fetching`.
    """
    mapped: Mapped = source.mapping.map(payload)
    if mapped.fetches and fetches is None:
        raise MappingError("this way in cannot read records from the CRM's API: send events that carry the record")
    for lead in mapped.leads:
        check_targets(lead, pools=pools, agents=agents)
    if mapped.ignored:
        log.info("source_events_ignored", source=source.name, ignored=mapped.ignored)
        if counters is not None:
            counters.incr(f"source_ignored:{source.name}", mapped.ignored)
    results = tuple(
        take_lead(lead, store=store, enqueue=enqueue, source=source.name, pools=pools, agents=agents,
                  on_change="update")
        for lead in mapped.leads
    ) + tuple(_wait_for_record(event, fetches=fetches, source=source.name) for event in mapped.fetches if fetches)
    for result in results:
        log.info("source_lead_taken", source=source.name, lead_id=result.id, status=result.status,
                 duplicate=result.duplicate, updated=result.updated)
    return SourceTaken(leads=results, ignored=mapped.ignored)


def _wait_for_record(event: IdOnly, *, fetches: FetchWaits, source: str) -> IntakeResult:
    """Keep an id-only event's lead until a worker reads its record; a re-send answers the lead's status."""
    accepted = fetches.accept(lead_id=event.id, crm_id=event.crm_id, source=source)
    return IntakeResult(id=event.id, status=accepted.status, duplicate=accepted.outcome != "created")
