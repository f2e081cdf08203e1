"""Salesforce Outbound Messages: the SOAP envelope in (hardened parsing), the `Ack` or a SOAP fault out.

The envelope (https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_om_outboundmessaging_wsdl.htm)
carries `notifications` with `OrganizationId`, `ActionId`, `SessionId`, `EnterpriseUrl`, `PartnerUrl` and 1-100
`Notification` elements (`Id`, `sObject` with the fields the admin chose). It becomes plain data:

    {"OrganizationId": "00D...", "ActionId": "04k...", "Notification": [{"Id": "04l...", "sObject": {...}}]}

Parsing goes through defusedxml with DTDs, entities and external references forbidden: an XML bomb or an
external-entity payload is refused at its DOCTYPE, before anything is expanded or fetched.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

__all__ = ["SoapError", "ack", "fault", "parse_outbound_message"]

_XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"


class SoapError(ValueError):
    """The body is not a readable Outbound Message (or is hostile XML); the message is safe to answer."""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _value(element: Element) -> Any:
    if element.get(_XSI_NIL) == "true":
        return None
    children = list(element)
    if not children:
        return (element.text or "").strip()
    data: dict[str, Any] = {}
    kind = element.get(_XSI_TYPE)
    if kind:
        data["type"] = _local(kind.split(":")[-1])
    for child in children:
        name = _local(child.tag)
        value = _value(child)
        if name == "Notification":
            data.setdefault(name, []).append(value)
        else:
            data[name] = value
    return data


def parse_outbound_message(body: bytes) -> dict[str, Any]:
    """The `notifications` element as data; SoapError for hostile, malformed or foreign XML."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise SoapError(f"refused XML: {type(exc).__name__} (DTDs, entities and external references are not allowed)")\
            from None
    except (ParseError, ValueError) as exc:
        raise SoapError(f"malformed XML: {exc}") from None
    found = next((el for el in root.iter() if _local(el.tag) == "notifications"), None)
    if found is None:
        raise SoapError("no Outbound Message notifications element in the SOAP body")
    data = _value(found)
    if not isinstance(data, dict) or not data.get("Notification"):
        raise SoapError("the Outbound Message carries no Notification")
    return data


def ack() -> str:
    """The answer that tells Salesforce the message is taken (it stops retrying)."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_ENVELOPE}">'
        "<soapenv:Body><notificationsResponse xmlns=\"http://soap.sforce.com/2005/09/outbound\">"
        "<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"
    )


def fault(message: str, *, client: bool) -> str:
    """A SOAP fault (`soapenv:Client` for a bad message, `soapenv:Server` for an outage); Salesforce retries."""
    code = "soapenv:Client" if client else "soapenv:Server"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="{_ENVELOPE}">'
        f"<soapenv:Body><soapenv:Fault><faultcode>{code}</faultcode><faultstring>{escape(message[:500])}"
        "</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
    )
