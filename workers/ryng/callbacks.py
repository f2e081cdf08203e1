"""Ryng's call callbacks applied to lead records: tolerant parsing, one effect per callback, atomic write."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from workers.clock import iso
from workers.json_input import loads_untrusted
from workers.lua import load_script
from workers.store.connections import RedisClient
from workers.store.keys import Keys

DEDUP_TTL_SECONDS = 7 * 24 * 3600
LEAD_ID_FIELD_NAME = "LeadId"

#: Ryng's two callback URLs: connect (agent or customer connected) and terminal (call ended, disposition).
CallbackKind = Literal["connect", "terminal"]
#: What applying a callback did; `unsent`: the lead was never sent to Ryng (kept as unmatched, not applied).
ApplyResult = Literal["applied", "duplicate", "unsent", "unknown"]


@dataclass(frozen=True, slots=True)
class Callback:
    """The parts of a Ryng callback the router uses; `raw` keeps the whole body."""

    kind: CallbackKind
    event: str
    call_id: str
    lead_id: str | None
    raw: dict[str, Any]


def parse_body(body: bytes) -> dict[str, Any] | None:
    """Parse a callback body tolerantly: JSON, JSON with trailing commas or a comma missing at a line end (as
    in Ryng's own examples), or form-encoded; None if hopeless."""
    text = body.decode("utf-8-sig", errors="replace").strip()
    if not text:
        return None
    trimmed = re.sub(r",\s*([}\]])", r"\1", text)
    # A raw newline cannot sit inside a JSON string: a value's end, a newline, then a quote is a lost comma.
    mended = re.sub(r'(["\d}\]el])([ \t]*\r?\n\s*")', r"\1,\2", trimmed)
    for candidate in (text, trimmed, mended):
        try:
            loaded = loads_untrusted(candidate)
        except ValueError:
            continue
        return loaded if isinstance(loaded, dict) else None
    if "=" in text and "{" not in text:
        from urllib.parse import parse_qsl

        return dict(parse_qsl(text))
    return None


def read_callback(data: Mapping[str, Any], *, kind: CallbackKind, lead_id_slot: int) -> Callback:
    """Pull the call id, event and our lead id (from the configured custom field) out of a callback."""
    raw_fields, raw_names = data.get("customFields"), data.get("customFieldNames")
    fields: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
    names: dict[str, Any] = raw_names if isinstance(raw_names, dict) else {}
    lead_id = None
    for slot in range(1, 9):  # by name first: in CSV (form-data) campaigns columns number by position
        if names.get(f"customField{slot}Name") == LEAD_ID_FIELD_NAME:
            lead_id = fields.get(f"customField{slot}")
    if not lead_id and fields:
        lead_id = fields.get(f"customField{lead_id_slot}")
    call_id = str(data.get("callLogID") or data.get("callID") or "")
    event = str(data.get("event") or ("call-ended" if kind == "terminal" else "connect"))
    return Callback(
        kind=kind, event=event, call_id=call_id, lead_id=str(lead_id) if lead_id else None, raw=dict(data)
    )


class CallbackRecorder:
    """Writes a callback's outcome onto its lead, once, in one atomic step."""

    def __init__(self, client: RedisClient, *, keys: Keys) -> None:
        self._redis = client
        self._keys = keys
        self._apply = load_script(client, "callback_apply")

    def apply(self, callback: Callback, *, body: bytes, body_digest: str) -> ApplyResult:
        """Apply the callback to the lead it names, once (per lead, call and event). A callback for no such lead
        (`unknown`) or for a lead never sent to Ryng (`unsent`) is kept with the unmatched ones instead."""
        assert callback.lead_id is not None
        data = callback.raw
        if callback.kind == "terminal":
            status, blocked = "completed", "dead_never"
            fields = {
                "completed_at": iso(), "disposition": _text(data.get("disposition")),
                "talktime": _text(data.get("talktime")), "call_status": _text(data.get("status")),
                "call_id": _text(data.get("callID")), "recording_url": _text(data.get("recordingUrl")),
                "called_agent": _text(data.get("agentUsername")),
            }
        else:
            status, blocked = "connected", "completed"
            fields = {"connected_at": iso(), "call_id": _text(data.get("callID")),
                      "called_agent": _text(data.get("agentUsername"))}
            fields[f"event_{callback.event.replace('-', '_')}_at"] = iso()
        marker = f"{callback.kind}:{callback.call_id or body_digest}:{callback.event}"
        event = json.dumps(
            {"at": iso(), "event": f"callback_{callback.kind}", "ryng_event": callback.event,
             "call_id": callback.call_id, "disposition": data.get("disposition"),
             "agent": data.get("agentUsername")},
            default=str, sort_keys=True,
        )
        args: list[str] = [status, event, blocked, str(DEDUP_TTL_SECONDS), callback.lead_id, marker,
                           _unmatched_entry(body, kind=callback.kind, lead_id=callback.lead_id)]
        for name, value in (fields | {"updated_at": iso()}).items():
            args += [name, value]
        keys = [self._keys.lead(callback.lead_id), self._keys.lead_events(callback.lead_id),
                self._keys.callbacks_applied(callback.lead_id), self._keys.dead, self._keys.pending,
                self._keys.parked, self._keys.callbacks_unmatched, self._keys.metrics]
        return cast(ApplyResult, str(self._apply(keys=keys, args=args)))

    def unmatched(self, body: bytes, *, kind: CallbackKind) -> None:
        """Keep a callback we could not match to a lead, for an operator to look at (bounded)."""
        key = self._keys.callbacks_unmatched
        pipe = self._redis.pipeline(transaction=True)
        pipe.lpush(key, _unmatched_entry(body, kind=kind))
        pipe.ltrim(key, 0, 999)
        pipe.hincrby(self._keys.metrics, f"callback:{kind}:unmatched", 1)
        pipe.execute()


def _unmatched_entry(body: bytes, *, kind: CallbackKind, lead_id: str | None = None) -> str:
    entry = {"at": iso(), "kind": kind, "body": body[:4000].decode("utf-8", "replace")}
    if lead_id is not None:
        entry["lead_id"] = lead_id
    return json.dumps(entry)


def _text(value: Any) -> str:
    return "" if value is None else str(value)[:500]
