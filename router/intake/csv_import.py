"""Leads from files and message queues: each item is validated like an HTTP lead and taken in the same way."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import redis
from pydantic import ValidationError

from router.api.schemas import LeadIn
from router.intake.lead_intake import IntakeConflict, IntakeResult, take_lead
from workers.json_input import loads_untrusted
from workers.store.records import LeadStore

if TYPE_CHECKING:
    from router.intake.sources.intake import Source

KNOWN_COLUMNS = ("id", "number", "name", "pool", "agent")

#: A byte that is not UTF-8, as `errors="surrogateescape"` keeps it: the row is refused, the import goes on.
_BAD_BYTE = re.compile("[\udc80-\udcff]")


@dataclass
class ImportReport:
    """What an import did: taken, duplicates, one message per rejected row (with its line), where it stopped.

    `stopped` is None when every row was read, else why the import ended early (`line` is the last line read).
    `extra_columns` are the header's columns beyond the known ones: kept as lead fields (or, with a source's
    mapping, handed to it as the CRM's record). `targets` counts the new leads by the agent or pool they name.
    """

    taken: int = 0
    duplicates: int = 0
    errors: list[str] = field(default_factory=list)
    rows: int = 0
    line: int = 0
    stopped: str | None = None
    columns: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    taken_ids: list[str] = field(default_factory=list)
    targets: Counter[str] = field(default_factory=Counter)


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


def import_csv(
    path: Path,
    *,
    store: LeadStore,
    enqueue: Callable[[str], None],
    source: str = "csv",
    pools: Collection[str] | None = None,
    agents: Collection[str] | None = None,
    mapping: Source | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import every row; with `mapping` (a source of the routing file) each row is that CRM's record, mapped.

    A bad row (invalid lead, a cell past the CSV field limit, bytes that are not UTF-8) is listed and skipped.
    A fatal error (no usable header, Redis gone, Ctrl-C) ends the import with `stopped` set: the report still
    says what was taken up to there. `progress(bytes_read, rows_read)` is called after each row.
    """
    report = ImportReport()
    with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape",
                                                   newline="") as stream:
        lines = _Lines(stream)
        reader = csv.DictReader(lines)
        try:
            report.columns = _header(reader, needs_lead_columns=mapping is None)
            report.extra_columns = [name for name in report.columns if name not in KNOWN_COLUMNS]
            for line, row in _rows(reader, lines, report):
                report.rows += 1
                if row is not None:
                    _take(row, line=line, report=report, store=store, enqueue=enqueue, source=source, pools=pools,
                          agents=agents, mapping=mapping)
                if progress is not None:
                    progress(raw.tell(), report.rows)
        except (ValueError, redis.RedisError, OSError) as exc:
            report.stopped = str(exc)
        except KeyboardInterrupt:
            report.stopped = "interrupted (Ctrl-C)"
    return report


def _header(reader: csv.DictReader[str], *, needs_lead_columns: bool) -> list[str]:
    try:
        names = [name for name in reader.fieldnames or [] if name]
    except csv.Error as exc:
        raise ValueError(f"line 1: the header cannot be read: {exc}") from None
    if _BAD_BYTE.search("".join(names)):
        raise ValueError("line 1: the header is not UTF-8 text")
    missing = {"id", "number"} - set(names) if needs_lead_columns else set()
    if missing:
        raise ValueError(f"the CSV header must include {', '.join(sorted(missing))} (found {names})")
    return names


class _Lines:
    """The file's lines as the CSV reader takes them, counted: after a row, or a row's error, `count` is the
    number of its last line (the reader's own `line_num` lags behind on an error)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.count = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._stream)
        self.count += 1
        return line


def _rows(
    reader: csv.DictReader[str], lines: _Lines, report: ImportReport
) -> Iterator[tuple[int, dict[str, Any] | None]]:
    """(line, row) for each row; a row that cannot be read is listed in the report and yields None."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:  # a cell past csv.field_size_limit(), a NUL byte: that row only
            report.line = lines.count
            report.errors.append(f"line {lines.count}: unreadable row: {exc}")
            yield lines.count, None
            continue
        report.line = lines.count
        bad = next((name for name, value in row.items() if isinstance(value, str) and _BAD_BYTE.search(value)), None)
        if bad is not None:
            report.errors.append(f"line {lines.count}: column {bad!r} is not UTF-8 text (a bad byte)")
            yield lines.count, None
            continue
        yield lines.count, {key: value for key, value in row.items() if key}


def _take(
    row: dict[str, Any], *, line: int, report: ImportReport, store: LeadStore, enqueue: Callable[[str], None],
    source: str, pools: Collection[str] | None, agents: Collection[str] | None, mapping: Source | None,
) -> None:
    try:
        results = _take_row(row if mapping is not None else lead_from_row(row), store=store, enqueue=enqueue,
                            source=source, pools=pools, agents=agents, mapping=mapping)
    except ValueError as exc:
        report.errors.append(f"line {line}: {exc}")
        return
    for result in results:
        if result.duplicate:
            report.duplicates += 1
            continue
        report.taken += 1
        report.taken_ids.append(result.id)
        if mapping is None:
            report.targets[_target(row)] += 1


def _target(row: Mapping[str, Any]) -> str:
    if row.get("agent"):
        return f"agent {row['agent']}"
    return f"pool {row['pool']}" if row.get("pool") else "routing rules"


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
