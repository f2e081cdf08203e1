"""How each preset answers its CRM: on success, on a refused payload, on an unverified request, on an outage.

| preset      | success                         | refused payload                    | outage (Redis/broker down) |
|-------------|---------------------------------|------------------------------------|----------------------------|
| leadsquared | 200/202 `{"Status": "Success"}` | 200 `{"Status": "Error", ...}`     | 503 (LeadSquared retries)  |
| salesforce  | 200 SOAP `<Ack>true</Ack>`      | 4xx SOAP fault (`soapenv:Client`)  | 503 SOAP fault (`Server`)  |
| others      | 202 (new) / 200 (known)         | 4xx `{"detail": ...}`              | 503 `{"detail": ...}`      |

LeadSquared advises answering 200 always, since error statuses can get a webhook disabled; a payload it will
only send again unchanged is answered 200 with its error. An outage is a 503 for every CRM so that it retries:
nothing is answered 2xx unless it is kept. A request that fails authentication gets 401 everywhere.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response

from config.sources_models import Preset
from router.intake.sources import soap
from router.intake.sources.intake import SourceTaken

__all__ = ["accepted", "refused", "unavailable"]

_SOAP = "text/xml; charset=utf-8"


def accepted(preset: Preset, source: str, taken: SourceTaken) -> Response:
    if preset == "salesforce":
        return Response(soap.ack(), media_type=_SOAP, status_code=200)
    leads = [
        {"id": lead.id, "status": lead.status, "duplicate": lead.duplicate, "updated": lead.updated}
        for lead in taken.leads
    ]
    body: dict[str, object] = {"source": source, "leads": leads, "ignored": taken.ignored}
    if preset == "leadsquared":
        body = {"Status": "Success", **body}
    return JSONResponse(body, status_code=202 if taken.created else 200)


def refused(preset: Preset, status_code: int, message: str) -> Response:
    """A payload (or request) that will never become a lead as it is."""
    if preset == "salesforce":
        return Response(soap.fault(message, client=True), media_type=_SOAP, status_code=status_code)
    if preset == "leadsquared" and status_code not in (401, 413, 415):
        return JSONResponse({"Status": "Error", "StatusReason": message}, status_code=200)
    return JSONResponse({"detail": message}, status_code=status_code)


def unavailable(preset: Preset, message: str) -> Response:
    """Redis or the broker is away: the CRM must send again later."""
    if preset == "salesforce":
        return Response(soap.fault(message, client=False), media_type=_SOAP, status_code=503)
    return JSONResponse({"detail": message}, status_code=503, headers={"Retry-After": "30"})
