"""The sandbox HTTP app: Ryng's Create Campaign API (`POST /rest-api/v1/campaign`) plus `/_sandbox/*`
endpoints to inspect what arrived, inject faults and reset.

Order of checks for a campaign request: latency fault → token (403) → rate limit (429) → fail faults
(`fail_next`, then `fail_rate`) → body (400) → accepted (200). A timeout fault records the campaign at once
and withholds the 200 for `timeout_seconds`: to the client that is an ambiguous send.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from router.sandbox.calls import CallSimulator
from router.sandbox.campaigns import CampaignError, parse_form_campaign, parse_json_campaign
from router.sandbox.models import CallRecord, CampaignRecord, CampaignSubmission, SandboxStats
from router.sandbox.options import FaultSettings, FaultsUpdate, SandboxOptions
from router.sandbox.state import SandboxState

CAMPAIGN_PATH = "/rest-api/v1/campaign"
ACCEPTED: dict[str, Any] = {"error": False, "message": "Processing Campaign...", "data": {}}
UNAUTHORIZED: dict[str, Any] = {"error": True, "message": "Unauthorized Token"}
TOO_MANY: dict[str, Any] = {"error": True, "message": "Too Many Requests"}
FAILED: dict[str, Any] = {"error": True, "message": "Failed to create Campaign"}


def create_sandbox_app(
    options: SandboxOptions, *, callback_transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build a sandbox app with its own state; `callback_transport` replaces the network for callbacks."""
    state = SandboxState(options=options)
    simulator = CallSimulator(state=state, options=options, transport=callback_transport)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await simulator.aclose()

    app = FastAPI(title="Ryng sandbox", version="1", lifespan=lifespan)
    app.state.sandbox = state
    app.state.simulator = simulator

    def answer(status: int, body: dict[str, Any]) -> JSONResponse:
        state.count_status(status)
        return JSONResponse(status_code=status, content=body)

    @app.post(CAMPAIGN_PATH, tags=["ryng"])
    async def create_campaign(request: Request) -> JSONResponse:
        """Ryng's Create Campaign: JSON or form-data (campaign-sheet CSV)."""
        now = time.monotonic()
        state.note_request(now=now)
        latency = state.latency_seconds()
        if latency > 0:
            await asyncio.sleep(latency)
        token = request.headers.get("x-access-token", "")
        if not hmac.compare_digest(token.encode(), options.token.encode()):
            return answer(403, UNAUTHORIZED)
        if not state.admit(token=token, now=now):
            return answer(429, TOO_MANY)
        failure = state.take_failure()
        if failure is not None:
            return answer(failure, _failure_body(failure))
        try:
            submission = await _read_submission(request, options=options)
        except CampaignError as exc:
            return answer(400, {"error": True, "message": str(exc)})
        delay = state.take_timeout()
        record = state.record(submission, delayed_seconds=delay or 0.0)
        simulator.start(record)
        response = answer(200, ACCEPTED)
        if delay:
            await asyncio.sleep(delay)
        return response

    @app.get("/_sandbox/campaigns", tags=["sandbox"])
    async def list_campaigns() -> list[CampaignRecord]:
        """Accepted campaigns, in arrival order."""
        return state.campaigns()

    @app.delete("/_sandbox/campaigns", tags=["sandbox"])
    async def reset() -> dict[str, bool]:
        """Forget everything (campaigns, calls, counters, rate windows); faults return to start-up values."""
        simulator.cancel_all()
        state.reset()
        return {"reset": True}

    @app.get("/_sandbox/stats", tags=["sandbox"])
    async def stats() -> SandboxStats:
        return state.stats()

    @app.get("/_sandbox/calls", tags=["sandbox"])
    async def calls() -> list[CallRecord]:
        """Simulated calls and their callback deliveries."""
        return state.calls()

    @app.get("/_sandbox/faults", tags=["sandbox"])
    async def get_faults() -> FaultSettings:
        return state.faults()

    @app.post("/_sandbox/faults", tags=["sandbox"])
    async def set_faults(update: FaultsUpdate) -> FaultSettings:
        """Change the given fault settings (others keep their values)."""
        return state.update_faults(update)

    @app.delete("/_sandbox/faults", tags=["sandbox"])
    async def clear_faults() -> FaultSettings:
        return state.clear_faults()

    @app.get("/_sandbox/health", tags=["sandbox"])
    async def health() -> dict[str, bool]:
        return {"ok": True}

    return app


def serve(*, host: str, port: int, options: SandboxOptions) -> None:
    """Run the sandbox with uvicorn until interrupted (Ctrl-C returns quietly)."""
    config = uvicorn.Config(
        create_sandbox_app(options), host=host, port=port, log_level="warning", timeout_graceful_shutdown=2
    )
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.Server(config).run()


def _failure_body(status: int) -> dict[str, Any]:
    if status == 403:
        return UNAUTHORIZED
    if status == 429:
        return TOO_MANY
    return FAILED


async def _read_submission(request: Request, *, options: SandboxOptions) -> CampaignSubmission:
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            async with request.form() as form:
                sheet_value = form.get("campaign-sheet")
                if isinstance(sheet_value, UploadFile):
                    sheet: bytes | None = await sheet_value.read()
                else:
                    sheet = sheet_value.encode() if sheet_value else None
                texts = {
                    key: [v for v in form.getlist(key) if isinstance(v, str)]
                    for key in (
                        "agents",
                        "agent",
                        "campaign-name",
                        "connectCallbackUrl",
                        "terminalCallbackUrl",
                    )
                }
        except StarletteHTTPException as exc:
            raise CampaignError(f"Malformed form-data: {exc.detail}") from exc
        return parse_form_campaign(
            sheet=sheet,
            agents_values=texts["agents"],
            agent_values=texts["agent"],
            name=next(iter(texts["campaign-name"]), None),
            connect_url=next(iter(texts["connectCallbackUrl"]), None),
            terminal_url=next(iter(texts["terminalCallbackUrl"]), None),
            agents=options.agents,
            reject_unknown_agents=options.reject_unknown_agents,
        )
    if content_type and "json" not in content_type:
        raise CampaignError(f"Unsupported content type {content_type!r}: send JSON or form-data")
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise CampaignError("Request body is not valid JSON") from exc
    return parse_json_campaign(
        body, agents=options.agents, reject_unknown_agents=options.reject_unknown_agents
    )
