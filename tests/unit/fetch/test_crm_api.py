"""Reading a record from a CRM's API over real HTTP: the URL, where the token goes, and what each answer means."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config.sources_models import SourceConfig
from tests.fixtures import crm
from tests.harness import uvicorn_in_thread
from workers.fetch.crm_api import CrmApi, record_url

TOKEN = SecretStr("pat-na1-0f3c-secret")


class Api:
    """A CRM API stand-in: answers by path; keeps each request's path, query and authorization."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, Any]] = {}
        self.seen: list[tuple[str, dict[str, str], str | None]] = []

    async def handle(self, request: Request) -> Response:
        self.seen.append((request.url.path, dict(request.query_params), request.headers.get("authorization")))
        status, body = self.answers.get(request.url.path, (404, {"message": "not found"}))
        if isinstance(body, str):
            return Response(body, status_code=status, media_type="text/plain")
        return JSONResponse(body, status_code=status)


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    stand_in = Api()
    app = Starlette(routes=[Route("/{path:path}", stand_in.handle, methods=["GET"])])
    with uvicorn_in_thread(app) as (host, port):
        yield stand_in, f"http://{host}:{port}"


def source(base: str, **fetch: Any) -> SourceConfig:
    preset = fetch.pop("preset", "hubspot")
    return SourceConfig.model_validate({"name": "s", "preset": preset, "auth": "none",
                                        "fetch": {"token_env": "T", "base_url": base, **fetch}})


def test_hubspot_reads_the_contact_with_a_bearer_token(api: tuple[Api, str]) -> None:
    stand_in, base = api
    stand_in.answers["/crm/v3/objects/contacts/65059681032"] = (200, crm.HUBSPOT_CONTACT_RECORD)
    reading = CrmApi(httpx.Client()).read(source(base), "65059681032", token=TOKEN)
    assert reading.kind == "record" and reading.record == crm.HUBSPOT_CONTACT_RECORD
    ((path, query, authorization),) = stand_in.seen
    assert path == "/crm/v3/objects/contacts/65059681032"
    assert authorization == f"Bearer {TOKEN.get_secret_value()}" and "mobilephone" in query["properties"]


def test_meta_sends_the_token_in_the_query_and_no_reason_ever_carries_it(api: tuple[Api, str]) -> None:
    stand_in, base = api
    stand_in.answers["/v19.0/444444444444"] = (500, f"oops {TOKEN.get_secret_value()}")
    reading = CrmApi(httpx.Client()).read(source(base, api="meta", preset="generic"), "444444444444", token=TOKEN)
    assert reading.kind == "retry" and "500" in reading.reason
    assert TOKEN.get_secret_value() not in reading.reason
    ((_, query, authorization),) = stand_in.seen
    assert query == {"access_token": TOKEN.get_secret_value()} and authorization is None


def test_pipedrive_reads_the_lead_then_its_person(api: tuple[Api, str]) -> None:
    stand_in, base = api
    stand_in.answers["/api/v1/leads/adf2"] = (200, {"success": True, "data": {"id": "adf2", "person_id": 812}})
    person = {"success": True, "data": {"id": 812, "name": "Kiran Rao",
                                        "phone": [{"value": "+91 99860 11223", "primary": True}]}}
    stand_in.answers["/api/v1/persons/812"] = (200, person)
    reading = CrmApi(httpx.Client()).read(source(base, preset="pipedrive"), "adf2", token=TOKEN)
    assert reading.record == person and [seen[0] for seen in stand_in.seen] == ["/api/v1/leads/adf2",
                                                                                 "/api/v1/persons/812"]
    stand_in.answers["/api/v1/leads/nop"] = (200, {"success": True, "data": {"id": "nop", "person_id": None}})
    refused = CrmApi(httpx.Client()).read(source(base, preset="pipedrive"), "nop", token=TOKEN)
    assert refused.kind == "refused" and "data.person_id" in refused.reason


@pytest.mark.parametrize(("status", "body", "kind"), [
    (404, {"message": "resource not found"}, "refused"),
    (401, {"message": "bad token"}, "refused"),
    (429, {"message": "slow down"}, "retry"),
    (503, "down", "retry"),
    (200, "not json", "refused"),
    (200, ["a", "list"], "refused"),
])
def test_what_each_answer_means(api: tuple[Api, str], status: int, body: Any, kind: str) -> None:
    stand_in, base = api
    stand_in.answers["/crm/v3/objects/contacts/7"] = (status, body)
    reading = CrmApi(httpx.Client()).read(source(base), "7", token=TOKEN)
    assert reading.kind == kind and reading.record is None and "/crm/v3/objects/contacts/7" in reading.reason


def test_an_unreachable_api_is_retried_later() -> None:
    reading = CrmApi(httpx.Client()).read(source("http://127.0.0.1:9"), "7", token=TOKEN)
    assert reading.kind == "retry" and "ConnectError" in reading.reason


def test_a_custom_url_quotes_the_id() -> None:
    config = source("http://x", url="https://crm.example/api/leads/{id}?full=1", api="custom")
    assert record_url(config, "a/b c") == "https://crm.example/api/leads/a%2Fb%20c?full=1"
