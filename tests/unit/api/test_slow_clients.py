"""Slow clients against a real uvicorn server: a trickled head is cut off, a trickled body gets 408."""

from __future__ import annotations

import json
import pickle
import socket
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from router.api.limits import BodyLimitMiddleware, uvicorn_limits
from router.api.slow_clients import DEFAULT_HEADER_TIMEOUT, SlowClientH11Protocol, slow_client_protocol
from tests.harness import uvicorn_in_thread

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0
SLACK = 1.0  # how late past a deadline the cut may come
Address = tuple[str, int]


def tiny_app() -> BodyLimitMiddleware:
    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"pong": True})

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"size": len(await request.body())})

    app = Starlette(routes=[Route("/ping", ping), Route("/echo", echo, methods=["POST"])])
    return BodyLimitMiddleware(app, max_body_bytes=65_536, body_timeout=BODY_TIMEOUT)


@pytest.fixture(scope="module")
def server() -> Iterator[Address]:
    with uvicorn_in_thread(tiny_app(), **uvicorn_limits(header_timeout=HEADER_TIMEOUT)) as address:
        yield address


def read_until_closed(conn: socket.socket, *, within: float) -> bytes:
    """All the server sends until it closes the connection; fails if it is still open after `within`."""
    conn.settimeout(within)
    reply = b""
    try:
        while piece := conn.recv(65536):
            reply += piece
    except TimeoutError:
        pytest.fail(f"connection still open after {within} s; got {reply!r}")
    except ConnectionResetError:
        pass
    return reply


def read_response(conn: socket.socket) -> tuple[int, bytes]:
    """One response with a Content-Length body, leaving the connection open."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        assert piece, f"closed mid-response: {data!r}"
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    while len(body) < length:
        piece = conn.recv(65536)
        assert piece, "closed mid-body"
        body += piece
    return int(head.split(b" ", 2)[1]), body


def status_of(reply: bytes) -> int:
    return int(reply.split(b" ", 2)[1])


# --- the protocol class and uvicorn_limits ---------------------------------------------------------------


def test_uvicorn_takes_the_protocol_class_with_the_timeout_bound() -> None:
    limits = uvicorn_limits(header_timeout=2.5)
    config = uvicorn.Config(tiny_app(), log_config=None, **limits)  # type: ignore[arg-type]
    config.load()
    protocol = config.http_protocol_class
    assert issubclass(protocol, SlowClientH11Protocol) and protocol.header_timeout == 2.5
    assert SlowClientH11Protocol.header_timeout == DEFAULT_HEADER_TIMEOUT  # the base class is left alone
    # The default is the module-level class, which can be pickled (uvicorn's `workers > 1` needs that).
    assert uvicorn_limits()["http"] is SlowClientH11Protocol
    assert pickle.loads(pickle.dumps(SlowClientH11Protocol)) is SlowClientH11Protocol


@pytest.mark.parametrize("bad", [0, -1.0])
def test_non_positive_timeouts_are_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        slow_client_protocol(header_timeout=bad)
    with pytest.raises(ValueError):
        BodyLimitMiddleware(tiny_app(), max_body_bytes=1, body_timeout=bad)


# --- headers ----------------------------------------------------------------------------------------


def test_partial_head_is_cut_off_while_other_clients_are_served(server: Address) -> None:
    with socket.create_connection(server) as slow:
        slow.sendall(b"GET /ping HTTP/1.1\r\nHo")
        started = time.monotonic()
        with httpx.Client(base_url=f"http://{server[0]}:{server[1]}") as client:
            assert client.get("/ping").json() == {"pong": True}
        assert time.monotonic() - started < HEADER_TIMEOUT / 2  # served at once, not after the slow one
        reply = read_until_closed(slow, within=HEADER_TIMEOUT + SLACK)
        waited = time.monotonic() - started
    assert HEADER_TIMEOUT * 0.8 <= waited <= HEADER_TIMEOUT + SLACK
    assert status_of(reply) == 408
    assert reply.endswith(json.dumps({"detail": "request head not received in time"}).encode())


def test_silent_connection_is_closed_without_a_reply(server: Address) -> None:
    with socket.create_connection(server) as idle:
        started = time.monotonic()
        reply = read_until_closed(idle, within=HEADER_TIMEOUT + SLACK)
        waited = time.monotonic() - started
    assert reply == b""
    assert HEADER_TIMEOUT * 0.8 <= waited <= HEADER_TIMEOUT + SLACK


def test_head_trickled_a_byte_at_a_time_is_cut_off(server: Address) -> None:
    # Every byte arrives well within any per-read timeout; only a deadline on the whole head stops this.
    head = b"GET /ping HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 100
    started = time.monotonic()
    reply = b""
    with socket.create_connection(server) as slow:
        slow.settimeout(0.5)
        for byte in head:
            try:
                slow.sendall(bytes([byte]))
                reply = slow.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            break  # the server answered or closed
        if reply:
            reply += read_until_closed(slow, within=SLACK)
    waited = time.monotonic() - started
    assert HEADER_TIMEOUT * 0.8 <= waited <= HEADER_TIMEOUT + SLACK
    assert status_of(reply) == 408


def test_keep_alive_client_with_short_pauses_is_unaffected(server: Address) -> None:
    # Three requests on one connection, 0.6 s apart: 1.8 s in all, longer than the header timeout,
    # but each head arrives within the timeout of the previous response.
    with socket.create_connection(server, timeout=5) as conn:
        for _ in range(3):
            conn.sendall(b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n")
            assert read_response(conn) == (200, b'{"pong":true}')
            time.sleep(0.6)
        conn.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc")
        assert read_response(conn) == (200, b'{"size":3}')


def test_unread_body_after_an_early_answer_cannot_hold_the_connection(server: Address) -> None:
    # GET-only route: 405 at once, the body is never read by the application. uvicorn then drains the
    # rest before the next request, with no timeout of its own; a trickled remainder is cut off.
    with socket.create_connection(server, timeout=5) as conn:
        conn.sendall(b"POST /ping HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nx")
        assert read_response(conn)[0] == 405
        started = time.monotonic()
        conn.settimeout(0.3)
        closed = False
        while time.monotonic() - started < HEADER_TIMEOUT + SLACK and not closed:
            try:
                conn.sendall(b"x")
                closed = conn.recv(1) == b""
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        waited = time.monotonic() - started
    assert closed
    assert HEADER_TIMEOUT * 0.8 <= waited <= HEADER_TIMEOUT + SLACK


# --- body -------------------------------------------------------------------------------------------


def test_body_slower_than_the_budget_gets_408_and_is_closed(server: Address) -> None:
    started = time.monotonic()
    reply = b""
    with socket.create_connection(server) as slow:
        slow.settimeout(0.3)
        slow.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(20):  # 10 bytes every 0.3 s: 30 s for the whole body
            try:
                slow.sendall(b"b" * 10)
                reply = slow.recv(65536)
                break
            except TimeoutError:
                continue
        reply += read_until_closed(slow, within=SLACK)
    waited = time.monotonic() - started
    assert status_of(reply) == 408
    assert reply.endswith(json.dumps({"detail": "request body not received in time"}).encode())
    assert BODY_TIMEOUT * 0.8 <= waited <= BODY_TIMEOUT + SLACK


def test_body_sent_in_pieces_within_the_budget_is_served(server: Address) -> None:
    with socket.create_connection(server, timeout=5) as conn:
        conn.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 30\r\n\r\n")
        for _ in range(3):
            time.sleep(0.2)
            conn.sendall(b"c" * 10)
        assert read_response(conn) == (200, b'{"size":30}')
