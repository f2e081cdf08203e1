"""Request limits for the HTTP face: a request-body cap (pure ASGI) and the uvicorn settings for slow clients.

`BodyLimitMiddleware` answers, before the application sees a byte it should not:

- 400 `{"detail": "malformed Content-Length header"}` when Content-Length is not a (repeated) decimal number;
- 413 `{"detail": "request body exceeds N bytes"}` when Content-Length is above the limit (the body is never
  read), or when a chunked / streamed body grows past it. `receive` is wrapped and counts bytes; the chunk
  that crosses the limit is not passed on, the 413 is sent at once, and the application is told the client
  disconnected. Whatever the application does after that (raise, or try to answer 400) is discarded, so an
  overflow is always a 413, never a 500 or a hang. Nothing is buffered here: bytes are only counted.

The 413 carries `Connection: close`, so the server drops the connection instead of draining the rest.

Usage::

    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.router_max_body_bytes)
    uvicorn.run(app, host=..., port=..., **uvicorn_limits())
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

__all__ = ["BodyLimitMiddleware", "uvicorn_limits"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_log = logging.getLogger(__name__)
_DIGITS = re.compile(rb"[0-9]+")
_MAX_DIGITS = 18  # longer numbers are certainly over any limit (and int() of huge strings is refused)


class _MalformedLength(ValueError):
    pass


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length, or None. Repeated identical values are accepted (RFC 9112 §6.3)."""
    values: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"content-length":
            for part in value.split(b","):
                part = part.strip()
                if not _DIGITS.fullmatch(part):
                    raise _MalformedLength
                values.add(part.lstrip(b"0") or b"0")
    if not values:
        return None
    if len(values) > 1:
        raise _MalformedLength
    digits = values.pop()
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    })
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BodyLimitMiddleware:
    """Refuse request bodies over `max_body_bytes` on HTTP paths starting with `paths_prefix`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, paths_prefix: str = "/") -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.paths_prefix = paths_prefix
        self._too_large = f"request body exceeds {max_body_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.paths_prefix):
            await self.app(scope, receive, send)
            return
        try:
            declared = _declared_length(scope.get("headers", ()))
        except _MalformedLength:
            await _send_json(send, 400, "malformed Content-Length header")
            return
        if declared is not None and declared > self.max_body_bytes:
            await _send_json(send, 413, self._too_large)
            return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        received = 0
        overflowed = False  # the body went past the limit
        answered = False  # ...and we sent the 413 ourselves
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, overflowed, answered, response_started
            if overflowed:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            if received <= self.max_body_bytes:
                return message
            overflowed = True
            if not response_started:
                response_started = answered = True
                await _send_json(send, 413, self._too_large)
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if answered:
                return  # the 413 is already out: drop whatever the application answers
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not answered:
                raise
            _log.debug("request body over the limit; the application's error was discarded", exc_info=True)


def uvicorn_limits(*, limit_concurrency: int = 256) -> dict[str, object]:
    """Keyword arguments for `uvicorn.Config` / `uvicorn.run` that bound what one client can hold.

    - `http="h11"`: the pure-Python parser is the one `h11_max_incomplete_event_size` applies to (httptools,
      picked by "auto" when installed, ignores it). Throughput is ample for a lead router.
    - `h11_max_incomplete_event_size=16384`: at most 16 KiB of an *unfinished* request head is buffered;
      past that the client gets 400 and is cut off, so an endless trickled header block cannot grow our
      buffers. (A complete head that arrives in one read is parsed whatever its size.)
    - `timeout_keep_alive=5`: idle keep-alive connections are closed after 5 s (idle sockets count towards
      `limit_concurrency`, so they must not linger).
    - `limit_concurrency`: above this many open connections/tasks per process uvicorn answers 503 at once
      instead of queueing without bound; webhook senders and Ryng retry on 503.
    - `backlog=2048`: pending TCP connections queued by the kernel.
    - `timeout_graceful_shutdown=10`: on SIGTERM, in-flight requests get 10 s, then are cancelled, so a
      slow client cannot stall a deploy. (A lead is durable once it was accepted; see DESIGN.md.)
    - `ws="none"`: the router serves no websockets.

    What uvicorn cannot do: there is no timeout for a client that trickles its headers or body slowly.
    Exposed to the internet, run it behind a proxy with header/body read timeouts (nginx
    `client_header_timeout` / `client_body_timeout`, or the load balancer's equivalent).
    """
    if limit_concurrency < 1:
        raise ValueError("limit_concurrency must be >= 1")
    return {
        "http": "h11",
        "h11_max_incomplete_event_size": 16_384,
        "timeout_keep_alive": 5,
        "limit_concurrency": limit_concurrency,
        "backlog": 2048,
        "timeout_graceful_shutdown": 10,
        "ws": "none",
    }
