"""Body limit middleware (ASGI, in process and behind a real uvicorn) and the uvicorn limits."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from router.api.limits import BodyLimitMiddleware, uvicorn_limits
from tests.harness import uvicorn_in_thread

LIMIT = 1024
TOO_LARGE = {"detail": f"request body exceeds {LIMIT} bytes"}


class Seen:
    """What the application behind the middleware actually received."""

    def __init__(self) -> None:
        self.calls = 0
        self.bytes = 0


class Lead(BaseModel):
    note: str


def fastapi_app(seen: Seen, *, paths_prefix: str = "/") -> FastAPI:
    app = FastAPI()

    @app.post("/v1/raw")
    async def raw(request: Request) -> dict[str, int]:
        seen.calls += 1
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            seen.bytes = size
        return {"size": size}

    @app.post("/v1/model")
    async def model(lead: Lead) -> dict[str, int]:
        seen.calls += 1
        return {"size": len(lead.note)}

    @app.post("/outside")
    async def outside(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    app.add_middleware(BodyLimitMiddleware, max_body_bytes=LIMIT, paths_prefix=paths_prefix)
    return app


def starlette_app(seen: Seen) -> Starlette:
    async def body(request: Request) -> JSONResponse:
        seen.calls += 1
        data = await request.body()  # raises ClientDisconnect once the middleware cuts the body off
        return JSONResponse({"size": len(data)})

    app = Starlette(routes=[Route("/v1/raw", body, methods=["POST"])])
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=LIMIT)
    return app


async def _post(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post(path, **kwargs)


def post(app: Any, path: str, **kwargs: Any) -> httpx.Response:
    return asyncio.run(_post(app, path, **kwargs))


def chunks(size: int, total: int | None) -> AsyncIterator[bytes]:
    """`total` bytes in `size`-byte chunks; forever when total is None (a client that never stops)."""

    async def gen() -> AsyncIterator[bytes]:
        sent = 0
        while total is None or sent < total:
            piece = b"x" * (size if total is None else min(size, total - sent))
            sent += len(piece)
            yield piece

    return gen()


# --- in process --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "status"), [(0, 200), (LIMIT - 1, 200), (LIMIT, 200), (LIMIT + 1, 413)])
def test_content_length_under_at_and_over_the_limit(size: int, status: int) -> None:
    seen = Seen()
    response = post(fastapi_app(seen), "/v1/raw", content=b"a" * size)
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"size": size}
    else:
        assert response.json() == TOO_LARGE
        assert response.headers["content-type"] == "application/json"
        assert response.headers["connection"] == "close"
        assert seen.calls == 0  # refused on the header alone


def test_huge_declared_length_is_413_not_an_error() -> None:
    response = asyncio.run(call_asgi(headers=[(b"content-length", b"9" * 5000)], body=b""))
    assert response[0]["status"] == 413


@pytest.mark.parametrize(("chunk", "total"), [(100, LIMIT), (LIMIT, LIMIT), (7, 900)])
def test_streamed_body_within_the_limit_passes(chunk: int, total: int) -> None:
    seen = Seen()
    response = post(fastapi_app(seen), "/v1/raw", content=chunks(chunk, total))
    assert response.status_code == 200
    assert response.json() == {"size": total}


@pytest.mark.parametrize("path", ["/v1/raw", "/v1/model"])
@pytest.mark.parametrize("total", [LIMIT + 1, 50 * LIMIT, None])
def test_streamed_body_over_the_limit_is_413_in_fastapi(path: str, total: int | None) -> None:
    seen = Seen()
    response = post(fastapi_app(seen), path, content=chunks(100, total), timeout=5)
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert seen.bytes <= LIMIT  # the application never saw the chunk that crossed the limit


@pytest.mark.parametrize("total", [LIMIT + 1, None])
def test_streamed_overflow_in_plain_starlette_is_413_not_500(total: int | None) -> None:
    seen = Seen()
    response = post(starlette_app(seen), "/v1/raw", content=chunks(300, total))
    assert response.status_code == 413
    assert response.json() == TOO_LARGE
    assert seen.calls == 1


def test_limit_applies_only_under_paths_prefix() -> None:
    app = fastapi_app(Seen(), paths_prefix="/v1/")
    assert post(app, "/outside", content=b"z" * (LIMIT * 4)).json() == {"size": LIMIT * 4}
    assert post(app, "/v1/raw", content=b"z" * (LIMIT * 4)).status_code == 413


# --- raw ASGI ----------------------------------------------------------------------------------------


async def call_asgi(
    *, headers: list[tuple[bytes, bytes]], body: bytes, inner: Any = None, chunk: int = 256
) -> list[dict[str, Any]]:
    """Drive the middleware directly; returns the messages sent to the server."""
    pending = [body[i:i + chunk] for i in range(0, len(body), chunk)] or [b""]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            piece = pending.pop(0)
            return {"type": "http.request", "body": piece, "more_body": bool(pending)}
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        # Ignores a disconnect and answers 200 anyway: the middleware must still win with its 413.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})

    scope = {"type": "http", "method": "POST", "path": "/v1/raw", "headers": headers}
    await BodyLimitMiddleware(inner or echo, max_body_bytes=LIMIT)(scope, receive, send)
    return sent


@pytest.mark.parametrize(
    "value", [b"abc", b"-1", b"+5", b"1.5", b"", b"0x10", b"10, 20", b"1 0", "٣".encode()]
)
def test_malformed_content_length_is_400(value: bytes) -> None:
    sent = asyncio.run(call_asgi(headers=[(b"content-length", value)], body=b"x"))
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"]) == {"detail": "malformed Content-Length header"}
    assert len(sent) == 2


def test_conflicting_repeated_content_length_is_400_identical_is_accepted() -> None:
    conflicting = [(b"content-length", b"3"), (b"content-length", b"4")]
    assert asyncio.run(call_asgi(headers=conflicting, body=b"abc"))[0]["status"] == 400
    identical = [(b"content-length", b"3"), (b"Content-Length", b"003, 3")]
    assert asyncio.run(call_asgi(headers=identical, body=b"abc"))[0]["status"] == 200


def test_overflow_wins_over_an_app_that_ignores_the_disconnect() -> None:
    sent = asyncio.run(call_asgi(headers=[], body=b"y" * (LIMIT + 10)))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"]) == TOO_LARGE


def test_body_within_limit_reaches_the_app_unchanged() -> None:
    sent = asyncio.run(call_asgi(headers=[], body=b"y" * LIMIT))
    assert sent[0]["status"] == 200 and sent[1]["body"] == str(LIMIT).encode()


def test_app_errors_are_not_swallowed_without_an_overflow() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(call_asgi(headers=[], body=b"small", inner=broken))


def test_non_http_scopes_pass_through() -> None:
    calls: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        calls.append(scope["type"])

    async def nothing() -> dict[str, Any]:
        return {}

    async def ignore(message: Any) -> None:
        return None

    asyncio.run(BodyLimitMiddleware(inner, max_body_bytes=0)({"type": "lifespan"}, nothing, ignore))
    assert calls == ["lifespan"]


# --- uvicorn -----------------------------------------------------------------------------------------


def test_uvicorn_limits_are_accepted_by_uvicorn_config() -> None:
    limits = uvicorn_limits()
    assert limits["timeout_keep_alive"] == 5 and limits["h11_max_incomplete_event_size"] == 16_384
    config = uvicorn.Config(fastapi_app(Seen()), log_config=None, **limits)  # type: ignore[arg-type]
    assert config.timeout_keep_alive == 5
    assert config.limit_concurrency == 256
    assert config.h11_max_incomplete_event_size == 16_384
    assert uvicorn_limits(limit_concurrency=10)["limit_concurrency"] == 10
    with pytest.raises(ValueError):
        uvicorn_limits(limit_concurrency=0)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    with uvicorn_in_thread(fastapi_app(Seen()), **uvicorn_limits()) as address:
        yield address


def exchange(address: tuple[str, int], payload: bytes) -> tuple[int, bytes]:
    """Send `payload` (possibly an unfinished request) and read the reply until the server closes."""
    with socket.create_connection(address, timeout=5) as conn:
        conn.sendall(payload)
        reply = b""
        while piece := conn.recv(65536):
            reply += piece
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_real_server_answers_413_on_declared_length_without_waiting_for_the_body(
    server: tuple[str, int],
) -> None:
    request = b"POST /v1/raw HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n"
    assert exchange(server, request) == (413, json.dumps(TOO_LARGE).encode())


def test_real_server_answers_413_mid_stream_and_closes(server: tuple[str, int]) -> None:
    # A chunked body that crosses the limit and never finishes: the answer must come anyway.
    chunk = b"x" * (LIMIT + 1)
    request = (
        b"POST /v1/raw HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    )
    assert exchange(server, request) == (413, json.dumps(TOO_LARGE).encode())


def test_real_server_accepts_a_body_at_the_limit(server: tuple[str, int]) -> None:
    with httpx.Client(base_url=f"http://{server[0]}:{server[1]}") as client:
        assert client.post("/v1/raw", content=b"q" * LIMIT).json() == {"size": LIMIT}


def test_real_server_stops_buffering_an_unfinished_header_block(server: tuple[str, int]) -> None:
    head = b"POST /v1/raw HTTP/1.1\r\nHost: t\r\n"
    # 15 KiB of an unfinished head is held while the client goes on; one more KiB past 16 KiB is refused.
    with socket.create_connection(server, timeout=0.3) as conn:
        conn.sendall(head + b"X-Pad: " + b"p" * 15_000)
        with pytest.raises(TimeoutError):
            conn.recv(1)
    status, _ = exchange(server, head + b"X-Pad: " + b"p" * 20_000)
    assert status == 400


def test_a_client_that_hangs_up_mid_body_is_not_a_server_error() -> None:
    """Starlette raises ClientDisconnect when the client leaves mid-body: nothing to answer, nothing raised."""
    seen = Seen()
    app = starlette_app(seen)
    sent: list[dict[str, Any]] = []
    pieces = [{"type": "http.request", "body": b"{\"id\":", "more_body": True}, {"type": "http.disconnect"}]

    async def receive() -> dict[str, Any]:
        return pieces.pop(0) if pieces else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "POST", "path": "/v1/raw", "headers": [], "query_string": b""}
    asyncio.run(BodyLimitMiddleware(app, max_body_bytes=LIMIT)(scope, receive, send))
    assert seen.calls == 1 and sent == []


def test_an_application_error_still_raises_when_the_client_stayed() -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        asyncio.run(call_asgi(headers=[], body=b"x", inner=broken))
