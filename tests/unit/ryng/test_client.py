"""The Ryng client against httpx.MockTransport: bodies as sent, classification, failures, secrecy."""

from __future__ import annotations

import csv
import email
import email.policy
import http.server
import io
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from tests.unit.ryng.ok_server import OK_BODY, RyngOk
from workers.ryng.client import (
    CampaignRequest,
    Outcome,
    RyngClient,
    RyngResult,
    assign_slots,
    classify,
    parse_retry_after,
)
from workers.ryng.payload import csv_filename

TOKEN = "tok-s3cr3t-9f8e7d6c5b4a"
BASE_URL = "https://acme.ryng.in/rest-api/v1"

Handler = Callable[[httpx.Request], httpx.Response]


def make_request(**overrides: Any) -> CampaignRequest:
    values: dict[str, Any] = {
        "lead_id": "L-42",
        "name": "crm-L-42",
        "number": "+919983142420",
        "agent": "asha",
        "agent_id": 10,
        "fields": {"Name": "James", "Product": "Life Insurance", "Ref": "XT243"},
        "field_slots": {"Product": 3},
    }
    values.update(overrides)
    return CampaignRequest(**values)


class Recorder:
    """A MockTransport handler that records requests and answers with a fixed response."""

    def __init__(self, respond: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self._respond = respond or (lambda _req: httpx.Response(200, json=OK_BODY))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self._respond(request)


def client_for(handler: Handler, **options: Any) -> RyngClient:
    return RyngClient(base_url=BASE_URL, token=TOKEN, transport=httpx.MockTransport(handler), **options)


def post(handler: Handler, request: CampaignRequest | None = None, **options: Any) -> RyngResult:
    with client_for(handler, **options) as client:
        return client.create_campaign(request or make_request())


def answer(status: int, body: bytes | str | None = None, **headers: str) -> Handler:
    content = body.encode() if isinstance(body, str) else body
    return lambda _req: httpx.Response(status, content=content, headers=headers)


def parse_multipart(request: httpx.Request) -> dict[str, tuple[str | None, str, bytes]]:
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = email.message_from_bytes(head + request.content, policy=email.policy.HTTP)
    assert isinstance(message, EmailMessage) and message.is_multipart()
    parts: dict[str, tuple[str | None, str, bytes]] = {}
    for part in message.iter_parts():
        assert isinstance(part, EmailMessage)
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        parts[name] = (part.get_filename(), part.get_content_type(), payload)
    return parts


# --- slots -------------------------------------------------------------------------------------------


def test_fixed_fields_take_their_slot_and_the_rest_fill_free_slots_in_name_order() -> None:
    slots, dropped = assign_slots({"Zeta": "z", "Product": "p", "Alpha": "a"}, {"Product": 1}, 8)
    assert slots == {1: ("Product", "p"), 2: ("Alpha", "a"), 3: ("Zeta", "z")}
    assert dropped == []


def test_overflow_is_dropped_and_lead_id_slot_never_used() -> None:
    fields = {f"F{i}": str(i) for i in range(10)}
    slots, dropped = assign_slots(fields, {"F9": 2}, 4)
    assert 4 not in slots
    assert sorted(slots) == [1, 2, 3, 5, 6, 7, 8]
    assert slots[2] == ("F9", "9")
    assert [slots[s][0] for s in (1, 3, 5, 6, 7, 8)] == ["F0", "F1", "F2", "F3", "F4", "F5"]
    assert dropped == ["F6", "F7", "F8"]


def test_absent_fixed_field_leaves_its_slot_free_and_reserved_names_are_dropped() -> None:
    slots, dropped = assign_slots({"B": "b", "number": "1", "leadid": "x"}, {"Product": 1}, 8)
    assert slots == {1: ("B", "b")}
    assert dropped == ["leadid", "number"]


@pytest.mark.parametrize(
    ("field_slots", "lead_id_slot"),
    [({"A": 9}, 8), ({"A": 0}, 8), ({"A": 8}, 8), ({"A": 2, "B": 2}, 8), ({}, 9)],
)
def test_bad_slot_configuration_is_refused(field_slots: dict[str, int], lead_id_slot: int) -> None:
    with pytest.raises(ValueError):
        assign_slots({"A": "a"}, field_slots, lead_id_slot)


# --- JSON body ---------------------------------------------------------------------------------------


def test_json_body_url_and_headers_exactly() -> None:
    rec = Recorder()
    result = post(
        rec,
        make_request(
            connect_callback_url="https://r.example/cb/c", terminal_callback_url="https://r.example/cb/t"
        ),
    )
    assert result.outcome is Outcome.ACCEPTED
    (sent,) = rec.requests
    assert sent.method == "POST"
    assert str(sent.url) == "https://acme.ryng.in/rest-api/v1/campaign"
    assert sent.headers["x-access-token"] == TOKEN
    assert sent.headers["user-agent"] == "lead-router/0.1"
    assert sent.headers["content-type"] == "application/json"
    body = json.loads(sent.content)
    assert body == {
        "name": "crm-L-42",
        "agentMapping": "global",
        "agents": ["asha"],
        "customFieldNames": {
            "customField1Name": "Name",
            "customField2Name": "Ref",
            "customField3Name": "Product",
            "customField8Name": "LeadId",
        },
        "customerData": {
            "jsonData": [
                {
                    "number": "+919983142420",
                    "customField1": "James",
                    "customField2": "XT243",
                    "customField3": "Life Insurance",
                    "customField8": "L-42",
                }
            ],
            "connectCallbackUrl": "https://r.example/cb/c",
            "terminalCallbackUrl": "https://r.example/cb/t",
        },
    }
    assert list(body["customerData"]["jsonData"][0]) == [
        "number",
        "customField1",
        "customField2",
        "customField3",
        "customField8",
    ]


def test_json_body_omits_callbacks_when_not_given_and_reports_dropped_fields() -> None:
    rec = Recorder()
    fields = {f"F{i}": str(i) for i in range(9)}
    result = post(rec, make_request(fields=fields, field_slots={}, lead_id_slot=1))
    body = json.loads(rec.requests[0].content)
    assert set(body["customerData"]) == {"jsonData"}
    assert body["customFieldNames"]["customField1Name"] == "LeadId"
    assert body["customerData"]["jsonData"][0]["customField1"] == "L-42"
    assert body["customFieldNames"]["customField2Name"] == "F0"
    assert result.dropped_fields == ("F7", "F8")


def test_base_url_with_trailing_slash_still_posts_to_campaign() -> None:
    rec = Recorder()
    client = RyngClient(base_url=BASE_URL + "/", token=TOKEN, transport=httpx.MockTransport(rec))
    with client:
        client.create_campaign(make_request())
    assert str(rec.requests[0].url) == "https://acme.ryng.in/rest-api/v1/campaign"


# --- form-data body ----------------------------------------------------------------------------------


def test_form_body_sends_csv_sheet_name_and_agent_username() -> None:
    rec = Recorder()
    result = post(rec, make_request(lead_id="CRM/42 x"), body_format="form")
    assert result.outcome is Outcome.ACCEPTED
    parts = parse_multipart(rec.requests[0])
    assert set(parts) == {"campaign-sheet", "campaign-name", "agents"}
    assert parts["campaign-name"][2] == b"crm-L-42"
    assert parts["agents"][2] == b"asha"
    filename, content_type, sheet = parts["campaign-sheet"]
    assert filename == "CRM_42_x.csv"
    assert content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(sheet.decode("utf-8"))))
    assert rows == [
        ["number", "Name", "Ref", "Product", "LeadId"],
        ["+919983142420", "James", "XT243", "Life Insurance", "CRM/42 x"],
    ]


