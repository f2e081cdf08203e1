"""A CRM request body as data, by its content type: JSON, form-urlencoded, text/plain carrying JSON, SOAP XML.

Multipart forms are read by the route (Starlette parses them) and handed over as a mapping.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from router.intake.sources.soap import SoapError, parse_outbound_message
from workers.json_input import loads_untrusted

__all__ = ["PayloadError", "UnsupportedMediaType", "decode_body", "media_type"]

_XML = ("text/xml", "application/xml", "application/soap+xml")
_MAX_FORM_FIELDS = 500


class PayloadError(ValueError):
    """The body cannot be read as its content type says; the message is safe to answer."""


class UnsupportedMediaType(PayloadError):
    """A content type no source reads."""


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_body(body: bytes, *, content_type: str | None) -> Any:
    """The payload as data; PayloadError (or UnsupportedMediaType) when it cannot be."""
    kind = media_type(content_type)
    if not body.strip():
        raise PayloadError("the request body is empty")
    if kind in _XML:
        try:
            return parse_outbound_message(body)
        except SoapError as exc:
            raise PayloadError(str(exc)) from None
    if kind == "application/x-www-form-urlencoded":
        return _form(body)
    if kind in ("", "application/json", "text/plain") or kind.endswith("+json"):
        try:
            return loads_untrusted(body)
        except ValueError as exc:
            what = "text/plain body must carry JSON" if kind == "text/plain" else "malformed JSON"
            raise PayloadError(f"{what}: {exc}") from None
    raise UnsupportedMediaType(
        f"unsupported content type {kind!r}: send JSON, form-urlencoded, text/plain JSON or SOAP XML"
    )


def _form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True, max_num_fields=_MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError(f"malformed form body: {exc}") from None
    return dict(pairs)
