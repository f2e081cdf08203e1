"""The intake benchmark's peer: a bare FastAPI endpoint that validates the same lead with pydantic (the
router's own `LeadIn`) and does one Redis `LPUSH` (redis.asyncio). Nothing else: no signature, no record, no
log line. Served by `python -m tests.bench.peer_app PORT` with the router's own uvicorn settings."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI

from router.api.limits import uvicorn_limits
from router.api.schemas import LeadAccepted, LeadIn

QUEUE = "bench:peer:leads"


def create_app(redis_url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.redis = aioredis.Redis.from_url(redis_url)
        yield
        await app.state.redis.aclose()

    app = FastAPI(lifespan=lifespan)

    @app.post("/v1/leads", status_code=202)
    async def take(lead: LeadIn) -> LeadAccepted:
        await app.state.redis.lpush(QUEUE, lead.model_dump_json())
        return LeadAccepted(id=lead.id, status="queued")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


if __name__ == "__main__":
    uvicorn.run(
        create_app(os.environ["REDIS_URL"]), host="127.0.0.1", port=int(sys.argv[1]), log_config=None,
        access_log=False, **uvicorn_limits(),  # type: ignore[arg-type]
    )
