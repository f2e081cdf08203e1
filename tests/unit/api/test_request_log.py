"""Request log lines: the callback secret is masked however the path spells it; the status says what happened."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
import structlog

from router.api.request_log import RequestLogMiddleware, mask_path

SECRET = "s3cr3t-Callback_Segment"


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/ryng/{SECRET}/connect",
        f"//v1/ryng/{SECRET}/terminal",
        f"/v1//ryng//{SECRET}/connect",
        f"/V1/RYNG/{SECRET}",
        f"/v1/ryng/{SECRET}",
        f"/anything/{SECRET}/else",
        f"/v1/leads/{SECRET}",
        f"/v1/ryng/x{SECRET}y/connect",
    ],
)
def test_the_secret_never_survives(path: str) -> None:
    masked = mask_path(path, [SECRET])
    assert SECRET not in masked
    assert "***" in masked


def test_the_segment_after_ryng_is_masked_even_without_a_configured_secret() -> None:
    assert mask_path("//v1/ryng/unknown-secret/connect") == "//v1/ryng/***/connect"
    assert mask_path("/v1/Ryng/other") == "/v1/Ryng/***"


def test_other_paths_are_kept() -> None:
    assert mask_path("/v1/leads/XT243", [SECRET]) == "/v1/leads/XT243"
    assert mask_path("/healthz", ["", SECRET]) == "/healthz"


def _logged_status(app: Any) -> Any:
    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/v1/leads", "headers": []}
    with structlog.testing.capture_logs() as logs, contextlib.suppress(RuntimeError):
        asyncio.run(RequestLogMiddleware(app)(scope, receive, send))
    return next(entry["status"] for entry in logs if entry["event"] == "http_request")


def test_the_request_line_says_499_when_the_client_left_and_500_on_an_error() -> None:
    async def left(scope: Any, receive: Any, send: Any) -> None:
        await receive()

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("a bug")

    async def answered(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 202, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    assert _logged_status(left) == 499
    assert _logged_status(broken) == 500
    assert _logged_status(answered) == 202
