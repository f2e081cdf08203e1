"""FastAPI dependencies: the router's collaborators, admin and reader authentication, as typed `Annotated` aliases.

The app's lifespan puts one `Services` (the composition root) and one webhook verifier on `app.state`; these
functions are the only readers of `app.state`, so a route's signature says what it uses.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.routing_watch import RoutingWatch
from config.settings import Settings
from router.api.signatures import WebhookVerifier
from workers.outcomes.outbox import Outbox
from workers.routing.agents import AgentStore
from workers.routing.assigner import Assigner
from workers.ryng.callbacks import CallbackRecorder
from workers.services import Services
from workers.store.counters import Counters
from workers.store.front_door import FrontDoor
from workers.store.keys import Keys
from workers.store.parking import Parking
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore

__all__ = [
    "AdminDep", "AgentStoreDep", "AssignerDep", "CallbacksDep", "CountersDep", "EnqueueDep", "FrontDoorDep",
    "Intake", "IntakeDep", "KeysDep", "OutboxDep", "ParkingDep", "PauseDep", "ReaderDep", "RedisDep",
    "RoutingWatchDep", "ServicesDep", "SettingsDep", "StoreDep", "VerifierDep", "require_admin", "require_reader",
]


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_verifier(request: Request) -> WebhookVerifier:
    verifier: WebhookVerifier = request.app.state.verifier
    return verifier


async def get_enqueue(request: Request) -> Callable[[str], None]:
    enqueue: Callable[[str], None] = request.app.state.enqueue
    return enqueue


async def get_front_door(request: Request) -> FrontDoor:
    door: FrontDoor = request.app.state.front_door
    return door


@dataclass(frozen=True, slots=True)
class Intake:
    """What `POST /v1/leads` uses, in one dependency (the intake is the hot path: one resolution, not four)."""

    services: Services
    door: FrontDoor
    verifier: WebhookVerifier
    enqueue: Callable[[str], None]


async def get_intake(request: Request) -> Intake:
    intake: Intake = request.app.state.intake
    return intake


ServicesDep = Annotated[Services, Depends(get_services)]
IntakeDep = Annotated[Intake, Depends(get_intake)]
VerifierDep = Annotated[WebhookVerifier, Depends(get_verifier)]
EnqueueDep = Annotated[Callable[[str], None], Depends(get_enqueue)]
FrontDoorDep = Annotated[FrontDoor, Depends(get_front_door)]


async def get_app_settings(services: ServicesDep) -> Settings:
    return services.settings


async def get_redis(services: ServicesDep) -> redis.Redis:
    return services.redis


async def get_keys(services: ServicesDep) -> Keys:
    return services.keys


async def get_store(services: ServicesDep) -> LeadStore:
    return services.store


async def get_parking(services: ServicesDep) -> Parking:
    return services.parking


async def get_pause(services: ServicesDep) -> DeliveryPause:
    return services.pause


async def get_counters(services: ServicesDep) -> Counters:
    return services.counters


async def get_callbacks(services: ServicesDep) -> CallbackRecorder:
    return services.callbacks


async def get_agent_store(services: ServicesDep) -> AgentStore:
    return services.agents


async def get_assigner(services: ServicesDep) -> Assigner:
    return services.assigner


async def get_routing_watch(services: ServicesDep) -> RoutingWatch:
    return services.routing_watch


def get_outbox(services: ServicesDep) -> Outbox:
    return services.outbox


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
KeysDep = Annotated[Keys, Depends(get_keys)]
StoreDep = Annotated[LeadStore, Depends(get_store)]
ParkingDep = Annotated[Parking, Depends(get_parking)]
PauseDep = Annotated[DeliveryPause, Depends(get_pause)]
CountersDep = Annotated[Counters, Depends(get_counters)]
CallbacksDep = Annotated[CallbackRecorder, Depends(get_callbacks)]
AgentStoreDep = Annotated[AgentStore, Depends(get_agent_store)]
AssignerDep = Annotated[Assigner, Depends(get_assigner)]
RoutingWatchDep = Annotated[RoutingWatch, Depends(get_routing_watch)]
OutboxDep = Annotated[Outbox, Depends(get_outbox)]

_bearer = HTTPBearer(auto_error=False, description="ROUTER_ADMIN_TOKEN")
_reader_bearer = HTTPBearer(auto_error=False, description="ROUTER_READ_TOKEN or ROUTER_ADMIN_TOKEN")
_FORWARDED = (b"forwarded", b"x-forwarded-for", b"x-real-ip")


async def require_admin(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Admin endpoints need `Authorization: Bearer <ROUTER_ADMIN_TOKEN>`; without a token set they are off."""
    expected = settings.router_admin_token
    if expected is None or not expected.get_secret_value():
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the admin API is off: set ROUTER_ADMIN_TOKEN")
    given = credentials.credentials if credentials else ""
    if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "a valid admin bearer token is required",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminDep = Depends(require_admin)


async def require_reader(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_reader_bearer)],
) -> None:
    """Lead records need `Authorization: Bearer <ROUTER_READ_TOKEN or ROUTER_ADMIN_TOKEN>`.

    A wrong token is a 401. With no token given: 401 when a token is configured, 403 when none is (reading is
    off), except that with `ROUTER_LOOPBACK_READS` (set by `lead-router run`) a client on the loopback address
    that came through no proxy reads freely. The answers say nothing about the lead asked for.
    """
    tokens = [
        token.get_secret_value().encode()
        for token in (settings.router_read_token, settings.router_admin_token)
        if token is not None and token.get_secret_value()
    ]
    if credentials is not None:
        given = credentials.credentials.encode()
        if any(secrets.compare_digest(given, token) for token in tokens):
            return
    elif settings.router_loopback_reads and _direct_loopback(request):
        return
    if not tokens:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "reading leads is off: set ROUTER_READ_TOKEN (or ROUTER_ADMIN_TOKEN)"
        )
    raise HTTPException(
        status.HTTP_401_UNAUTHORIZED, "a valid bearer token is required to read leads",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _direct_loopback(request: Request) -> bool:
    """The peer is a loopback address and no proxy header says the request came from elsewhere."""
    if request.client is None or any(name in _FORWARDED for name, _ in request.scope.get("headers", ())):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


ReaderDep = Depends(require_reader)
