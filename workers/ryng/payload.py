"""What we send to Ryng's Create Campaign API: the request, custom-field slots, and the two body formats.

One lead becomes one campaign with one row. Ryng offers eight custom fields per row (`customField1` ..
`customField8`); one of them (`lead_id_slot`, default 8, named `LeadId`) carries the CRM lead id so that
Ryng's callbacks, which carry no campaign id, can be matched to the lead.

JSON (the default) is the documented body with `agentMapping: "global"` and the agent named in `agents`.
Form-data (`campaign-sheet` CSV upload) has no documented place for callback URLs, so none are sent in
that mode. Its CSV header row is `number` followed by the custom field NAMES (`LeadId` included) in slot
order; Ryng numbers the custom fields by column, so with gaps in the slots the column position can differ
from the JSON slot number. Callback handlers should therefore find the lead id by its name `LeadId` in
`customFieldNames`, and fall back to `customField<lead_id_slot>`.

A batch (`BatchRequest`, see `workers.delivery.batch`) is several leads as one campaign with `agentMapping:
"inline"`: each row names its own agent in `agentsAssigned` and carries its own lead id. The campaign has one set
of custom field names, so the rows share one layout: the union of their field names, placed by `assign_slots` as
for one lead (fields a row lacks are left out of that row; names beyond the free slots are dropped, reported).
In form-data the CSV gains an `agentsAssigned` column and the `agents` field says `in-file`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NotRequired, TypedDict

__all__ = [
    "LEAD_ID_FIELD",
    "SLOT_COUNT",
    "BatchRequest",
    "CampaignRequest",
    "PreparedBody",
    "assign_slots",
    "build_csv",
    "build_json_body",
    "csv_filename",
    "prepare_body",
]

SLOT_COUNT = 8
LEAD_ID_FIELD = "LeadId"
# Lead fields never sent as custom fields: `number` would duplicate the CSV's number column (Ryng could
# read the wrong one), `LeadId` would shadow the lead id. Compared case-insensitively; reported as dropped.
_RESERVED_NAMES = frozenset({"number", LEAD_ID_FIELD.casefold()})
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_FILENAME_STEM = 100


@dataclass(frozen=True, slots=True)
class CampaignRequest:
    """One lead to post as a one-row campaign naming one agent."""

    lead_id: str
    name: str
    number: str
    agent: str
    agent_id: int | None
    fields: Mapping[str, str] = field(default_factory=dict)
    field_slots: Mapping[str, int] = field(default_factory=dict)
    lead_id_slot: int = 8
    connect_callback_url: str | None = None
    terminal_callback_url: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.lead_id_slot <= SLOT_COUNT:
            raise ValueError(f"lead_id_slot must be 1..{SLOT_COUNT}, got {self.lead_id_slot}")


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """Several leads (each with its agent) to post as one campaign with per-row agents."""

    name: str
    rows: tuple[CampaignRequest, ...]

    def __post_init__(self) -> None:
        if not self.rows:
            raise ValueError("a batch needs at least one lead")
        if any(not row.agent for row in self.rows):
            raise ValueError("every lead of a batch needs its agent")

    @property
    def lead_id(self) -> str:
        """What names the request in logs and its CSV file: the batch's name."""
        return self.name

    @property
    def agent(self) -> str:
        return ",".join(sorted({row.agent for row in self.rows}))


