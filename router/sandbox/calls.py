"""Simulated calls: for every row of an accepted campaign that carried callback URLs, the sandbox 'places' a
call and POSTs Ryng-shaped callbacks (connect: agent-connected, customer-connected; terminal: call-ended),
retrying non-200 answers the way Ryng does (connect: once more; terminal: up to two more times).

Calls run as asyncio tasks in the server's event loop; a failing callback target never hurts the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import httpx
import structlog

from router.sandbox.models import CallbackDelivery, CallbackKind, CallRecord, CampaignRecord, CampaignRow
from router.sandbox.options import SandboxOptions
from router.sandbox.state import SandboxState, utc_now_iso

log = structlog.get_logger(__name__)

CONNECT_ATTEMPTS = 2  # Ryng: "retry the callback after a 1 minute interval one more time"
TERMINAL_ATTEMPTS = 3  # Ryng: "retry ... at 1-minute intervals up to two more times"
VIRTUAL_NUMBER = "+914954389444"


class CallSimulator:
    """Places simulated calls for accepted campaigns and delivers their callbacks."""

    def __init__(
        self,
        *,
        state: SandboxState,
        options: SandboxOptions,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._state = state
        self._options = options
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self, campaign: CampaignRecord) -> None:
        """Schedule one call per row (must run inside the event loop); no-op without callback URLs."""
        if not self._options.simulate_calls:
            return
        if not (campaign.connect_callback_url or campaign.terminal_callback_url):
            return
        for row in campaign.rows:
            call = self._state.new_call(
                campaign_id=campaign.id,
                row_index=row.index,
                number=row.number,
                agent=row.agent,
                agent_id=row.agent_id,
            )
            self._spawn(self._run_call(campaign, row, call))

    def cancel_all(self) -> None:
        """Cancel every pending call and retry (on reset)."""
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Cancel pending work and close the HTTP client (at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=self._options.callback_timeout_seconds
            )
        return self._client

    async def _run_call(self, campaign: CampaignRecord, row: CampaignRow, call: CallRecord) -> None:
        options = self._options
        try:
            await asyncio.sleep(options.call_delay_seconds)
            with self._state.lock:
                call.state = "ringing"
                talktime = self._state.rng.randint(5, 240)
            agent_picked_up = utc_now_iso()
            common = _common_fields(campaign, row, call)
            if campaign.connect_callback_url:
                body = {**common, "callbackType": "connect", "event": "agent-connected", "callStarted": None}
                await self._deliver(call, "connect", "agent-connected", campaign.connect_callback_url, body)
            await asyncio.sleep(options.call_step_seconds)
            with self._state.lock:
                call.state = "connected"
            if campaign.connect_callback_url:
                body = {
                    **common,
                    "callbackType": "connect",
                    "event": "customer-connected",
                    "callStarted": agent_picked_up,
                }
                await self._deliver(
                    call, "connect", "customer-connected", campaign.connect_callback_url, body
                )
            await asyncio.sleep(options.call_step_seconds)
            with self._state.lock:
                call.state = "ended"
            if campaign.terminal_callback_url:
                body = _terminal_body(common, call, started=agent_picked_up, talktime=talktime)
                await self._deliver(call, "terminal", "call-ended", campaign.terminal_callback_url, body)
        except asyncio.CancelledError:
            with self._state.lock:
                call.state = "cancelled"
            raise
        except Exception:  # a simulated call must never take the server down
            log.exception("sandbox_call_failed", call_id=call.call_id)
            with self._state.lock:
                call.state = "failed"

    async def _deliver(
        self, call: CallRecord, kind: CallbackKind, event: str, url: str, body: dict[str, Any]
    ) -> None:
        """First attempt now (so a call's callbacks leave in order); retries in their own task."""
        delivery = CallbackDelivery(kind=kind, event=event, url=url)
        with self._state.lock:
            call.deliveries.append(delivery)
        attempts = CONNECT_ATTEMPTS if kind == "connect" else TERMINAL_ATTEMPTS
        if await self._attempt(delivery, body) or attempts == 1:
            self._state.count_callback(delivered=delivery.delivered)
        else:
            self._spawn(self._retry(delivery, body, remaining=attempts - 1))

    async def _retry(self, delivery: CallbackDelivery, body: dict[str, Any], *, remaining: int) -> None:
        try:
            for _ in range(remaining):
                await asyncio.sleep(self._options.callback_retry_seconds)
                if await self._attempt(delivery, body):
                    break
            self._state.count_callback(delivered=delivery.delivered)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("sandbox_callback_retry_failed", url=delivery.url)

    async def _attempt(self, delivery: CallbackDelivery, body: dict[str, Any]) -> bool:
        status: int | None = None
        error: str | None = None
        try:
            response = await self._http().post(delivery.url, json=body)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._state.lock:
            delivery.attempts += 1
            delivery.status_codes.append(status)
            delivery.status_code = status
            delivery.error = error if status is None else (None if status == 200 else f"HTTP {status}")
            delivery.delivered = status == 200
        if status != 200:
            log.info("sandbox_callback_not_accepted", url=delivery.url, status=status, error=error)
        return status == 200


def _common_fields(campaign: CampaignRecord, row: CampaignRow, call: CallRecord) -> dict[str, Any]:
    """The fields connect and terminal callbacks share, named exactly as Ryng names them."""
    return {
        "callID": call.call_id,
        "agentID": row.agent_id,
        "agentUsername": row.agent,
        "agentNum": f"+9190000{row.agent_id:05d}",
        "customerNum": row.number,
        "callCreated": campaign.received_at,
        "callDirection": "outbound",
        "customFieldNames": {
            f"customField{n}Name": campaign.custom_field_names.get(f"customField{n}Name") for n in range(1, 9)
        },
        "customFields": {f"customField{n}": row.custom_fields.get(f"customField{n}") for n in range(1, 9)},
    }


def _terminal_body(
    common: dict[str, Any], call: CallRecord, *, started: str, talktime: int
) -> dict[str, Any]:
    ended = utc_now_iso()
    ring = 6
    return {
        **common,
        "callLogID": call.call_log_id,
        "callbackType": "terminal",
        "event": "call-ended",
        "virtualNum": VIRTUAL_NUMBER,
        "callStarted": started,
        "callEnded": ended,
        "callDisposed": ended,
        "callbackTime": None,
        "talktime": talktime,
        "callDuration": talktime + ring,
        "parentDisposition": None,
        "disposition": call.disposition,
        "notes": "",
        "status": "completed",
        "recordingUrl": f"https://recordings.sandbox.invalid/{call.call_id}.mp3",
        "legDetails": {
            "leg0Status": 5,
            "leg0Duration": talktime + ring,
            "leg1Status": 5,
            "leg1Duration": talktime,
        },
    }
