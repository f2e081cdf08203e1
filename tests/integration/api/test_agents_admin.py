"""Live agent control through the admin API and the CLI, against real Redis."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
import typer
from fastapi import FastAPI
from pydantic import SecretStr
from typer.testing import CliRunner

from config.routing import RoutingConfig
from config.settings import Settings, get_settings
from router.api.routes.agents import router
from router.cli.agents import register
from workers.routing.assigner import Assigner, LeadFacts
from workers.services import Services
from workers.store.keys import Keys

#: ISO-8601 with its offset (the router writes UTC: `Z`), as every time people read.
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d\d:\d\d)$")
TOKEN = "admin-secret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def assigner(client: redis.Redis, keys: Keys) -> Assigner:
    routing = RoutingConfig.model_validate({
        "agents": [{"name": "ann", "id": 11, "capacity": 2}, {"name": "bob"}],
        "pools": [{"name": "default", "members": ["ann", "bob"], "strategy": "weighted", "sticky_seconds": 60}],
    })
    result = Assigner(client, keys=keys, routing=routing)
    result.sync()
    return result


class Api:
    """A tiny synchronous client over httpx's ASGI transport (no server, no starlette TestClient)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://admin.test") as http:
                return await http.request(method, url, **options)

        return asyncio.run(send())

    def get(self, url: str, **options: Any) -> httpx.Response:
        return self.request("GET", url, **options)

    def post(self, url: str, **options: Any) -> httpx.Response:
        return self.request("POST", url, **options)

    def patch(self, url: str, **options: Any) -> httpx.Response:
        return self.request("PATCH", url, **options)


@pytest.fixture
def api(client: redis.Redis, keys: Keys) -> Api:
    app = FastAPI()
    app.include_router(router)
    settings = Settings(router_admin_token=SecretStr(TOKEN), router_key_prefix=keys.prefix)
    app.state.services = Services.from_settings(settings, client=client)
    return Api(app)


def test_the_admin_api_needs_the_token(api: Api, assigner: Assigner) -> None:
    assert api.get("/v1/admin/agents").status_code == 401
    assert api.get("/v1/admin/agents", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_pause_resume_and_patch_through_the_api(api: Api, assigner: Assigner) -> None:
    listed = api.get("/v1/admin/agents", headers=AUTH).json()
    assert [agent["name"] for agent in listed["agents"]] == ["ann", "bob"]
    assert listed["stats"] == {"agents": 2, "paused": 0, "open": 0, "assigned": 0, "reservations": 0}
    paused = api.post("/v1/admin/agents/ann/pause", json={"reason": "lunch"}, headers=AUTH).json()
    assert (paused["paused"], paused["pause_reason"]) == (True, "lunch")
    assert ISO.match(paused["paused_at"]), paused
    pick = assigner.pick(LeadFacts(lead_id="x1", number="", fields={}))
    assert pick.agent == "bob" and pick.skipped[0].reason == "paused"
    bob = api.get("/v1/admin/agents", headers=AUTH).json()["agents"][1]
    assert ISO.match(bob["last_assigned_at"]) and bob["paused_at"] is None and bob["wrap_up_until"] is None
    assert api.post("/v1/admin/agents/ann/resume", headers=AUTH).json()["paused"] is False
    patched = api.patch("/v1/admin/agents/bob", json={"weight": 4, "capacity": 9}, headers=AUTH).json()
    assert (patched["weight"], patched["capacity"]) == (4, 9)
    assert api.patch("/v1/admin/agents/bob", json={"weight": 0}, headers=AUTH).status_code == 422
    assert api.post("/v1/admin/agents/zed/pause", json={"reason": "x"}, headers=AUTH).status_code == 404
    pools = api.get("/v1/admin/pools", headers=AUTH).json()
    assert pools[0]["name"] == "default" and pools[0]["members"] == ["ann", "bob"]
    assert pools[0]["config"]["sticky_seconds"] == 60


@pytest.fixture
def cli(keys: Keys, monkeypatch: pytest.MonkeyPatch, redis_server_url: str) -> Iterator[typer.Typer]:
    monkeypatch.setenv("REDIS_URL", redis_server_url)
    monkeypatch.setenv("ROUTER_KEY_PREFIX", keys.prefix)
    get_settings.cache_clear()
    app = typer.Typer()
    app.command("noop")(lambda: None)
    register(app)
    yield app
    get_settings.cache_clear()


def test_cli_lists_pauses_sets_and_shows_pools(cli: typer.Typer, assigner: Assigner) -> None:
    runner = CliRunner()
    assigner.pick(LeadFacts(lead_id="x1", number="", fields={}))
    listed = runner.invoke(cli, ["agents", "list"])
    assert listed.exit_code == 0, listed.output
    assert listed.stderr.startswith("redis: ")  # every command names the Redis it reads, on stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:5] == ["AGENT", "ID", "STATE", "WEIGHT", "OPEN"]
    assert lines[1].split()[:5] == ["ann", "11", "available", "1", "1/2"]
    assert ISO.match(lines[1].split()[6]) and lines[2].split()[6] == "-"  # ann's last pick; bob never picked
    assert "2 agents, 0 paused, 1 open leads" in listed.output
    paused = runner.invoke(cli, ["agents", "pause", "bob", "--reason", "sick"])
    assert paused.exit_code == 0 and "bob: paused (sick)" in paused.output
    assert "paused (sick)" in runner.invoke(cli, ["agents", "list"]).output
    assert runner.invoke(cli, ["agents", "resume", "bob"]).stdout.startswith("bob: available")
    changed = runner.invoke(cli, ["agents", "set", "ann", "--capacity", "1", "--weight", "3"])
    assert "ann: at capacity; weight 3; open 1/1" in changed.output
    assert runner.invoke(cli, ["agents", "set", "ann"]).exit_code == 2
    assert runner.invoke(cli, ["agents", "pause", "zed"]).exit_code == 1
    pools = runner.invoke(cli, ["pools"])
    assert pools.exit_code == 0
    # ann holds the one open lead: the last agent picked, shown for weighted pools too (not only round robin)
    assert pools.stdout.splitlines()[1].split() == ["default", "weighted", "ann,bob", "ann", "60.0s", "wait", "300.0s"]