def test_form_csv_quotes_awkward_values() -> None:
    rec = Recorder()
    post(rec, make_request(fields={"Note": 'says "hi", then\nleaves'}, field_slots={}), body_format="form")
    sheet = parse_multipart(rec.requests[0])["campaign-sheet"][2]
    assert list(csv.reader(io.StringIO(sheet.decode()))) == [
        ["number", "Note", "LeadId"],
        ["+919983142420", 'says "hi", then\nleaves', "L-42"],
    ]


@pytest.mark.parametrize(("agent_id", "field", "value"), [(10, "agent", b"10"), (None, "agents", b"asha")])
def test_form_agent_field_uses_numeric_id_or_falls_back_to_username(
    agent_id: int | None, field: str, value: bytes
) -> None:
    rec = Recorder()
    post(rec, make_request(agent_id=agent_id), body_format="form", form_agent_field="agent")
    parts = parse_multipart(rec.requests[0])
    assert parts[field][2] == value
    assert set(parts) == {"campaign-sheet", "campaign-name", field}


@pytest.mark.parametrize(
    ("lead_id", "expected"), [("abc-1.2_3", "abc-1.2_3.csv"), ("../../etc", "_.._etc.csv"), ("", "lead.csv")]
)
def test_csv_filename_is_sanitised(lead_id: str, expected: str) -> None:
    assert csv_filename(lead_id) == expected


# --- classification ----------------------------------------------------------------------------------

