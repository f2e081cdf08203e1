"""`lead-router explain ID`: why a lead went where it went, in words (`--json`: the raw record)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from router.api.schemas import LeadRecord

__all__ = ["describe", "register"]

#: Why the assigner passed an agent over (the `skipped` reasons of workers/lua/pick.lua).
SKIP_REASONS = {
    "unknown": "not a known agent",
    "paused": "paused",
    "off_shift": "off shift",
    "wrap_up": "in wrap-up after a call",
    "at_capacity": "at capacity (open leads)",
}

#: What each Ryng answer means for the lead.
OUTCOMES = {
    "accepted": "accepted: campaign created",
    "rejected": "rejected (not retried)",
    "unauthorized": "refused the token (delivery paused)",
    "retryable": "failed, retried later",
    "ambiguous": "gave no clear answer, retried (the campaign may exist)",
}


def _pick_line(entry: Mapping[str, Any]) -> list[str]:
    outcome = entry.get("outcome") or "assigned"
    rule = f"rule {entry['rule']!r}" if entry.get("rule") else "no rule matched"
    if entry.get("agent"):
        head = f"picked {entry['agent']} from pool {entry.get('pool') or '-'} ({rule}; strategy " \
               f"{entry.get('strategy') or '-'}: {entry.get('reason') or '-'})"
    else:
        head = f"no agent picked ({outcome}) in pool {entry.get('pool') or '-'}, {rule}" \
               f"{': ' + str(entry['reason']) if entry.get('reason') else ''}"
    lines = [head]
    for skipped in entry.get("skipped") or []:
        why = SKIP_REASONS.get(str(skipped.get("reason")), str(skipped.get("reason")))
        lines.append(f"    skipped {skipped.get('agent')}: {why}")
    return lines


def _attempt_line(entry: Mapping[str, Any]) -> str:
    outcome = str(entry.get("outcome") or "")
    code = entry.get("status_code")
    answer = f"Ryng answered {code}" if code else "no answer from Ryng"
    message = f" {str(entry['message'])!r}" if entry.get("message") else ""
    took = f" in {entry['elapsed_ms']} ms" if entry.get("elapsed_ms") is not None else ""
    dropped = f"; fields left out: {', '.join(entry['dropped_fields'])}" if entry.get("dropped_fields") else ""
    return (f"attempt {entry.get('attempt', '?')}: {answer}{message}{took} — "
            f"{OUTCOMES.get(outcome, outcome)}{dropped}")


def _event_line(entry: Mapping[str, Any]) -> list[str]:
    kind = str(entry.get("event") or "")
    if kind == "pick":
        return _pick_line(entry)
    if kind == "attempt":
        return [_attempt_line(entry)]
    if kind == "retry_scheduled":
        return [f"next try in {entry.get('delay_seconds')} s"]
    if kind.startswith("callback_"):
        who = f" (agent {entry['agent']})" if entry.get("agent") else ""
        disposition = f", disposition {entry['disposition']}" if entry.get("disposition") else ""
        return [f"Ryng callback {entry.get('ryng_event') or kind[9:]}{who}{disposition}"]
    extra = ", ".join(f"{k} {v}" for k, v in entry.items() if k not in ("at", "event") and v not in (None, "", []))
    return [f"{kind.replace('_', ' ')}{': ' + extra if extra else ''}"]


def describe(record: LeadRecord) -> list[str]:
    """The record in plain words: where it is, who got it and why, what Ryng answered, and when."""
    status = record.status + (f" ({record.wait_reason.replace('_', ' ')})" if record.wait_reason else "")
    lines = [f"lead {record.id}: {status}" + (f", source {record.source}" if record.source else "")]
    if record.agent:
        rule = f"rule {record.rule!r}" if record.rule else "no rule matched"
        lines.append(f"agent {record.agent}" + (f" (Ryng id {record.agent_id})" if record.agent_id else "")
                     + f", pool {record.pool or '-'}, {rule}, strategy {record.strategy or '-'}"
                     + (f": {record.reason}" if record.reason else ""))
    elif record.agent_mapping == "all-agents":
        lines.append("no agent named: Ryng chooses among all its agents")
    if record.dead_reason:
        lines.append(f"dead: {record.dead_reason}")
    lines.append(f"{record.attempts} attempt(s) to Ryng" + (
        f"; last answer {record.last_status_code} {record.last_message!r}" if record.last_status_code else ""))
    for label, value in (("created", record.created_at), ("assigned", record.assigned_at),
                         ("posted", record.posted_at), ("connected", record.connected_at),
                         ("completed", record.completed_at)):
        if value:
            lines.append(f"{label:<10} {value}")
    if record.disposition or record.call_id:
        lines.append(f"call {record.call_id or '-'}: {record.disposition or 'no disposition yet'}"
                     + (f", talk time {record.talktime}" if record.talktime else ""))
    if record.history:
        lines += ["", "history:"]
        for entry in record.history:
            first, *more = _event_line(entry)
            lines += [f"  {entry.get('at') or '-':<24}  {first}", *(f"  {'':<24}  {line}" for line in more)]
    return lines


def explain(
    lead_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="print the raw record (JSON)")] = False,
) -> None:
    """Why a lead went where it went: pool, rule, strategy, who was skipped and why, attempts and Ryng's answers."""
    from router.api.records_view import record_view
    from router.cli.settings import services_or_exit

    view = record_view(services_or_exit().store, lead_id)
    if view is None:
        typer.echo(f"no lead with id {lead_id!r}", err=True)
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(view.model_dump(exclude_none=True), indent=2))
    else:
        typer.echo("\n".join(describe(view)))


def register(app: typer.Typer) -> None:
    """Add `explain` to the `lead-router` app."""
    app.command("explain")(explain)
