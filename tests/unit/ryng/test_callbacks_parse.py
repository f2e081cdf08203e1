"""Ryng callbacks: tolerant body parsing, and finding our lead id, call id and event in what Ryng sends."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import pytest

from workers.ryng.callbacks import parse_body, read_callback

TERMINAL = {
    "callID": "c-981", "callLogID": "log-77", "callbackType": "terminal", "event": "call-ended",
    "agentID": 10, "agentUsername": "alice", "customerNum": "998314242", "talktime": 42,
    "disposition": "Interested", "status": "completed", "recordingUrl": "https://rec.example/1.mp3",
    "legDetails": {"leg0Status": 5, "leg0Duration": 16},
    "customFieldNames": {"customField1Name": "Name", "customField8Name": "LeadId"},
    "customFields": {"customField1": "James", "customField8": "XT243"},
}

# In the style of the docs' examples: trailing commas, a duplicated key, a comma lost at a line end.
DOCS_STYLE = b"""{
  "callID": "c-981",
  "callbackType": "connect",
  "event": "agent-connected",
  "event": "customer-connected",
  "agentUsername": "alice"
  "callStarted": null,
  "customFieldNames": {"customField1Name": "Name", "customField8Name": "LeadId",},
  "customFields": {
    "customField1": "James",
    "customField8": "XT243",
  },
}"""


def test_plain_json() -> None:
    assert parse_body(json.dumps(TERMINAL).encode()) == TERMINAL


def test_docs_style_invalid_json_is_read() -> None:
    data = parse_body(DOCS_STYLE)
    assert data is not None
    assert data["event"] == "customer-connected"  # the last duplicate wins
    assert data["agentUsername"] == "alice" and data["callStarted"] is None
    assert data["customFields"] == {"customField1": "James", "customField8": "XT243"}


@pytest.mark.parametrize("body", [
    b'{"callID": "c1", "customFields": {"customField8": "L1",},}',
    b'{"callID": "c1", "customFields": {"customField8": "L1" ,\n\t} ,\n}',
    b'{"callID": "c1", "legs": [1, 2,], "customFields": {"customField8": "L1"}}',
    b'\xef\xbb\xbf{"callID": "c1", "customFields": {"customField8": "L1"}}',
    b'  \r\n{"callID": "c1", "customFields": {"customField8": "L1"}}\r\n',
])
def test_json_variants(body: bytes) -> None:
    data = parse_body(body)
    assert data is not None and data["callID"] == "c1"


def test_trailing_comma_repair_leaves_strings_alone_when_the_json_is_valid() -> None:
    assert parse_body(b'{"notes": "call back, ]later, }", "x": 1}') == {"notes": "call back, ]later, }", "x": 1}


def test_form_encoded() -> None:
    body = urlencode({"callID": "c-5", "event": "call-ended", "disposition": "Sale done"}).encode()
    assert parse_body(body) == {"callID": "c-5", "event": "call-ended", "disposition": "Sale done"}


@pytest.mark.parametrize("body", [
    b"", b"   \n", b"garbage", b"<html>502 Bad Gateway</html>", b"[1, 2, 3]", b'"just a string"', b"null",
    b"42", b"{not json at all", b"\xff\xfe\x00\x01",
])
def test_hopeless_bodies_give_none(body: bytes) -> None:
    assert parse_body(body) is None


def test_lead_id_by_name_wins_over_the_slot() -> None:
    # Form-data (CSV) campaigns number columns by position: LeadId can come back in slot 3.
    data = {"callID": "c1", "customFieldNames": {"customField3Name": "LeadId", "customField8Name": "Other"},
            "customFields": {"customField3": "XT243", "customField8": "not-this"}}
    assert read_callback(data, kind="connect", lead_id_slot=8).lead_id == "XT243"


def test_lead_id_by_slot_when_no_name() -> None:
    data: dict[str, Any] = {"callID": "c1", "customFields": {"customField5": "XT250"}}
    assert read_callback(data, kind="connect", lead_id_slot=5).lead_id == "XT250"
    assert read_callback(data, kind="connect", lead_id_slot=8).lead_id is None
    named_but_empty = {**data, "customFieldNames": {"customField2Name": "LeadId"}}
    assert read_callback(named_but_empty, kind="connect", lead_id_slot=5).lead_id == "XT250"


def test_terminal_callback_fields() -> None:
    callback = read_callback(TERMINAL, kind="terminal", lead_id_slot=8)
    assert (callback.kind, callback.event, callback.call_id, callback.lead_id) == (
        "terminal", "call-ended", "log-77", "XT243")
    assert callback.raw == TERMINAL and callback.raw is not TERMINAL


def test_defaults_when_ryng_leaves_things_out() -> None:
    bare = read_callback({"callID": "c9"}, kind="terminal", lead_id_slot=8)
    assert (bare.event, bare.call_id, bare.lead_id) == ("call-ended", "c9", None)
    connect = read_callback({}, kind="connect", lead_id_slot=8)
    assert (connect.event, connect.call_id, connect.lead_id) == ("connect", "", None)


@pytest.mark.parametrize("fields", [None, "XT243", ["XT243"], 7])
def test_odd_custom_fields_do_not_crash(fields: Any) -> None:
    data = {"callID": "c1", "customFields": fields, "customFieldNames": fields}
    assert read_callback(data, kind="connect", lead_id_slot=8).lead_id is None


def test_numeric_lead_id_becomes_text() -> None:
    data = {"customFields": {"customField8": 12345}}
    assert read_callback(data, kind="connect", lead_id_slot=8).lead_id == "12345"


def test_docs_style_body_end_to_end() -> None:
    data = parse_body(DOCS_STYLE)
    assert data is not None
    callback = read_callback(data, kind="connect", lead_id_slot=8)
    assert (callback.lead_id, callback.call_id, callback.event) == ("XT243", "c-981", "customer-connected")
