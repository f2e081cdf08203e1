"""FastAPI dependencies: settings, Redis and admin authentication, as `Annotated` aliases."""

from __future__ import annotations

import secrets
from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from config.settings import Settings
from workers.store.keys import Keys


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_redis(request: Request) -> redis.Redis:
    client: redis.Redis = request.app.state.redis
    return client


def get_keys(request: Request) -> Keys:
    keys: Keys = request.app.state.keys
    return keys


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
RedisDep = Annotated[redis.Redis, Depends(get_redis)]
KeysDep = Annotated[Keys, Depends(get_keys)]

_bearer = HTTPBearer(auto_error=False, description="ROUTER_ADMIN_TOKEN")


def require_admin(
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
