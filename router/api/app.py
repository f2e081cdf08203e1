"""The FastAPI app factory. Nothing is built at import: `create_app()` is called by uvicorn's factory mode."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import redis
import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from config.routing import RoutingConfig
from config.routing_watch import RoutingWatch
from config.settings import Settings, get_settings
from router.api.limits import BodyLimitMiddleware
from router.api.routes import admin, agents, callbacks, health, leads, routing
from router.api.signatures import WebhookVerifier
from workers.routing.assigner import Assigner
from workers.ryng.callbacks import CallbackRecorder
from workers.store.connections import connect, redis_url
from workers.store.counters import Counters
from workers.store.keys import Keys
from workers.store.migrations import migrate
from workers.store.parking import Parking
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore

log = structlog.get_logger("router.api.app")


def build_verifier(settings: Settings) -> WebhookVerifier:
    standard = settings.router_webhook_secrets
    github = settings.router_github_webhook_secret
    return WebhookVerifier.from_config(
        standard_secrets=standard.get_secret_value() if standard else None,
        github_secret=github.get_secret_value() if github else None,
        tolerance_seconds=settings.router_webhook_tolerance_seconds,
    )


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the router's HTTP app; resources open in the lifespan and close with it."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from workers.tasks import enqueue

        client = connect(redis_url(settings.redis_url))
        keys = Keys(settings.router_key_prefix)
        migrate(client, keys=keys, unreachable_ok=True)
        state = app.state
        state.settings, state.redis, state.keys = settings, client, keys
        state.store = LeadStore(client, keys=keys, lease_seconds=settings.router_lease_seconds)
        state.parking = Parking(client, keys=keys, lease_seconds=settings.router_lease_seconds)
        state.pause = DeliveryPause(client, keys=keys, probe_seconds=settings.router_pause_probe_seconds)
        state.counters = Counters(client, keys=keys)
        state.callbacks = CallbackRecorder(client, keys=keys)
        state.routing_watch = watch = RoutingWatch(path=settings.router_routing_file, agents=settings.agents)

        def adopt(routing: RoutingConfig, *, sync: bool = True) -> None:
            assigner = Assigner(client, keys=keys, routing=routing,
                                reservation_timeout_seconds=settings.router_reservation_timeout_seconds)
            if sync:  # a changed routing file: re-register agents and pools (idempotent)
                assigner.sync()
            state.assigner, state.pool_names = assigner, frozenset(pool.name for pool in routing.pools)

        adopt(watch.config, sync=False)
        follower = asyncio.create_task(watch.follow(adopt))
        state.verifier = build_verifier(settings)
        state.enqueue = enqueue
        state.release_capacity = lambda lead_id: state.assigner.release(lead_id=lead_id)
        state.readiness = lambda: _readiness(client)
        try:
            yield
        finally:
            follower.cancel()
            client.close()

    app = FastAPI(
        title="Ryng lead router",
        version="0.1.0",
        description="Routes CRM leads to Ryng agents with a cross-campaign round robin.",
        lifespan=lifespan,
    )
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.router_max_body_bytes,
        body_timeout=settings.router_body_timeout_seconds,
    )
    app.include_router(leads.router)
    app.include_router(callbacks.router)
    app.include_router(health.router)
    app.include_router(agents.router)
    app.include_router(routing.router)
    app.include_router(admin.router)
    _install_handlers(app)
    return app


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


def safe_path(path: str) -> str:
    """A request path fit for logs: the callback secret segment is masked."""
    if path.startswith("/v1/ryng/"):
        return "/v1/ryng/***/" + path.rsplit("/", 1)[-1]
    return path


def _install_handlers(app: FastAPI) -> None:
    @app.middleware("http")
    async def bind_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id[:64])
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["x-request-id"] = request_id[:64]
        if request.url.path not in ("/healthz", "/readyz", "/metrics"):
            log.info(
                "http_request", method=request.method, path=safe_path(request.url.path),
                status=response.status_code, duration_ms=round((time.perf_counter() - started) * 1000, 1),
            )
        return response

    @app.exception_handler(redis.RedisError)
    async def redis_down(request: Request, exc: redis.RedisError) -> JSONResponse:
        log.error("redis_unavailable", error=type(exc).__name__, path=safe_path(request.url.path))
        return JSONResponse(
            {"detail": "storage (Redis) is unavailable; retry the same request later"}, status_code=503
        )