CASES: list[tuple[int, str | None, Outcome, str]] = [
    (200, json.dumps(OK_BODY), Outcome.ACCEPTED, "Processing Campaign..."),
    (201, "", Outcome.ACCEPTED, "non-JSON"),
    (200, "<html>ok</html>", Outcome.ACCEPTED, "non-JSON"),
    (200, "[1, 2]", Outcome.ACCEPTED, "non-object"),
    (200, '{"error": true, "message": "Failed to create Campaign"}', Outcome.RETRY, "Failed to create"),
    (200, '{"error": "true"}', Outcome.RETRY, "HTTP 200"),
    (200, '{"error": true, "message": "Unauthorized Token"}', Outcome.UNAUTHORIZED, "Unauthorized Token"),
    (403, '{"error": true, "message": "Unauthorized Token"}', Outcome.UNAUTHORIZED, "Unauthorized Token"),
    (401, None, Outcome.UNAUTHORIZED, "HTTP 401"),
    (429, None, Outcome.RETRY, "HTTP 429"),
    (408, None, Outcome.RETRY, "HTTP 408"),
    (500, '{"error": true, "message": "Failed to create Campaign"}', Outcome.RETRY, "Failed to create"),
    (502, "<html>Bad Gateway</html>", Outcome.RETRY, "HTTP 502"),
    (503, '{"error": false}', Outcome.RETRY, "HTTP 503"),
    (400, '{"error": true, "message": "number is required"}', Outcome.REJECTED, "number is required"),
    (404, "not found", Outcome.REJECTED, "HTTP 404"),
    (422, '"bad"', Outcome.REJECTED, "HTTP 422"),
    (302, None, Outcome.REJECTED, "redirect not followed"),
]


@pytest.mark.parametrize(("status", "body", "outcome", "fragment"), CASES)
def test_responses_are_classified(status: int, body: str | None, outcome: Outcome, fragment: str) -> None:
    result = post(answer(status, body))
    assert result.outcome is outcome
    assert result.status_code == status
    assert fragment in result.message
    assert result.body == (body or "")
    assert result.retry_after is None
    assert isinstance(result.elapsed_ms, int) and result.elapsed_ms >= 0


def test_classify_is_usable_on_its_own() -> None:
    assert classify(200, b'{"error": false}') == (Outcome.ACCEPTED, "HTTP 200")
    assert classify(418, b"")[0] is Outcome.REJECTED


def test_redirects_are_not_followed() -> None:
    rec = Recorder(lambda _req: httpx.Response(307, headers={"location": "https://elsewhere.example/x"}))
    result = post(rec)
    assert result.outcome is Outcome.REJECTED
    assert len(rec.requests) == 1


def test_huge_bodies_are_truncated() -> None:
    result = post(answer(500, "x" * 1_000_000))
    assert result.outcome is Outcome.RETRY
    assert result.body == "x" * 2000
    big_json = json.dumps({"error": False, "data": "y" * 1_000_000})
    assert post(answer(200, big_json)).outcome is Outcome.ACCEPTED


class CountingBody(httpx.SyncByteStream):
    """4 KiB chunks, up to 4 MiB, counting how many were pulled."""

    def __init__(self) -> None:
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(1024):
            self.pulled += 1
            yield b"z" * 4096


def test_only_the_head_of_a_huge_body_is_read() -> None:
    stream = CountingBody()
    result = post(lambda _req: httpx.Response(502, stream=stream))
    assert result.outcome is Outcome.RETRY
    assert result.body == "z" * 2000
    assert stream.pulled <= 17  # 64 KiB and one chunk more, not 4 MiB


# --- transport failures ------------------------------------------------------------------------------


def raising(exc_type: type[httpx.HTTPError]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"boom {exc_type.__name__}", request=request)  # type: ignore[call-arg]

    return handler


@pytest.mark.parametrize("exc_type", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_errors_before_sending_are_retried(exc_type: type[httpx.HTTPError]) -> None:
    result = post(raising(exc_type))
    assert result.outcome is Outcome.RETRY
    assert result.status_code is None
    assert exc_type.__name__ in result.message
    assert result.body == ""


@pytest.mark.parametrize(
    "exc_type",
    [httpx.ReadTimeout, httpx.WriteTimeout, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError],
)
def test_errors_after_sending_are_ambiguous(exc_type: type[httpx.HTTPError]) -> None:
    result = post(raising(exc_type))
    assert result.outcome is Outcome.AMBIGUOUS
    assert result.status_code is None
    assert exc_type.__name__ in result.message
    assert result.dropped_fields == ()


class BrokenBody(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b'{"error": '
        raise httpx.ReadError("connection reset mid-body")


@pytest.mark.parametrize(("status", "outcome"), [(200, Outcome.AMBIGUOUS), (500, Outcome.RETRY)])
def test_body_lost_after_status_line(status: int, outcome: Outcome) -> None:
    result = post(lambda _req: httpx.Response(status, stream=BrokenBody()))
    assert result.outcome is outcome
    assert result.status_code == status
    assert "ReadError" in result.message


# --- timeouts and Retry-After ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (10.0, {"connect": 3.0, "read": 10.0, "write": 10.0, "pool": 3.0}),
        (4.0, {"connect": 2.0, "read": 4.0, "write": 4.0, "pool": 2.0}),
    ],
)
def test_timeouts_are_sent_with_each_request(timeout: float, expected: dict[str, float]) -> None:
    rec = Recorder()
    post(rec, timeout=timeout)
    assert rec.requests[0].extensions["timeout"] == expected


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("1.5", 1.5), ("soon", None), ("-3", None)])
def test_retry_after_seconds_on_429(header: str, seconds: float | None) -> None:
    result = post(answer(429, '{"error": true}', **{"Retry-After": header}))
    assert result.outcome is Outcome.RETRY
    assert result.retry_after == seconds


