"""One canonical log line per HTTP request, with a request id, and paths fit for logs (secrets masked).

`RequestLogMiddleware` is pure ASGI (no extra task or stream per request): it binds `request_id` (the
client's `X-Request-ID`, else a new one) for every log line of the request, echoes it in the response, and
logs `http_request` with method, masked path, status and duration when the response is done.

`mask_path` hides the callback secret however the path spells it: the segment after any `ryng` segment
(whatever its case, however many slashes come before or between) and every occurrence of a configured secret.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestLogMiddleware", "mask_path"]

_MASK = "***"
#: Paths polled often (probes, scrapes, the routing page every second): not logged per request.
_QUIET = frozenset({"/healthz", "/readyz", "/metrics", "/ui/snapshot"})
log = structlog.get_logger(__name__)


def mask_path(path: str, secrets: Iterable[str] = ()) -> str:
    """`path` with the segment after a `ryng` segment, and every configured secret, replaced by `***`."""
    parts = path.split("/")
    after_ryng = False
    for index, part in enumerate(parts):
        if after_ryng and part:
            parts[index], after_ryng = _MASK, False
        elif part.lower() == "ryng":
            after_ryng = True
    masked = "/".join(parts)
    for secret in secrets:
        if secret:
            masked = masked.replace(secret, _MASK)
    return masked


class RequestLogMiddleware:
    """Binds a request id, echoes it as `X-Request-ID`, and logs one line per request (not for probes)."""

    def __init__(self, app: ASGIApp, *, secrets: Iterable[str] = ()) -> None:
        self.app = app
        self.secrets = tuple(secret for secret in secrets if secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id")[:64] or uuid.uuid4().hex
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 499  # no response and no error: the client closed the request (nginx's 499); an error is 500
        echo = (b"x-request-id", request_id.encode("latin-1", "replace"))

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", ()), echo]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except BaseException:
            status = 500 if status == 499 else status
            raise
        finally:
            path = str(scope.get("path", ""))
            if path not in _QUIET:
                log.info(
                    "http_request", method=scope.get("method"), path=mask_path(path, self.secrets), status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return ""
