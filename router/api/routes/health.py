"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from router.api.deps import ServicesDep
from router.api.metrics import RouterCollector

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


@router.get("/metrics", include_in_schema=False)
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: the router's state and the counters every process keeps in Redis (README, "Metrics")."""
    registry = CollectorRegistry()
    registry.register(RouterCollector(services))
    try:
        body = generate_latest(registry)
    except redis.RedisError as exc:  # the figures live in Redis: none to give while it is away
        return Response(f"Redis is unreachable ({type(exc).__name__}): no metrics\n", status_code=503,
                        media_type="text/plain")
    return Response(body, media_type=CONTENT_TYPE_LATEST)
