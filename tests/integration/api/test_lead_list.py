"""`GET /v1/leads`: filters, cursor paging and the read credential, over HTTP against a running stack."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.harness import Stack

IDS = [f"LL{n}" for n in range(7)]
NUMBER = "998314242"


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    stack = make_stack()
    stack.start_sandbox("--no-calls")
    stack.start_api()
    stack.start_worker()
    for lead_id in IDS:
        assert stack.post_lead({"id": lead_id, "number": NUMBER, "name": "Philip"}).status_code == 202
    for lead_id in IDS:
        stack.wait_status(lead_id, "posted")
    return stack


def listing(stack: Stack, **params: Any) -> httpx.Response:
    return stack.client.get(f"{stack.api_url}/v1/leads", params=params)


def all_pages(stack: Stack, **params: Any) -> tuple[list[dict[str, Any]], int]:
    leads: list[dict[str, Any]] = []
    pages, cursor = 0, None
    while True:
        answer = listing(stack, **params, **({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        leads += body["leads"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return leads, pages


def test_pages_walk_every_lead_newest_first_once(stack: Stack) -> None:
    first = listing(stack, limit=3).json()
    assert [lead["id"] for lead in first["leads"]] == IDS[::-1][:3] and first["next_cursor"]
    leads, pages = all_pages(stack, limit=3)
    assert [lead["id"] for lead in leads] == IDS[::-1] and pages == 3
    assert {lead["status"] for lead in leads} == {"posted"}
    assert all(lead["agent"] in ("alice", "bob") and lead["pool"] == "default" and lead["attempts"] == 1
               for lead in leads)
    text = listing(stack).text
    assert NUMBER not in text and "Philip" not in text  # the list carries no customer data
    stack.post_lead({"id": "LL-late", "number": NUMBER})  # a lead accepted while paging stays out of the old pages
    rest = listing(stack, limit=3, cursor=first["next_cursor"]).json()
    assert [lead["id"] for lead in rest["leads"]] == IDS[::-1][3:6]


def test_filters_by_status_agent_pool_and_time(stack: Stack) -> None:
    everyone, _ = all_pages(stack)
    for agent in ("alice", "bob"):
        leads, _ = all_pages(stack, agent=agent, limit=2)
        assert leads == [lead for lead in everyone if lead["agent"] == agent]
        assert leads
    assert len(all_pages(stack, status="posted,completed", pool="default")[0]) == len(IDS)
    assert listing(stack, status="dead").json() == {"leads": [], "next_cursor": None}
    assert listing(stack, pool="elsewhere").json()["leads"] == []
    assert listing(stack, agent="carol").json()["leads"] == []
    created = stack.lead("LL4")["created_at"]
    later = listing(stack, since=created).json()["leads"]
    assert [lead["id"] for lead in later] == [lead["id"] for lead in everyone if lead["created_at"] >= created]
    assert "LL4" in {lead["id"] for lead in later}
    future = datetime.fromtimestamp(time.time() + 3600, tz=UTC).isoformat()
    assert listing(stack, since=future).json()["leads"] == []
    offset = datetime.fromtimestamp(time.time() - 3600, tz=UTC).astimezone().isoformat()
    assert len(listing(stack, since=offset).json()["leads"]) == len(IDS)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"status": "lost"}, "status"),
        ({"status": "posted,nope"}, "nope"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-11-30T09:00:00"}, "offset"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # base64 of [1,2]: well-formed, not ours
    ],
)
def test_bad_filters_are_a_422_naming_the_parameter(make_stack: Callable[..., Stack], params: dict[str, str],
                                                    needle: str) -> None:
    stack = make_stack()
    stack.start_api()
    answer = listing(stack, **params)
    assert answer.status_code == 422, answer.text
    assert needle in answer.text


def test_listing_needs_the_read_credential(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_api()
    url = f"{stack.api_url}/v1/leads"
    assert httpx.get(url, timeout=10).status_code == 401
    assert httpx.get(url, headers={"authorization": "Bearer wrong"}, timeout=10).status_code == 401
    assert stack.client.get(url).status_code == 200
