"""The FastAPI app factory. Nothing is built at import: `create_app()` is called by uvicorn's factory mode."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from config.settings import Settings, get_settings
from router.api.deps import Intake
from router.api.intake_endpoint import IntakeEndpoint
from router.api.limits import BodyLimitMiddleware
from router.api.request_log import RequestLogMiddleware, mask_path
from router.api.routes import admin, agents, callbacks, health, leads, routing, sources, ui
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
        app.state.front_door = services.front_door  # its asyncio Redis client belongs to this event loop
        app.state.intake = Intake(
            services=services, door=services.front_door, verifier=app.state.verifier, enqueue=enqueue
        )
        follower = asyncio.create_task(services.routing_watch.follow(services.adopt_routing))
        gc.freeze()  # what start-up built lives as long as the process: later collections need not walk it
        try:
            yield
        finally:
            follower.cancel()
            await services.aclose()

    # /docs and /redoc with Swagger UI's and ReDoc's files from the fastapi-offline package: no CDN.
    app = FastAPIOffline(
        title="Ryng lead router",
        version="0.1.0",
        description="Routes CRM leads to Ryng agents with a cross-campaign round robin.",
        lifespan=lifespan,
    )
    app.add_middleware(IntakeEndpoint)  # innermost of ours: `POST /v1/leads` is served here, limited and logged
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.router_max_body_bytes,
        body_timeout=settings.router_body_timeout_seconds,
    )
    app.add_middleware(RequestLogMiddleware, secrets=_secrets(settings))
    app.include_router(leads.router)
    app.include_router(callbacks.router)
    app.include_router(health.router)
    app.include_router(agents.router)
    app.include_router(routing.router)
    app.include_router(admin.router)
    app.include_router(sources.router)
    app.include_router(ui.router)
    _install_handlers(app, secrets=_secrets(settings))
    return app


def _secrets(settings: Settings) -> tuple[str, ...]:
    """Secrets that may appear in a request path (only the callback secret does), to mask in logs."""
    secret = settings.router_callback_secret
    return (secret.get_secret_value(),) if secret else ()


def _install_handlers(app: FastAPI, *, secrets: tuple[str, ...]) -> None:
    @app.exception_handler(redis.RedisError)
    async def redis_down(request: Request, exc: redis.RedisError) -> JSONResponse:
        log.error("redis_unavailable", error=type(exc).__name__, path=mask_path(request.url.path, secrets))
        return JSONResponse(
            {"detail": "storage (Redis) is unavailable; retry the same request later"}, status_code=503
        )
