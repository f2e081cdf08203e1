"""A uvicorn h11 protocol with a deadline for clients that send their request head slowly (slowloris).

uvicorn has no timeout of its own for a request head that arrives slowly. Its keep-alive timer only runs
between requests, and any byte received cancels it. So a client that opens a connection and sends one
header byte now and then holds a connection slot (and a place under `limit_concurrency`) for as long as
it likes. `SlowClientH11Protocol` fixes a deadline whenever the server is waiting on the client and no
application is reading:

- for a request head: `header_timeout` seconds from the moment the connection opens, or from the moment
  the previous response finished on a keep-alive connection. The deadline is fixed when the wait starts,
  so it does not move when more bytes arrive: trickling does not extend it;
- for the rest of a request body that the application answered without reading (a 404 or 405 to a POST,
  say): uvicorn reads and drops that body before it takes the next request, with no timeout. The same
  `header_timeout` applies, counted from the end of the response.

One client address may also hold at most `max_per_client` connections at once (default 64): a connection
past that gets a 503 `{"detail": "too many connections from your address"}` and is closed at once, so one
client trickling hundreds of connections cannot fill the server's `limit_concurrency` and starve everyone
else. Behind a reverse proxy every connection comes from the proxy: turn the cap off there (0) and let the
proxy limit its clients.

When the deadline passes, the connection is closed. If part of a request head had arrived, the client
first gets a 408 `{"detail": "request head not received in time"}`. An idle keep-alive connection is
closed without a reply: an unasked-for 408 could be read as the answer to the client's next request.
Once the head is complete, the application has the request. From then on the body's time budget belongs
to `router.api.limits.BodyLimitMiddleware` (`body_timeout`).

Usage (what `router.api.limits.uvicorn_limits` does)::

    uvicorn.run(app, http=slow_client_protocol(header_timeout=10.0), ...)

uvicorn takes a protocol class as `http=` (`Config.http`). A class made for a timeout other than the
default cannot be pickled, so with `workers > 1`, which sends the config to spawned processes, only the
default timeout works.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DEFAULT_HEADER_TIMEOUT", "DEFAULT_MAX_PER_CLIENT", "SlowClientH11Protocol", "slow_client_protocol"]

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_PER_CLIENT = 64

_TIMEOUT_BODY = json.dumps({"detail": "request head not received in time"}).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _TIMEOUT_BODY
)
_BUSY_BODY = json.dumps({"detail": "too many connections from your address"}).encode()
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n\r\n" + _BUSY_BODY
)


class SlowClientH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline on whatever the server awaits with no application reading."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_per_client: int = DEFAULT_MAX_PER_CLIENT  # 0: no cap
    _deadline: asyncio.TimerHandle | None = None

    # The hooks below call the parent first. Then `_sync_deadline` reads h11's state to see what the
    # connection is waiting for.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self._over_client_cap():
            self.logger.info("Too many connections from %s: 503, closing.", self.client[0] if self.client else "?")
            transport.write(_BUSY_RESPONSE)
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            transport.close()
            return
        self._sync_deadline()

    def handle_events(self) -> None:
        super().handle_events()
        self._sync_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._sync_deadline()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._cancel_deadline()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _over_client_cap(self) -> bool:
        """True when this connection's address already holds `max_per_client` other open connections."""
        if not self.max_per_client or not self.client:
            return False
        host = self.client[0]
        held = 0
        for other in self.connections:
            client: tuple[str, int] | None = getattr(other, "client", None)
            held += client is not None and client[0] == host
        return held > self.max_per_client

    def _waiting_on_client(self) -> bool:
        """True while the client owes us something and no application is reading it."""
        if self.transport.is_closing():
            return False
        theirs, ours = self.conn.their_state, self.conn.our_state
        if theirs is h11.IDLE:
            return True  # a new request head
        return theirs is h11.SEND_BODY and ours is h11.DONE  # the unread rest of an answered request's body

    def _sync_deadline(self) -> None:
        if not self._waiting_on_client():
            self._cancel_deadline()
        elif self._deadline is None:
            self._deadline = self.loop.call_later(self.header_timeout, self._on_deadline)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _on_deadline(self) -> None:
        self._deadline = None
        if not self._waiting_on_client():
            return
        partial_head = self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])
        if partial_head and self.conn.our_state is h11.IDLE:
            self.logger.info("Request head from %s not received in time: 408, closing.", self.client)
            self.transport.write(_TIMEOUT_RESPONSE)
        else:
            self.logger.debug("Nothing from %s in time: closing the connection.", self.client)
        with contextlib.suppress(h11.LocalProtocolError):
            self.conn.send(h11.ConnectionClosed())
        self.transport.close()


def slow_client_protocol(
    *, header_timeout: float = DEFAULT_HEADER_TIMEOUT, max_per_client: int = DEFAULT_MAX_PER_CLIENT
) -> type[SlowClientH11Protocol]:
    """The protocol class to pass to uvicorn as `http=`, with `header_timeout` in seconds (> 0) and at most
    `max_per_client` open connections per client address (0: no cap)."""
    if not header_timeout > 0:
        raise ValueError("header_timeout must be > 0")
    if max_per_client < 0:
        raise ValueError("max_per_client must be >= 0")
    if header_timeout == DEFAULT_HEADER_TIMEOUT and max_per_client == DEFAULT_MAX_PER_CLIENT:
        return SlowClientH11Protocol  # a module-level class: picklable, so `workers > 1` works

    class BoundSlowClientH11Protocol(SlowClientH11Protocol):
        pass

    BoundSlowClientH11Protocol.header_timeout = float(header_timeout)
    BoundSlowClientH11Protocol.max_per_client = int(max_per_client)
    return BoundSlowClientH11Protocol
