"""The routing page over real HTTP: its credential, what a stranger sees, CSRF, the snapshot, offline docs."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from router.api.routes.ui import COOKIE
from tests.harness import Stack

ADMIN_TOKEN = "ui-admin-token-7f3a"


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    built = make_stack(ROUTER_ADMIN_TOKEN=ADMIN_TOKEN)
    built.start_api()
    return built


def _sign_in(client: httpx.Client) -> None:
    answer = client.post("/ui/login", data={"token": ADMIN_TOKEN})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/ui" in cookie
    assert ADMIN_TOKEN.lower() not in cookie  # the browser keeps a derived value, not the token


def test_a_stranger_sees_only_the_sign_in_form(stack: Stack) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=10.0) as anon:
        root = anon.get("/")
        assert root.status_code == 307 and root.headers["location"] == "/ui"
        page = anon.get("/ui")
        assert page.status_code == 401 and 'name="token"' in page.text
        assert "alice" not in page.text and "/ui/assets" not in page.text
        for path in ("/ui/snapshot", "/ui/assets/app.js"):
            answer = anon.get(path)
            assert answer.status_code == 401, path
            assert "alice" not in answer.text and "agents" not in answer.text
        assert anon.post("/ui/agents/alice/pause", headers={"x-lead-router": "ui"}).status_code == 401
        wrong = anon.post("/ui/login", data={"token": "nope"})
        assert wrong.status_code == 401 and COOKIE not in wrong.headers.get("set-cookie", "")
        forged = anon.get("/ui/snapshot", cookies={COOKIE: "0" * 64})
        assert forged.status_code == 401


def test_signed_in_the_page_and_snapshot_are_served_and_pause_needs_the_page_header(stack: Stack) -> None:
    stack.start_worker(concurrency=1)  # a worker registers the routing's agents in Redis
    with httpx.Client(base_url=stack.api_url, timeout=10.0) as client:
        _sign_in(client)
        page = client.get("/ui")
        assert page.status_code == 200 and "/ui/assets/app.js" in page.text
        assert client.get("/ui/assets/app.js").status_code == 200
        assert client.get("/ui/assets/other.js").status_code == 404
        snap = client.get("/ui/snapshot").json()
        assert [agent["name"] for agent in snap["agents"]] == ["alice", "bob"]
        assert snap["pools"][0]["next_agent"] == "alice"
        # No page header (a cross-site form), or another origin: refused, nothing changes.
        assert client.post("/ui/agents/alice/pause").status_code == 403
        foreign = client.post("/ui/agents/alice/pause", headers={"x-lead-router": "ui", "origin": "https://evil.test"})
        assert foreign.status_code == 403
        assert client.get("/ui/snapshot").json()["agents"][0]["state"] == "available"
        paused = client.post("/ui/agents/alice/pause", headers={"x-lead-router": "ui"})
        assert paused.status_code == 200 and paused.json()["paused"] is True
        snap = client.get("/ui/snapshot").json()
        assert snap["agents"][0]["state"] == "paused" and snap["pools"][0]["next_agent"] == "bob"
        assert client.post("/ui/agents/nobody/pause", headers={"x-lead-router": "ui"}).status_code == 404
        assert client.post("/ui/agents/alice/resume", headers={"x-lead-router": "ui"}).status_code == 200
        client.post("/ui/logout")
        assert client.get("/ui/snapshot").status_code == 401
    # The bearer token works too, for scripts.
    bearer = httpx.get(f"{stack.api_url}/ui/snapshot", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert bearer.status_code == 200


def test_the_api_docs_load_their_assets_from_this_server(stack: Stack) -> None:
    with httpx.Client(base_url=stack.api_url, timeout=10.0) as client:
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200, page
            urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html.text)
            urls += re.findall(r"""(?:url|swagger_js_url):\s*['"]([^'"]+)['"]""", html.text)
            assets = [url for url in urls if url.endswith((".js", ".css", ".png"))]
            assert assets, page
            for url in assets:
                assert url.startswith("/"), f"{page} loads {url} from elsewhere"
                assert client.get(url).status_code == 200, url
            assert not re.search(r"https?://", html.text.replace("http://127.0.0.1", "")), f"{page} names a host"
        assert client.get("/openapi.json").status_code == 200


def test_without_an_admin_token_the_page_is_off(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_api()
    with httpx.Client(base_url=stack.api_url, timeout=10.0) as client:
        page = client.get("/ui")
        assert page.status_code == 403 and "ROUTER_ADMIN_TOKEN" in page.text
        assert client.get("/ui/snapshot").status_code == 403
        assert client.post("/ui/login", data={"token": ""}).status_code == 403
