"""Ryng's connect and terminal callbacks, under an unguessable secret path segment."""

from __future__ import annotations

import hashlib
import secrets

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from router.api.deps import AssignerDep, CallbacksDep, OutboxDep, SettingsDep
from workers.ryng.callbacks import CallbackKind, parse_body, read_callback

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/v1/ryng", tags=["ryng callbacks"], include_in_schema=False)


class CallbackAnswer(BaseModel):
    ok: bool
    result: str


async def _check_secret(settings: SettingsDep, secret: str) -> None:
    configured = settings.router_callback_secret
    expected = configured.get_secret_value() if configured else ""
    if not expected or not secrets.compare_digest(secret.encode(), expected.encode()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")


async def _receive(
    request: Request, kind: CallbackKind, *, settings: SettingsDep, recorder: CallbacksDep, assigner: AssignerDep,
    outbox: OutboxDep | None = None,
) -> CallbackAnswer:
    body = await request.body()
    data = parse_body(body)
    callback = read_callback(data, kind=kind, lead_id_slot=settings.ryng_lead_id_field) if data else None
    if callback is None or callback.lead_id is None:
        await run_in_threadpool(recorder.unmatched, body, kind=kind)
        log.warning("callback_unmatched", kind=kind, parsed=data is not None)
        return CallbackAnswer(ok=True, result="unmatched")
    digest = hashlib.sha256(body).hexdigest()[:32]
    result = await run_in_threadpool(recorder.apply, callback, body=body, body_digest=digest)
    if result in ("applied", "duplicate") and kind == "terminal":
        # Also on a duplicate: if the release after the first delivery failed, Ryng's retry must still free the
        # agent (releasing is idempotent).
        await run_in_threadpool(assigner.release, lead_id=callback.lead_id)
        if outbox is not None:  # the CRM learns the outcome; queued once, also when Ryng retries the callback
            await run_in_threadpool(outbox.notify, callback.lead_id, kind="lead.completed", call=callback.raw)
    log.info("callback", kind=kind, lead_id=callback.lead_id, ryng_event=callback.event, result=result)
    return CallbackAnswer(ok=True, result=result)


_SecretDep = Depends(_check_secret)


@router.post("/{secret}/connect", response_model=CallbackAnswer, dependencies=[_SecretDep])
async def connect_callback(
    request: Request, settings: SettingsDep, recorder: CallbacksDep, assigner: AssignerDep
) -> CallbackAnswer:
    """Ryng's connect callback (agent-connected, customer-connected)."""
    return await _receive(request, "connect", settings=settings, recorder=recorder, assigner=assigner)


@router.post("/{secret}/terminal", response_model=CallbackAnswer, dependencies=[_SecretDep])
async def terminal_callback(
    request: Request, settings: SettingsDep, recorder: CallbacksDep, assigner: AssignerDep, outbox: OutboxDep
) -> CallbackAnswer:
    """Ryng's terminal callback (call-ended, with disposition); frees the agent's capacity; the outcome goes to
    the lead's CRM when its source has an outcome_url."""
    return await _receive(request, "terminal", settings=settings, recorder=recorder, assigner=assigner,
                          outbox=outbox)
