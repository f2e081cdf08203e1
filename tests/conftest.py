"""Shared fixtures: a real Redis-compatible server (local, or embedded Valkey), and router stacks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.harness import Stack, embedded_redis, redis_answers

LOCAL_REDIS = "redis://127.0.0.1:6379"


@contextmanager
def _claim_database(base_url: str) -> Iterator[str]:
    """Claim one of databases 1-15 for this test session (a lock key in db 0), so runs side by side never meet."""
    admin = redis.Redis.from_url(f"{base_url}/0")
    token = f"{os.getpid()}-{uuid.uuid4().hex}"
    try:
        for db in range(15, 0, -1):
            lock = f"lead-router:test-db:{db}"
            if admin.set(lock, token, nx=True, ex=3 * 3600):
                try:
                    yield f"{base_url}/{db}"
                finally:
                    if admin.get(lock) == token.encode():
                        admin.delete(lock)
                return
        raise RuntimeError(f"no free test database on {base_url} (locks lead-router:test-db:* in db 0)")
    finally:
        admin.close()


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """A Redis database of this session's own: local (never db 0), or an embedded Valkey's db 1.

    `LEAD_ROUTER_TEST_REDIS_URL` names another server; `LEAD_ROUTER_TEST_EMBEDDED=1` forces the embedded one
    (as on a machine with no Redis).
    """
    configured = os.environ.get("LEAD_ROUTER_TEST_REDIS_URL")
    force_embedded = os.environ.get("LEAD_ROUTER_TEST_EMBEDDED") == "1"
    if configured or (not force_embedded and redis_answers(LOCAL_REDIS)):
        with _claim_database((configured or LOCAL_REDIS).rstrip("/")) as url:
            yield url
    else:
        with embedded_redis() as server:
            yield f"redis://127.0.0.1:{server.port}/1"


@pytest.fixture
def redis_url(redis_server_url: str) -> Iterator[str]:
    """A clean database for one test."""
    url = redis_server_url
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(url=redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def key_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


FAST_SETTINGS = {
    "ROUTER_AGENTS": "alice,bob",
    "RYNG_RATE_LIMIT_PER_MIN": "6000",
    "ROUTER_BACKOFF_BASE_SECONDS": "0.2",
    "ROUTER_BACKOFF_MAX_SECONDS": "1.0",
    "ROUTER_PUMP_INTERVAL_SECONDS": "0.1",
    "ROUTER_PAUSE_PROBE_SECONDS": "1",
    "ROUTER_LEASE_SECONDS": "8",
    "SANDBOX_TOKEN": "sandbox-token",
    "ROUTER_READ_TOKEN": "test-read-token",
}


@pytest.fixture
def make_stack(redis_url: str, tmp_path: Path, key_prefix: str) -> Iterator[Callable[..., Stack]]:
    """Build a router deployment; every process it started is stopped after the test (logs shown on failure)."""
    stacks: list[Stack] = []

    def build(**settings: str) -> Stack:
        merged = FAST_SETTINGS | {"ROUTER_KEY_PREFIX": key_prefix} | settings
        stack = Stack(redis_url=redis_url, tmp=tmp_path, settings=dict(merged))
        stacks.append(stack)
        return stack

    yield build
    for stack in stacks:
        stack.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        stack_factory = item.funcargs.get("make_stack") if hasattr(item, "funcargs") else None
        if stack_factory is not None:
            closure = getattr(stack_factory, "__closure__", None) or ()
            for cell in closure:
                if isinstance(cell.cell_contents, list):
                    for stack in cell.cell_contents:
                        if isinstance(stack, Stack):
                            report.sections.append(("process logs", stack.logs()))
