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

from config.settings import Settings, get_settings
from router.api.limits import BodyLimitMiddleware
from router.api.routes import admin, agents, callbacks, health, leads, routing, sources
from router.api.signatures import WebhookVerifier
from workers.services import Services

log = structlog.get_logger(__name__)


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

        services = Services.from_settings(settings)
        services.migrate(unreachable_ok=True)  # the API starts without Redis (503 until it is back)
        app.state.services = services
        app.state.verifier = build_verifier(settings)
        app.state.enqueue = enqueue
        follower = asyncio.create_task(services.routing_watch.follow(services.adopt_routing))
        try:
            yield
        finally:
            follower.cancel()
            services.close()

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
    app.include_router(sources.router)
    _install_handlers(app)
    return app


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
