"""Fixtures for tests that talk to Redis through the router's own connection helper."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from workers.store.connections import connect
from workers.store.keys import Keys


@pytest.fixture
def client(redis_server_url: str) -> Iterator[redis.Redis]:
    connection = connect(redis_server_url)
    yield connection
    connection.close()


@pytest.fixture
def keys(client: redis.Redis) -> Iterator[Keys]:
    """A key prefix of this test's own, deleted afterwards."""
    prefix = Keys(f"test-{uuid.uuid4().hex[:12]}")
    yield prefix
    for key in client.scan_iter(prefix.match()):
        client.delete(key)
