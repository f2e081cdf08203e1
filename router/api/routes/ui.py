"""The live routing page: `/ui` (and `/` sends there), its JSON snapshot, and agent pause/resume from the page.

Credential: the admin token (`ROUTER_ADMIN_TOKEN`). A browser cannot set a header on page load, so the page asks
for the token once in a login form and keeps, in an HttpOnly, SameSite=Strict cookie scoped to `/ui`, a value
derived from the token (an HMAC, so the token itself is never stored in the browser; changing the token ends
every session). Every `/ui` route also takes `Authorization: Bearer <admin token>` instead of the cookie.
Without either, nothing but the login form is served (401), and its body says nothing about the router.

Changes (pause, resume) need the header `X-Lead-Router: ui` as well, which a cross-site form cannot send, and an
`Origin`, when the browser sends one, that is this server's own: together with SameSite=Strict, no other site
can pause an agent through an operator's browser.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from importlib import resources
from typing import Annotated
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from config.settings import Settings
from router.api.deps import AgentStoreDep, ServicesDep, SettingsDep
from workers.operator.snapshot import Snapshot, SnapshotReader
from workers.routing.agents import AgentState, UnknownAgentError

__all__ = ["COOKIE", "router", "session_value"]

COOKIE = "lead_router_ui"
#: The header a change from the page carries (a cross-site form cannot set one).
CHANGE_HEADER = "x-lead-router"
_ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
_SESSION_DAYS = 7

router = APIRouter(include_in_schema=False)


def session_value(admin_token: str) -> str:
    """The cookie's value for an admin token: an HMAC of a fixed label, so the token is not kept in browsers."""
    return hmac.new(admin_token.encode(), b"lead-router routing page", hashlib.sha256).hexdigest()


def _admin_token(settings: Settings) -> str | None:
    token = settings.router_admin_token
    return token.get_secret_value() if token is not None and token.get_secret_value() else None


def _signed_in(request: Request, token: str) -> bool:
    cookie = request.cookies.get(COOKIE, "")
    if cookie and secrets.compare_digest(cookie.encode(), session_value(token).encode()):
        return True
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode())


def _asset(name: str) -> str:
    return resources.files("router.ui").joinpath(name).read_text(encoding="utf-8")


def _login(message: str, *, code: int) -> HTMLResponse:
    page = _asset("login.html").replace("{{message}}", message)
    return HTMLResponse(page, status_code=code, headers={"Cache-Control": "no-store"})


async def require_page_admin(request: Request, settings: SettingsDep) -> None:
    """The admin cookie or bearer token; a 401 (or 403 when the admin token is not set) says nothing more."""
    token = _admin_token(settings)
    if token is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the routing page is off: set ROUTER_ADMIN_TOKEN")
    if not _signed_in(request, token):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in at /ui with the admin token")


async def require_page_change(request: Request, _: Annotated[None, Depends(require_page_admin)]) -> None:
    """A change from the page: signed in, with the page's own header, from this server's own origin."""
    if request.headers.get(CHANGE_HEADER) != "ui":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"changes need the header {CHANGE_HEADER}: ui")
    if not _same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "changes are taken from this server's own page only")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host", "") and parts.scheme in ("http", "https")


PageAdmin = Depends(require_page_admin)
PageChange = Depends(require_page_change)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/ui")
def page(request: Request, settings: SettingsDep) -> Response:
    """The routing page once signed in; else the sign-in form (401)."""
    token = _admin_token(settings)
    if token is None:
        return _login("The routing page is off: set ROUTER_ADMIN_TOKEN and restart the API.", code=403)
    if not _signed_in(request, token):
        return _login("", code=401)
    return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-store"})


@router.post("/ui/login")
async def login(request: Request, settings: SettingsDep) -> Response:
    """Take the admin token from the sign-in form; a right one sets the session cookie and goes to the page."""
    token = _admin_token(settings)
    if token is None:
        return _login("The routing page is off: set ROUTER_ADMIN_TOKEN and restart the API.", code=403)
    if not _same_origin(request):
        return _login("Sign in from this server's own page.", code=403)
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    given = (form.get("token") or [""])[0].strip()
    if not secrets.compare_digest(given.encode(), token.encode()):
        return _login("That is not the admin token.", code=401)
    answer = RedirectResponse("/ui", status_code=status.HTTP_303_SEE_OTHER)
    answer.set_cookie(
        COOKIE, session_value(token), max_age=_SESSION_DAYS * 86400, path="/ui", httponly=True, samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.post("/ui/logout")
def logout() -> Response:
    answer = RedirectResponse("/ui", status_code=status.HTTP_303_SEE_OTHER)
    answer.delete_cookie(COOKIE, path="/ui", httponly=True, samesite="strict")
    return answer


@router.get("/ui/assets/{name}", dependencies=[PageAdmin])
def asset(name: str) -> Response:
    if name not in _ASSETS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such asset")
    return Response(_asset(name), media_type=_ASSETS[name], headers={"Cache-Control": "no-cache"})


@router.get("/ui/snapshot", dependencies=[PageAdmin])
def snapshot(services: ServicesDep) -> Snapshot:
    """Everything the page shows, at one moment (see `workers.operator.snapshot`)."""
    return SnapshotReader.for_services(services).take()


@router.post("/ui/agents/{name}/pause", dependencies=[PageChange])
def pause(name: str, store: AgentStoreDep) -> AgentState:
    try:
        return store.pause(name, reason="paused from the routing page")
    except UnknownAgentError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent named {name!r}") from None


@router.post("/ui/agents/{name}/resume", dependencies=[PageChange])
def resume(name: str, store: AgentStoreDep) -> AgentState:
    try:
        return store.resume(name)
    except UnknownAgentError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no agent named {name!r}") from None
