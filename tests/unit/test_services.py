"""The composition root: each collaborator built once, on first use, from settings; routing can change under it."""

from __future__ import annotations

import httpx
import redis

from config.routing import RoutingConfig
from config.settings import Settings
from workers.services import Services
from workers.store.limiter import RateLimiter


def _routing(*agents: str) -> RoutingConfig:
    return RoutingConfig.model_validate({
        "agents": [{"name": name} for name in agents],
        "pools": [{"name": "default", "members": list(agents)}],
    })


def _settings(prefix: str) -> Settings:
    return Settings(_env_file=None, router_key_prefix=prefix, router_agents="alice,bob")  # type: ignore[call-arg]


def test_collaborators_are_built_once_and_only_when_used(redis_client: redis.Redis, key_prefix: str) -> None:
    services = Services.from_settings(_settings(key_prefix), client=redis_client)
    assert services.store is services.store and services.keys.prefix == key_prefix
    assert services.store.keys == services.keys
    # An import or a read takes the store: no Ryng client is opened for it.
    assert "ryng" not in services.__dict__ and "deliverer" not in services.__dict__
    assert services.pool_names == frozenset({"default"})  # ROUTER_AGENTS makes the default pool


def test_a_replaced_collaborator_is_the_one_later_ones_take(redis_client: redis.Redis, key_prefix: str) -> None:
    def ryng(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": False, "message": "ok", "data": {}})

    services = Services.from_settings(
        _settings(key_prefix), client=redis_client, routing=_routing("ann"), ryng_transport=httpx.MockTransport(ryng),
    )
    limiter = RateLimiter(redis_client, keys=services.keys, limit=3)
    services.limiter = limiter  # as the unit tests' rig does with its fakes
    deliverer = services.deliverer
    assert deliverer._ledger._limiter is limiter and deliverer._assigner is services.assigner
    assert deliverer._ryng is services.ryng and deliverer._store is services.store
    assert [agent.name for agent in services.assigner.routing.agents] == ["ann"]


def test_adopting_a_routing_rewires_the_deliverer(redis_client: redis.Redis, key_prefix: str) -> None:
    services = Services.from_settings(_settings(key_prefix), client=redis_client, routing=_routing("ann"))
    services.ryng_transport = httpx.MockTransport(lambda request: httpx.Response(500))
    before = services.deliverer
    services.adopt_routing(_routing("ann", "ben"))
    assert services.pool_names == frozenset({"default"})
    assert [agent.name for agent in services.assigner.routing.agents] == ["ann", "ben"]
    assert services.deliverer is not before and services.deliverer._assigner is services.assigner
    assert services.agents.get("ben").configured  # adopted with a sync: the new agent is registered in Redis
    services.close()
