"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Redis or the broker is unreachable"}})
async def readyz(request: Request) -> JSONResponse:
    """Redis and the broker answer: leads can be kept and queued."""
    checks = await run_in_threadpool(request.app.state.readiness)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


class _RouterCollector:
    def __init__(self, request: Request) -> None:
        self._state = request.app.state

    def collect(self):  # type: ignore[no-untyped-def]
        counters = CounterMetricFamily("lead_router_events", "Router events by kind", labels=["kind"])
        for name, value in sorted(self._state.counters.snapshot().items()):
            counters.add_metric([name], value)
        yield counters
        gauge = GaugeMetricFamily("lead_router_leads", "Leads by delivery set", labels=["set"])
        for name, value in self._state.parking.counts().items():
            gauge.add_metric([name], value)
        yield gauge
        paused = GaugeMetricFamily("lead_router_delivery_paused", "1 while Ryng delivery is paused")
        paused.add_metric([], 1 if self._state.pause.state() else 0)
        yield paused


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Prometheus metrics: counters shared by every process through Redis."""
    registry = CollectorRegistry()
    registry.register(_RouterCollector(request))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
