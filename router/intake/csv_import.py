"""Leads from files and message queues: each item is validated like an HTTP lead and taken in the same way."""

from __future__ import annotations

import csv
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pydantic import ValidationError

from router.api.schemas import LeadIn
from router.intake.lead_intake import IntakeConflict, IntakeResult, take_lead
from workers.json_input import loads_untrusted
from workers.store.records import LeadStore

if TYPE_CHECKING:
    from router.intake.sources.intake import Source

KNOWN_COLUMNS = ("id", "number", "name", "pool", "agent")


@dataclass
class ImportReport:
    """What an import did: taken, duplicates, and one message per rejected item (with its line)."""

    taken: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)


def lead_from_row(row: dict[str, str]) -> dict[str, Any]:
    """A CSV row as a lead: the known columns, every other non-empty column a field."""
    lead: dict[str, Any] = {k: row[k] for k in KNOWN_COLUMNS if row.get(k)}
    lead["fields"] = {k: v for k, v in row.items() if k and k not in KNOWN_COLUMNS and v not in (None, "")}
    return lead


def validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'lead'}: {e['msg']}" for e in exc.errors(include_url=False)
    )


def take_item(
    data: Any, *, store: LeadStore, enqueue: Callable[[str], None], source: str, pools: Collection[str] | None = None,
    agents: Collection[str] | None = None,
) -> IntakeResult:
    """Validate one item and take it; raises ValueError with a clear message when it is not a valid lead."""
    try:
        lead = LeadIn.model_validate(data)
    except ValidationError as exc:
        raise ValueError(validation_message(exc)) from None
    try:
        return take_lead(lead, store=store, enqueue=enqueue, source=source, pools=pools, agents=agents)
    except IntakeConflict as exc:
        raise ValueError(str(exc)) from None


def read_csv(stream: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, lead) for each row; the header must name at least `id` and `number`."""
    reader = csv.DictReader(stream)
    missing = {"id", "number"} - set(reader.fieldnames or [])
    if missing:
        raise ValueError(f"the CSV header must include {', '.join(sorted(missing))} (found {reader.fieldnames})")
    for row in reader:
        yield reader.line_num, lead_from_row(row)


def import_csv(
    path: Path,
    *,
    store: LeadStore,
    enqueue: Callable[[str], None],
    source: str = "csv",
    pools: Collection[str] | None = None,
    agents: Collection[str] | None = None,
    mapping: Source | None = None,
) -> ImportReport:
    """Import every row; with `mapping` (a source of the routing file) each row is that CRM's record, mapped."""
    report = ImportReport()
    with path.open(newline="", encoding="utf-8-sig") as stream:
        rows = read_csv(stream) if mapping is None else _raw_rows(stream)
        for line, data in rows:
            try:
                results = _take_row(data, store=store, enqueue=enqueue, source=source, pools=pools, agents=agents,
                                    mapping=mapping)
            except ValueError as exc:
                report.errors.append(f"line {line}: {exc}")
                continue
            for result in results:
                if result.duplicate:
                    report.duplicates += 1
                else:
                    report.taken += 1
    return report


def _raw_rows(stream: TextIO) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(stream)
    for row in reader:
        yield reader.line_num, {key: value for key, value in row.items() if key}


def _take_row(
    data: dict[str, Any], *, store: LeadStore, enqueue: Callable[[str], None], source: str,
    pools: Collection[str] | None, agents: Collection[str] | None, mapping: Source | None,
) -> tuple[IntakeResult, ...]:
    if mapping is None:
        return (take_item(data, store=store, enqueue=enqueue, source=source, pools=pools, agents=agents),)
    from router.intake.sources.intake import take_payload

    return take_payload(mapping, data, store=store, enqueue=enqueue, pools=pools, agents=agents).leads


def decode_message(body: Any) -> Any:
    """A queue message body as a lead: a JSON object (bytes or text) or an already-decoded mapping."""
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8")
    if isinstance(body, str):
        try:
            return loads_untrusted(body)
        except ValueError as exc:
            raise ValueError(f"message is not JSON: {exc}") from None
    return body
