"""Ryng's connect and terminal callbacks, under an unguessable secret path segment."""

from __future__ import annotations

import hashlib
import secrets

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from workers.ryng.callbacks import CallbackRecorder, parse_body, read_callback

log = structlog.get_logger("router.callbacks")

router = APIRouter(prefix="/v1/ryng", tags=["ryng callbacks"], include_in_schema=False)


class CallbackAnswer(BaseModel):
    ok: bool
    result: str


def _check_secret(request: Request, secret: str) -> None:
    configured = request.app.state.settings.router_callback_secret
    expected = configured.get_secret_value() if configured else ""
    if not expected or not secrets.compare_digest(secret.encode(), expected.encode()):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")


async def _receive(request: Request, secret: str, kind: str) -> CallbackAnswer:
    _check_secret(request, secret)
    body = await request.body()
    state = request.app.state
    recorder: CallbackRecorder = state.callbacks
    data = parse_body(body)
    callback = read_callback(data, kind=kind, lead_id_slot=state.settings.ryng_lead_id_field) if data else None
    if callback is None or callback.lead_id is None:
        await run_in_threadpool(recorder.unmatched, body, kind=kind)
        log.warning("callback_unmatched", kind=kind, parsed=data is not None)
        return CallbackAnswer(ok=True, result="unmatched")
    digest = hashlib.sha256(body).hexdigest()[:32]
    result = await run_in_threadpool(recorder.apply, callback, body_digest=digest)
    if result in ("applied", "duplicate") and kind == "terminal":
        # Also on a duplicate: if the release after the first delivery failed, Ryng's retry must still free the
        # agent (releasing is idempotent).
        await run_in_threadpool(state.release_capacity, callback.lead_id)
    log.info("callback", kind=kind, lead_id=callback.lead_id, ryng_event=callback.event, result=result)
    return CallbackAnswer(ok=True, result=result)


@router.post("/{secret}/connect", response_model=CallbackAnswer)
async def connect_callback(secret: str, request: Request) -> CallbackAnswer:
    """Ryng's connect callback (agent-connected, customer-connected)."""
    return await _receive(request, secret, "connect")


@router.post("/{secret}/terminal", response_model=CallbackAnswer)
async def terminal_callback(secret: str, request: Request) -> CallbackAnswer:
    """Ryng's terminal callback (call-ended, with disposition); frees the agent's capacity."""
    return await _receive(request, secret, "terminal")
