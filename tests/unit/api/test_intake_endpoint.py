"""`POST /v1/leads` served by the pure-ASGI `IntakeEndpoint` answers exactly as the FastAPI route does."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
import redis
from celery import Celery
from fastapi import FastAPI

from config.settings import Settings
from router.api.deps import Intake
from router.api.intake_endpoint import IntakeEndpoint
from router.api.routes import leads
from router.api.signatures import WebhookVerifier
from workers.services import Services
from workers.store.front_door import FrontDoor
from workers.task_message import DELIVER_TASK, DeliveryMessages

JSON = {"content-type": "application/json"}
REQUESTS: list[dict[str, Any]] = [
    {"content": b'{"id": "A1", "number": "998314242"}', "headers": {"content-type": "text/plain"}},
    {"content": b"", "headers": JSON},
    {"content": b'{"id": "A1", "number": ', "headers": JSON},
    {"content": b'{"id": "A1"}', "headers": JSON},
    {"content": b'{"id": "A1", "number": "998314242", "pool": "nowhere"}', "headers": JSON},
    {"content": b'{"id": "A1", "number": "998314242", "agent": "zoe"}', "headers": JSON},
    {"content": b'{"id": "A1", "number": "998314242"}', "headers": JSON},
    {"content": b'{"id": "A1", "number": "998314242"}', "headers": {"content-type": "application/vnd.x+json"}},
    {"content": b'{"id": "A1", "number": "998314243"}', "headers": JSON},
]


def _app(redis_url: str, *, fast: bool, queued: list[str], one_call: bool) -> tuple[FastAPI, Services]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, redis_url=redis_url, router_key_prefix=f"t{uuid.uuid4().hex[:8]}", router_agents="alice,bob",
    )
    services = Services.from_settings(settings)
    messages = None
    if one_call:  # the door queues the task itself, on a broker that is this Redis
        celery = Celery("intake-endpoint-test", broker=redis_url, set_as_current=False)
        celery.conf.update(task_default_queue="leads", task_send_sent_event=True)
        messages = DeliveryMessages(celery, task_name=DELIVER_TASK, db=0)
    door = FrontDoor(services.async_redis, keys=services.keys, lease_seconds=60, messages=messages)
    app = FastAPI()
    app.include_router(leads.router)
    if fast:
        app.add_middleware(IntakeEndpoint)
    verifier = WebhookVerifier.from_config(standard_secrets=None, github_secret=None)
    app.state.intake = Intake(services=services, door=door, verifier=verifier, enqueue=queued.append)
    return app, services


async def _answers(app: FastAPI) -> list[tuple[int, Any]]:
    answers = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        for request in REQUESTS:
            answer = await client.post("/v1/leads", **request)
            answers.append((answer.status_code, answer.json()))
    return answers


@pytest.mark.parametrize("one_call", [True, False], ids=["door-queues", "celery-publishes"])
def test_the_endpoint_and_the_route_give_the_same_answers(redis_url: str, one_call: bool) -> None:
    fast_queued: list[str] = []
    route_queued: list[str] = []
    fast_app, fast_services = _app(redis_url, fast=True, queued=fast_queued, one_call=one_call)
    route_app, route_services = _app(redis_url, fast=False, queued=route_queued, one_call=one_call)
    try:
        fast = asyncio.run(_answers(fast_app))
        route = asyncio.run(_answers(route_app))
    finally:
        fast_services.close()
        route_services.close()
    assert fast == route
    statuses = [status for status, _ in fast]
    assert statuses == [415, 422, 422, 422, 422, 422, 202, 200, 409], fast
    assert "unknown agent 'zoe'" in fast[5][1]["detail"]
    assert fast[6][1] == {"id": "A1", "status": "queued", "duplicate": False}
    assert fast_queued == route_queued == ([] if one_call else ["A1"])
    with redis.Redis.from_url(redis_url) as client:
        assert client.llen("leads") == (2 if one_call else 0)  # one task each, put on the queue by the door