def test_retry_after_http_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=90), usegmt=True), now=now) == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None
    future = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    retry_after = post(answer(503, None, **{"Retry-After": future})).retry_after
    assert retry_after is not None and 100 < retry_after <= 120


# --- the token stays secret --------------------------------------------------------------------------


def test_token_absent_from_repr_result_and_logs() -> None:
    echo = json.dumps({"error": True, "message": f"bad token {TOKEN}"})
    with capture_logs() as logs, client_for(answer(400, echo)) as client:
        assert TOKEN not in repr(client)
        result = client.create_campaign(make_request())
    assert result.outcome is Outcome.REJECTED
    assert TOKEN not in repr(result)
    assert "[redacted]" in result.message and "[redacted]" in result.body
    assert logs and TOKEN not in repr(logs)
    assert logs[0]["event"] == "ryng_create_campaign" and logs[0]["outcome"] == "rejected"


def test_token_scrubbed_from_transport_error_text() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"proxy said {TOKEN}", request=request)

    result = post(handler)
    assert TOKEN not in result.message


# --- construction and lifecycle ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "token", "timeout"),
    [
        ("acme.ryng.in/rest-api/v1", TOKEN, 10.0),
        ("ftp://x/y", TOKEN, 10.0),
        (BASE_URL, "", 10.0),
        (BASE_URL, TOKEN, 0.0),
    ],
)
def test_bad_construction_is_refused(base_url: str, token: str, timeout: float) -> None:
    with pytest.raises(ValueError):
        RyngClient(base_url=base_url, token=token, timeout=timeout)


def test_closed_client_refuses_to_send() -> None:
    rec = Recorder()
    with client_for(rec) as client:
        pass
    with pytest.raises(RuntimeError):
        client.create_campaign(make_request())
    assert rec.requests == []


def test_no_agent_lets_ryng_choose_in_json_and_form() -> None:
    from workers.ryng.payload import prepare_body

    request = CampaignRequest(lead_id="L9", name="L9", number="998314242", agent="", agent_id=None, fields={})
    body = json.loads(prepare_body(request, body_format="json", form_agent_field="agents").content or b"{}")
    assert body["agentMapping"] == "all-agents" and "agents" not in body
    form = prepare_body(request, body_format="form", form_agent_field="agents")
    assert form.data is not None and "agents" not in form.data and "agent" not in form.data


def test_a_body_trickled_past_the_timeout_is_an_ambiguous_send() -> None:
    import time as clock

    class Trickle(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            for byte in b'{"error": false, "message": "Processing Campaign..."}':
                clock.sleep(0.02)  # every read is quick; the whole answer is not
                yield bytes([byte])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Trickle())

    request = CampaignRequest(lead_id="L1", name="L1", number="998314242", agent="alice", agent_id=None, fields={})
    with RyngClient(base_url="https://acme.ryng.in/rest-api/v1", token="t", timeout=0.3,
                    transport=httpx.MockTransport(handler)) as client:
        result = client.create_campaign(request)
    assert result.outcome == Outcome.AMBIGUOUS and result.status_code == 200
    assert result.elapsed_ms < 800  # cut at the deadline (read + connect), not after the whole trickle


@pytest.mark.parametrize("bypassed", [False, True], ids=["through-the-proxy", "no_proxy"])
def test_the_environments_proxy_is_used_unless_no_proxy_names_the_host(
    monkeypatch: pytest.MonkeyPatch, bypassed: bool
) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RyngOk)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    RyngOk.seen.clear()
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("NO_PROXY", "ryng.invalid" if bypassed else "elsewhere.example")
    try:
        with RyngClient(base_url="http://ryng.invalid/rest-api/v1", token="t0k3n", timeout=3.0) as client:
            result = client.create_campaign(CampaignRequest(
                lead_id="L1", name="L1", number="998314242", agent="alice", agent_id=None, fields={}))
    finally:
        server.shutdown()
        server.server_close()
    if bypassed:  # straight to a host that does not exist: not sent, retried later
        assert RyngOk.seen == [] and result.outcome is Outcome.RETRY
    else:
        assert RyngOk.seen == ["http://ryng.invalid/rest-api/v1/campaign"] and result.outcome is Outcome.ACCEPTED
