"""Bodies by content type; hostile and malformed ones are refused with a reason, and hostile XML fast."""

from __future__ import annotations

import pytest

from router.intake.sources.decoding import PayloadError, UnsupportedMediaType, decode_body
from router.intake.sources.soap import ack, fault
from tests.fixtures import crm


def test_json_form_and_text_plain_json() -> None:
    assert decode_body(b'{"a": 1}', content_type="application/json") == {"a": 1}
    assert decode_body(b"a=1&b=x+y&c=", content_type="application/x-www-form-urlencoded; charset=utf-8") == {
        "a": "1", "b": "x y", "c": ""
    }
    assert decode_body(b'{"a": "1"}', content_type="text/plain") == {"a": "1"}
    assert decode_body(b'[{"a": 1}]', content_type=None) == [{"a": 1}]


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "application/json", "empty"),
        (b'{"a": ', "application/json", "malformed JSON"),
        (b'{"a": NaN}', "application/json", "malformed JSON"),
        (b"[" * 100_000, "application/json", "malformed JSON"),
        (b"hello", "text/plain", "text/plain body must carry JSON"),
        (b"\xff\xfe", "application/x-www-form-urlencoded", "malformed form"),
        (b"a=1&&&=", "application/x-www-form-urlencoded", "malformed form"),
        (b"<notifications><Notif", "text/xml", "malformed XML"),
        (b"<other/>", "text/xml", "no Outbound Message"),
        (crm.XML_BOMB, "text/xml", "refused XML: DTDForbidden"),
        (crm.XML_EXTERNAL_ENTITY, "application/soap+xml", "refused XML: DTDForbidden"),
    ],
)
def test_malformed_bodies_are_payload_errors(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        decode_body(body, content_type=content_type)


def test_an_unknown_content_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedMediaType, match="unsupported content type 'image/png'"):
        decode_body(b"x", content_type="image/png")


def test_outbound_message_becomes_plain_data() -> None:
    data = decode_body(crm.SALESFORCE_TWO_LEADS, content_type="text/xml")
    assert data["OrganizationId"] == crm.SALESFORCE_ORG and data["SessionId"] is None
    assert [n["Id"] for n in data["Notification"]] == ["04l5g00000ABCDEAA1", "04l5g00000ABCDEAA2"]
    assert data["Notification"][0]["sObject"]["MobilePhone"] == "+91 99001 23456"
    assert data["Notification"][0]["sObject"]["Phone"] is None


def test_ack_and_fault_are_soap() -> None:
    assert "<Ack>true</Ack>" in ack()
    text = fault("bad <thing> & more", client=True)
    assert "soapenv:Client" in text and "bad &lt;thing&gt; &amp; more" in text
    assert "soapenv:Server" in fault("down", client=False)
