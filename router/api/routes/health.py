"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from router.api.deps import ServicesDep
from workers.services import Services

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Redis or the broker is unreachable"}})
async def readyz(services: ServicesDep) -> JSONResponse:
    """Redis and the broker answer: leads can be kept and queued."""
    checks = await run_in_threadpool(_readiness, services.redis)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


def _readiness(client: redis.Redis) -> dict[str, str]:
    from workers.celery_app import app as celery_app

    checks: dict[str, str] = {}
    try:
        client.ping()
        checks["redis"] = "ok"
    except redis.RedisError as exc:
        checks["redis"] = f"unreachable: {type(exc).__name__}"
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        checks["broker"] = "ok"
    except Exception as exc:
        checks["broker"] = f"unreachable: {type(exc).__name__}"
    return checks


class _RouterCollector:
    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        counters = CounterMetricFamily("lead_router_events", "Router events by kind", labels=["kind"])
        for name, value in sorted(self._services.counters.snapshot().items()):
            counters.add_metric([name], value)
        yield counters
        gauge = GaugeMetricFamily("lead_router_leads", "Leads by delivery set", labels=["set"])
        for name, value in self._services.parking.counts().items():
            gauge.add_metric([name], value)
        yield gauge
        paused = GaugeMetricFamily("lead_router_delivery_paused", "1 while Ryng delivery is paused")
        paused.add_metric([], 1 if self._services.pause.state() else 0)
        yield paused


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: counters shared by every process through Redis."""
    registry = CollectorRegistry()
    registry.register(_RouterCollector(services))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
