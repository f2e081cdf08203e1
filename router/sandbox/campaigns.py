"""Reading a Create Campaign request (JSON or form-data with a CSV sheet), validating it the way a plausible
Ryng would, and assigning every row to an agent the way Ryng does (round robin *within* the campaign only)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from router.sandbox.models import AgentMapping, BodyFormat, CampaignRow, CampaignSubmission

MAX_CUSTOM_FIELDS = 8
_NUMBER = re.compile(r"^\+?[0-9][0-9 ()-]*$")
_URL = re.compile(r"^https?://\S+$")
_FIELD_NAME_KEY = re.compile(r"^customField([1-8])Name$")
_FIELD_KEY = re.compile(r"^customField(\d+)$", re.IGNORECASE)
_NUMBER_HEADERS = {
    "number",
    "mobile",
    "phone",
    "customernumber",
    "customernum",
    "mobilenumber",
    "phonenumber",
}
_AGENT_HEADERS = {"agentsassigned", "agents", "agent", "agentusername"}
_MAPPINGS: tuple[AgentMapping, ...] = ("global", "inline", "all-agents")


class CampaignError(Exception):
    """The request is not a valid campaign; the message is what the sandbox answers with (400)."""


@dataclass
class _RawRow:
    number: str
    agents_assigned: list[str] = field(default_factory=list)
    custom_fields: dict[str, str] = field(default_factory=dict)


def parse_json_campaign(
    body: object, *, agents: Mapping[str, int], reject_unknown_agents: bool
) -> CampaignSubmission:
    """Validate a JSON Create Campaign body and assign its rows."""
    if not isinstance(body, dict):
        raise CampaignError("Request body must be a JSON object")
    name = _optional_str(body.get("name"), "name")
    mapping_value = body.get("agentMapping", "all-agents")
    if mapping_value not in _MAPPINGS:
        raise CampaignError("agentMapping must be one of global, inline, all-agents")
    mapping: AgentMapping = mapping_value
    named = _str_list(body.get("agents"), "agents")
    if mapping == "global" and not named:
        raise CampaignError("agents is required when agentMapping is global")
    field_names = _custom_field_names(body.get("customFieldNames"))
    customer_data = body.get("customerData")
    if not isinstance(customer_data, dict):
        raise CampaignError("customerData is required and must be an object")
    connect_url = _callback_url(customer_data.get("connectCallbackUrl"), "connectCallbackUrl")
    terminal_url = _callback_url(customer_data.get("terminalCallbackUrl"), "terminalCallbackUrl")
    json_rows = customer_data.get("jsonData")
    if not isinstance(json_rows, list) or not json_rows:
        raise CampaignError("customerData.jsonData must be a non-empty array")
    rows = [_json_row(index, row) for index, row in enumerate(json_rows)]
    return _submission(
        name=name,
        body_format="json",
        mapping=mapping,
        named=named,
        field_names=field_names,
        connect_url=connect_url,
        terminal_url=terminal_url,
        raw_rows=rows,
        agents=agents,
        reject_unknown_agents=reject_unknown_agents,
    )


def parse_form_campaign(
    *,
    sheet: bytes | None,
    agents_values: Sequence[str],
    agent_values: Sequence[str],
    name: str | None,
    connect_url: str | None,
    terminal_url: str | None,
    agents: Mapping[str, int],
    reject_unknown_agents: bool,
) -> CampaignSubmission:
    """Validate a form-data request (`campaign-sheet`, `agents` or `agent`, `campaign-name`)."""
    if sheet is None:
        raise CampaignError("campaign-sheet is required")
    named = [part.strip() for value in agents_values for part in value.split(",") if part.strip()]
    in_file = len(named) == 1 and named[0].lower() == "in-file"
    ids_by_value = {str(agent_id): username for username, agent_id in agents.items()}
    for value in agent_values:
        for part in (p.strip() for p in value.split(",")):
            if part:
                named.append(ids_by_value.get(part, part))
    if in_file and agent_values:
        raise CampaignError("agents 'in-file' cannot be combined with agent")
    field_names, raw_rows = _read_sheet(sheet, in_file=in_file)
    mapping: AgentMapping = "inline" if in_file else ("global" if named else "all-agents")
    return _submission(
        name=name or None,
        body_format="form",
        mapping=mapping,
        named=[] if in_file else named,
        field_names=field_names,
        connect_url=_callback_url(connect_url or None, "connectCallbackUrl"),
        terminal_url=_callback_url(terminal_url or None, "terminalCallbackUrl"),
        raw_rows=raw_rows,
        agents=agents,
        reject_unknown_agents=reject_unknown_agents,
    )


def _submission(
    *,
    name: str | None,
    body_format: BodyFormat,
    mapping: AgentMapping,
    named: list[str],
    field_names: dict[str, str],
    connect_url: str | None,
    terminal_url: str | None,
    raw_rows: list[_RawRow],
    agents: Mapping[str, int],
    reject_unknown_agents: bool,
) -> CampaignSubmission:
    if reject_unknown_agents:
        wanted = [*named] if mapping == "global" else []
        if mapping == "inline":
            wanted = [username for row in raw_rows for username in row.agents_assigned]
        unknown = sorted({username for username in wanted if username not in agents})
        if unknown:
            raise CampaignError(f"Agent not found: {', '.join(unknown)}")
    directory = list(agents)
    rows: list[CampaignRow] = []
    for index, raw in enumerate(raw_rows):
        if mapping == "global":
            candidates = named
        elif mapping == "inline":
            candidates = raw.agents_assigned or directory
        else:
            candidates = directory
        username = candidates[index % len(candidates)]
        rows.append(
            CampaignRow(
                index=index,
                number=raw.number,
                agents_assigned=raw.agents_assigned,
                agent=username,
                agent_id=agents.get(username, 0),
                custom_fields=raw.custom_fields,
                fields={
                    field_names.get(f"{key}Name", key): value for key, value in raw.custom_fields.items()
                },
            )
        )
    return CampaignSubmission(
        name=name,
        body_format=body_format,
        agent_mapping=mapping,
        agents=named,
        custom_field_names=field_names,
        connect_callback_url=connect_url,
        terminal_callback_url=terminal_url,
        rows=rows,
    )


def _json_row(index: int, row: object) -> _RawRow:
    if not isinstance(row, dict):
        raise CampaignError(f"jsonData[{index}] must be an object")
    number = _number(row.get("number"), f"jsonData[{index}].number")
    assigned = _str_list(row.get("agentsAssigned"), f"jsonData[{index}].agentsAssigned")
    custom: dict[str, str] = {}
    for key, value in row.items():
        match = _FIELD_KEY.match(key)
        if match is None:
            continue
        slot = int(match.group(1))
        if not 1 <= slot <= MAX_CUSTOM_FIELDS:
            raise CampaignError(f"jsonData[{index}].{key}: only customField1..customField8 exist")
        text = _scalar(value, f"jsonData[{index}].{key}")
        if text is not None:
            custom[f"customField{slot}"] = text
    return _RawRow(number=number, agents_assigned=assigned, custom_fields=custom)


def _read_sheet(sheet: bytes, *, in_file: bool) -> tuple[dict[str, str], list[_RawRow]]:
    """Read a campaign CSV: a header row naming a number column, custom field columns and (in-file) agents."""
    try:
        text = sheet.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CampaignError("campaign-sheet must be UTF-8 CSV") from exc
    lines = [line for line in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in line)]
    if not lines:
        raise CampaignError("campaign-sheet is empty")
    headers = [cell.strip() for cell in lines[0]]
    keys = [re.sub(r"[\s_-]", "", header).lower() for header in headers]
    number_col = next((i for i, key in enumerate(keys) if key in _NUMBER_HEADERS), None)
    if number_col is None:
        raise CampaignError("campaign-sheet needs a number column")
    agent_col = next((i for i, key in enumerate(keys) if key in _AGENT_HEADERS), None) if in_file else None
    if in_file and agent_col is None:
        raise CampaignError("agents 'in-file' needs an agentsAssigned column in campaign-sheet")
    slots: dict[int, str] = {}
    field_names: dict[str, str] = {}
    explicit = {i: int(m.group(1)) for i, h in enumerate(headers) if (m := _FIELD_KEY.match(h))}
    free = [n for n in range(1, MAX_CUSTOM_FIELDS + 1) if n not in explicit.values()]
    for i, header in enumerate(headers):
        if i in (number_col, agent_col):
            continue
        if i in explicit:
            slot = explicit[i]
            if not 1 <= slot <= MAX_CUSTOM_FIELDS:
                raise CampaignError(f"campaign-sheet column {header}: only customField1..customField8 exist")
        elif free:
            slot = free.pop(0)
            field_names[f"customField{slot}Name"] = header
        else:
            raise CampaignError(f"campaign-sheet has more than {MAX_CUSTOM_FIELDS} custom field columns")
        slots[i] = f"customField{slot}"
    rows: list[_RawRow] = []
    for line_no, line in enumerate(lines[1:], start=2):
        cells = [*line, *[""] * (len(headers) - len(line))]
        number = _number(cells[number_col].strip(), f"campaign-sheet line {line_no}")
        assigned = [] if agent_col is None else [a for a in re.split(r"[,;|]", cells[agent_col]) if a.strip()]
        custom = {slots[i]: cells[i].strip() for i in slots}
        rows.append(
            _RawRow(number=number, agents_assigned=[a.strip() for a in assigned], custom_fields=custom)
        )
    if not rows:
        raise CampaignError("campaign-sheet has no rows")
    return field_names, rows


def _custom_field_names(value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CampaignError("customFieldNames must be an object")
    names: dict[str, str] = {}
    for key, name in value.items():
        if not _FIELD_NAME_KEY.match(key):
            raise CampaignError(
                f"customFieldNames: bad key {key!r} (expected customField1Name..customField8Name)"
            )
        if not isinstance(name, str):
            raise CampaignError(f"customFieldNames.{key} must be a string")
        names[key] = name
    return names


def _number(value: object, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise CampaignError(f"{where}: number is required")
    text = value.strip()
    digits = sum(ch.isdigit() for ch in text)
    if not _NUMBER.match(text) or not 4 <= digits <= 20:
        raise CampaignError(f"{where}: invalid number {text!r}")
    return text


def _str_list(value: object, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise CampaignError(f"{where} must be an array of usernames")
    return [item.strip() for item in value]


def _optional_str(value: object, where: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CampaignError(f"{where} must be a string")
    return value


def _scalar(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise CampaignError(f"{where} must be a string")


def _callback_url(value: object, where: str) -> str | None:
    url = _optional_str(value, where)
    if url is not None and not _URL.match(url):
        raise CampaignError(f"{where} must be an http(s) URL")
    return url
