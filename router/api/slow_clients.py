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

__all__ = ["DEFAULT_HEADER_TIMEOUT", "SlowClientH11Protocol", "slow_client_protocol"]

DEFAULT_HEADER_TIMEOUT = 10.0

_TIMEOUT_BODY = json.dumps({"detail": "request head not received in time"}).encode()
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: application/json\r\n"
    b"content-length: " + str(len(_TIMEOUT_BODY)).encode() + b"\r\n"
    b"connection: close\r\n\r\n" + _TIMEOUT_BODY
)


class SlowClientH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus a deadline on whatever the server awaits with no application reading."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    _deadline: asyncio.TimerHandle | None = None

    # The hooks below call the parent first. Then `_sync_deadline` reads h11's state to see what the
    # connection is waiting for.

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
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


def slow_client_protocol(*, header_timeout: float = DEFAULT_HEADER_TIMEOUT) -> type[SlowClientH11Protocol]:
    """The protocol class to pass to uvicorn as `http=`, with `header_timeout` in seconds (> 0)."""
    if not header_timeout > 0:
        raise ValueError("header_timeout must be > 0")
    if header_timeout == DEFAULT_HEADER_TIMEOUT:
        return SlowClientH11Protocol  # a module-level class: picklable, so `workers > 1` works

    class BoundSlowClientH11Protocol(SlowClientH11Protocol):
        pass

    BoundSlowClientH11Protocol.header_timeout = float(header_timeout)
    return BoundSlowClientH11Protocol