def assign_slots(
    fields: Mapping[str, str], field_slots: Mapping[str, int], lead_id_slot: int
) -> tuple[dict[int, tuple[str, str]], list[str]]:
    """Place lead fields into custom-field slots 1..8, keeping `lead_id_slot` for the lead id.

    Fields named in `field_slots` take their fixed slot; the other fields fill the free slots in sorted
    field-name order. A fixed slot whose field is absent from this lead is free for the others. Fields that
    find no slot, and fields with a reserved name (`number`, `LeadId`), are returned as dropped, sorted.
    Raises ValueError for a bad `field_slots` (slot outside 1..8, shared, or the lead id slot): a
    configuration error, which `Settings` already rejects at start-up.
    """
    if not 1 <= lead_id_slot <= SLOT_COUNT:
        raise ValueError(f"lead_id_slot must be 1..{SLOT_COUNT}, got {lead_id_slot}")
    owners: dict[int, str] = {}
    for name, slot in field_slots.items():
        if not 1 <= slot <= SLOT_COUNT:
            raise ValueError(f"field {name!r}: slot {slot} is outside 1..{SLOT_COUNT}")
        if slot == lead_id_slot:
            raise ValueError(f"field {name!r}: slot {slot} is the lead id slot")
        if slot in owners:
            raise ValueError(f"fields {owners[slot]!r} and {name!r} share slot {slot}")
        owners[slot] = name

    assigned: dict[int, tuple[str, str]] = {}
    dropped: list[str] = []
    free_names: list[str] = []
    for name in sorted(fields):
        if name.casefold() in _RESERVED_NAMES:
            dropped.append(name)
        elif name in field_slots:
            assigned[field_slots[name]] = (name, fields[name])
        else:
            free_names.append(name)

    free_slots = [s for s in range(1, SLOT_COUNT + 1) if s != lead_id_slot and s not in assigned]
    for slot, name in zip(free_slots, free_names, strict=False):
        assigned[slot] = (name, fields[name])
    dropped.extend(free_names[len(free_slots) :])
    return dict(sorted(assigned.items())), sorted(dropped)


def _columns(request: CampaignRequest) -> tuple[list[tuple[int, str, str]], list[str]]:
    """(slot, name, value) for every custom field, lead id included, in slot order; plus dropped names."""
    slots, dropped = assign_slots(request.fields, request.field_slots, request.lead_id_slot)
    slots[request.lead_id_slot] = (LEAD_ID_FIELD, request.lead_id)
    return [(slot, name, value) for slot, (name, value) in sorted(slots.items())], dropped


class CustomerData(TypedDict):
    """`customerData` of the JSON body; the callback keys only when set."""

    jsonData: list[dict[str, str | list[str]]]
    connectCallbackUrl: NotRequired[str]
    terminalCallbackUrl: NotRequired[str]


class CampaignBody(TypedDict):
    """The JSON body of `POST /campaign`, with the wire's own key names (`agents` only when named)."""

    name: str
    agentMapping: Literal["global", "inline", "all-agents"]
    agents: NotRequired[list[str]]
    customFieldNames: dict[str, str]
    customerData: CustomerData


def _customer_data(
    rows: list[dict[str, str | list[str]]], *, connect: str | None, terminal: str | None
) -> CustomerData:
    data: CustomerData = {"jsonData": rows}
    if connect is not None:
        data["connectCallbackUrl"] = connect
    if terminal is not None:
        data["terminalCallbackUrl"] = terminal
    return data


def build_json_body(request: CampaignRequest) -> tuple[CampaignBody, list[str]]:
    """The JSON body for one lead, and the lead fields that found no slot."""
    columns, dropped = _columns(request)
    row: dict[str, str | list[str]] = {"number": request.number}
    row.update({f"customField{slot}": value for slot, _, value in columns})
    # No agent: the pool chose to let Ryng pick (agentMapping all-agents, Ryng's own default).
    body: CampaignBody = {
        "name": request.name,
        "agentMapping": "global" if request.agent else "all-agents",
        "customFieldNames": {f"customField{slot}Name": name for slot, name, _ in columns},
        "customerData": _customer_data(
            [row], connect=request.connect_callback_url, terminal=request.terminal_callback_url),
    }
    if request.agent:
        body["agents"] = [request.agent]
    return body, dropped


def _batch_layout(batch: BatchRequest) -> tuple[list[tuple[int, str]], list[str]]:
    """(slot, name) for every custom field of the batch's shared layout, lead id included; plus dropped names."""
    first = batch.rows[0]
    union = {name: "" for row in batch.rows for name in row.fields}
    slots, dropped = assign_slots(union, first.field_slots, first.lead_id_slot)
    layout = {slot: name for slot, (name, _) in slots.items()}
    layout[first.lead_id_slot] = LEAD_ID_FIELD
    return sorted(layout.items()), dropped


def _batch_value(row: CampaignRequest, name: str) -> str | None:
    return row.lead_id if name == LEAD_ID_FIELD else row.fields.get(name)


