"""Request limits for the HTTP face: a request-body cap and time budget (pure ASGI) and the uvicorn settings.

`BodyLimitMiddleware` answers, before the application sees a byte it should not:

- 400 `{"detail": "malformed Content-Length header"}` when Content-Length is not a (repeated) decimal number;
- 413 `{"detail": "request body exceeds N bytes"}` when Content-Length is above the limit (the body is never
  read), or when a chunked / streamed body grows past it. `receive` is wrapped and counts bytes; the chunk
  that crosses the limit is not passed on, the 413 is sent at once, and the application is told the client
  disconnected. Whatever the application does after that (raise, or try to answer 400) is discarded, so an
  overflow is always a 413, never a 500 or a hang. Nothing is buffered here: bytes are only counted.
- 408 `{"detail": "request body not received in time"}` when the body is not complete within `body_timeout`
  seconds (default 30) of the application's first `receive()`. The clock does not restart for each chunk,
  so a body trickled a few bytes at a time runs out of time like a stalled one. The pending `receive` is
  cancelled and the application is told the client disconnected, as for an overflow. Once the last chunk
  is in, later `receive()` calls only wait for a disconnect and have no deadline.

The 413 and 408 carry `Connection: close`, so the server drops the connection instead of draining the rest.
(A request head that arrives slowly never reaches the application: see router/api/slow_clients.py.)

Usage::

    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.router_max_body_bytes)
    uvicorn.run(app, host=..., port=..., **uvicorn_limits())
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.api.slow_clients import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_PER_CLIENT, slow_client_protocol

__all__ = ["DEFAULT_BODY_TIMEOUT", "BodyLimitMiddleware", "uvicorn_limits"]


_log = logging.getLogger(__name__)
_DIGITS = re.compile(rb"[0-9]+")
_MAX_DIGITS = 18  # longer numbers are certainly over any limit (and int() of huge strings is refused)
_TOO_SLOW = "request body not received in time"
DEFAULT_BODY_TIMEOUT = 30.0


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
    """Refuse request bodies over `max_body_bytes`, or slower than `body_timeout` seconds, on HTTP paths
    starting with `paths_prefix`. `body_timeout=None` turns the time budget off."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        paths_prefix: str = "/",
        body_timeout: float | None = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must be >= 0")
        if body_timeout is not None and not body_timeout > 0:
            raise ValueError("body_timeout must be > 0 (or None)")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.paths_prefix = paths_prefix
        self.body_timeout = body_timeout
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
        refused = False  # the body went past the limit or the deadline: the application is told "disconnect"
        answered = False  # ...and we sent the 413 / 408 ourselves
        response_started = False
        body_complete = False  # after the last body chunk, `receive` only waits for a disconnect: no deadline
        deadline: float | None = None  # set by the first `receive`
        client_left = False  # the client hung up before its request was read: nobody to answer

        async def refuse(status: int, detail: str) -> Message:
            nonlocal refused, answered, response_started
            refused = True
            if not response_started:
                response_started = answered = True
                await _send_json(send, status, detail)
            return {"type": "http.disconnect"}

        async def limited_receive() -> Message:
            nonlocal received, body_complete, deadline, client_left
            if refused:
                return {"type": "http.disconnect"}
            if body_complete or self.body_timeout is None:
                message = await receive()
            else:
                if deadline is None:
                    deadline = asyncio.get_running_loop().time() + self.body_timeout
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    return await refuse(408, _TOO_SLOW)
            if message["type"] != "http.request":
                client_left = client_left or (message["type"] == "http.disconnect" and not response_started)
                return message
            if not message.get("more_body", False):
                body_complete = True
            received += len(message.get("body", b""))
            if received <= self.max_body_bytes:
                return message
            return await refuse(413, self._too_large)

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if answered:
                return  # the 413 / 408 is already out: drop whatever the application answers
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if client_left and not response_started:  # e.g. Starlette's ClientDisconnect: not a server error
                _log.info("The client left before its request body was read; nothing answered.")
                return
            if not answered:
                raise
            _log.debug("request body refused; the application's error was discarded", exc_info=True)


def uvicorn_limits(
    *,
    limit_concurrency: int = 256,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    max_per_client: int = DEFAULT_MAX_PER_CLIENT,
) -> dict[str, object]:
    """Keyword arguments for `uvicorn.Config` / `uvicorn.run` that bound what one client can hold.

    - `http=SlowClientH11Protocol` (router/api/slow_clients.py): uvicorn's pure-Python h11 protocol, plus a
      deadline of `header_timeout` seconds for a request head, counted from when the connection opens or
      the previous response finished. A client that trickles its headers (slowloris) is cut off. A
      partial head gets a 408 first; an idle connection is just closed. The h11 parser is also the one
      `h11_max_incomplete_event_size` applies to (httptools, which "auto" picks when installed, ignores
      it). The same class caps the connections of one client address at `max_per_client` (0: no cap).
    - `h11_max_incomplete_event_size=16384`: at most 16 KiB of an *unfinished* request head is buffered;
      past that the client gets 400 and is cut off, so an endless trickled header block cannot grow our
      buffers. (A complete head that arrives in one read is parsed whatever its size.)
    - `timeout_keep_alive=5`: idle keep-alive connections are closed after 5 s (idle sockets count towards
      `limit_concurrency`, so they must not linger). The header deadline also runs while a connection is
      idle, so the effective idle limit is the smaller of the two.
    - `limit_concurrency`: above this many open connections/tasks per process uvicorn answers 503 at once
      instead of queueing without bound; webhook senders and Ryng retry on 503.
    - `backlog=2048`: pending TCP connections queued by the kernel.
    - `timeout_graceful_shutdown=10`: on SIGTERM, in-flight requests get 10 s, then are cancelled, so a
      slow client cannot stall a deploy. (A lead is durable once it was accepted; see DESIGN.md.)
    - `ws="none"`: the router serves no websockets.

    A slowly sent *body* is the application's to bound: `BodyLimitMiddleware(body_timeout=...)`.
    Behind a proxy, its header/body read timeouts (nginx `client_header_timeout` / `client_body_timeout`)
    do the same job one hop earlier.
    """
    if limit_concurrency < 1:
        raise ValueError("limit_concurrency must be >= 1")
    return {
        "http": slow_client_protocol(header_timeout=header_timeout, max_per_client=max_per_client),
        "h11_max_incomplete_event_size": 16_384,
        "timeout_keep_alive": 5,
        "limit_concurrency": limit_concurrency,
        "backlog": 2048,
        "timeout_graceful_shutdown": 10,
        "ws": "none",
    }