def build_batch_json_body(batch: BatchRequest) -> tuple[CampaignBody, list[str]]:
    """The JSON body for a batch (`agentMapping: "inline"`), and the field names that found no slot."""
    layout, dropped = _batch_layout(batch)
    rows: list[dict[str, str | list[str]]] = []
    for row in batch.rows:
        data: dict[str, str | list[str]] = {"number": row.number, "agentsAssigned": [row.agent]}
        for slot, name in layout:
            value = _batch_value(row, name)
            if value is not None:
                data[f"customField{slot}"] = value
        rows.append(data)
    first = batch.rows[0]
    body: CampaignBody = {
        "name": batch.name,
        "agentMapping": "inline",
        "customFieldNames": {f"customField{slot}Name": name for slot, name in layout},
        "customerData": _customer_data(
            rows, connect=first.connect_callback_url, terminal=first.terminal_callback_url),
    }
    return body, dropped


def build_batch_csv(batch: BatchRequest) -> tuple[bytes, list[str]]:
    """The batch's CSV sheet: header `number`, `agentsAssigned`, field names in slot order; one row per lead."""
    layout, dropped = _batch_layout(batch)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["number", "agentsAssigned", *(name for _, name in layout)])
    for row in batch.rows:
        writer.writerow([row.number, row.agent, *(_batch_value(row, name) or "" for _, name in layout)])
    return buffer.getvalue().encode("utf-8"), dropped


def csv_filename(lead_id: str) -> str:
    """`<lead id>.csv` with anything outside [A-Za-z0-9._-] replaced by `_` (never empty, never hidden)."""
    stem = _UNSAFE_FILENAME.sub("_", lead_id).lstrip(".")[:_MAX_FILENAME_STEM]
    return f"{stem or 'lead'}.csv"


def build_csv(request: CampaignRequest) -> tuple[bytes, list[str]]:
    """The one-row CSV sheet (UTF-8, CRLF): header `number` + field names in slot order, then the row."""
    columns, dropped = _columns(request)
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["number", *(name for _, name, _ in columns)])
    writer.writerow([request.number, *(value for _, _, value in columns)])
    return buffer.getvalue().encode("utf-8"), dropped


@dataclass(frozen=True, slots=True)
class PreparedBody:
    """Ready-to-send httpx arguments: either `content` (JSON) or `data` + `files` (multipart)."""

    content: bytes | None
    data: dict[str, str] | None
    files: dict[str, tuple[str, bytes, str]] | None
    headers: dict[str, str]
    dropped_fields: tuple[str, ...]


def prepare_body(
    request: CampaignRequest | BatchRequest,
    *,
    body_format: Literal["json", "form"],
    form_agent_field: Literal["agents", "agent"],
) -> PreparedBody:
    """Build the body for `body_format`; see the module docstring for the form-data choices."""
    if isinstance(request, BatchRequest):
        return _prepare_batch(request, body_format=body_format)
    if body_format == "json":
        body, dropped = build_json_body(request)
        return _json_prepared(body, dropped)
    sheet, dropped = build_csv(request)
    data = {"campaign-name": request.name}
    if not request.agent:
        pass  # no agent named: Ryng chooses (its default), as the pool asked
    elif form_agent_field == "agent" and request.agent_id is not None:
        data["agent"] = str(request.agent_id)
    else:
        # Configured for the numeric `agent` field but this agent's id is unknown: naming the agent by
        # username (the documented `agents` field) beats letting Ryng pick the first agent.
        data["agents"] = request.agent
    return _form_prepared(request.lead_id, sheet, data, dropped)


def _prepare_batch(batch: BatchRequest, *, body_format: Literal["json", "form"]) -> PreparedBody:
    """A batch names its agents per row: `agentMapping: "inline"`, or a CSV agent column with `agents=in-file`."""
    if body_format == "json":
        body, dropped = build_batch_json_body(batch)
        return _json_prepared(body, dropped)
    sheet, dropped = build_batch_csv(batch)
    return _form_prepared(batch.name, sheet, {"campaign-name": batch.name, "agents": "in-file"}, dropped)


def _json_prepared(body: CampaignBody, dropped: list[str]) -> PreparedBody:
    return PreparedBody(
        content=json.dumps(body, separators=(",", ":")).encode(),  # ASCII: any text encodes
        data=None,
        files=None,
        headers={"content-type": "application/json"},
        dropped_fields=tuple(dropped),
    )


def _form_prepared(stem: str, sheet: bytes, data: dict[str, str], dropped: list[str]) -> PreparedBody:
    return PreparedBody(
        content=None,
        data=data,
        files={"campaign-sheet": (csv_filename(stem), sheet, "text/csv")},
        headers={},
        dropped_fields=tuple(dropped),
    )
