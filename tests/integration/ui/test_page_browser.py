"""The routing page in headless Chromium over the real stack (API, worker, sandbox): it shows the agents and the
next agent, follows a lead routed over HTTP without a reload, and pauses an agent from its button.

Needs Debian's `chromium` (`apt-get install chromium`; `.ci/run` installs it); without it the test is skipped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.harness import Stack
from workers.fetch.waits import FetchWaits
from workers.store.connections import connect
from workers.store.keys import Keys
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = os.environ.get("LEAD_ROUTER_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
ADMIN_TOKEN = "browser-admin-token"
AGENTS = "alice:10,bob:20,carol:30,dave:40,erin:50"
ROUTING = """
default_pool = "sales"

[[agents]]
name = "alice"
id = 10
[[agents]]
name = "bob"
id = 20
[[agents]]
name = "carol"
id = 30
[[agents]]
name = "dave"
id = 40
schedule = { timezone = "UTC", days = [] }   # never on shift
[[agents]]
name = "erin"
id = 50
capacity = 1

[[pools]]
name = "sales"
members = ["alice", "bob", "carol"]

[[pools]]
name = "vip"
members = ["dave", "erin"]
strategy = "least_busy"
"""

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium found (apt-get install chromium, or set LEAD_ROUTER_CHROMIUM)"
)


def _state(page: Page, agent: str) -> str:
    return str(page.get_attribute(f"tr[data-agent={agent}]", "data-state"))


def _sign_in(page: Page, stack: Stack) -> None:
    page.goto(f"{stack.api_url}/")
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")


def test_the_page_follows_routing_live_and_pauses_an_agent(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    routing_file = tmp_path / "routing.toml"
    routing_file.write_text(ROUTING, encoding="utf-8")
    stack = make_stack(ROUTER_ROUTING_FILE=str(routing_file), ROUTER_ADMIN_TOKEN=ADMIN_TOKEN)
    stack.start_sandbox("--agents", AGENTS, "--rate-limit", "6000")
    stack.start_api()
    stack.start_worker(concurrency=1)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 980})
            _sign_in(page, stack)
            page.wait_for_selector("tr[data-agent=alice]")
            page.evaluate("window.__loadedOnce = true")  # gone if the page reloads

            names = page.eval_on_selector_all("#agents tbody tr", "rows => rows.map(r => r.dataset.agent)")
            assert names == ["alice", "bob", "carol", "dave", "erin"]
            assert _state(page, "dave") == "off_shift" and _state(page, "alice") == "available"
            assert page.get_attribute("[data-pool=sales]", "data-next") == "alice"
            assert page.get_attribute("[data-pool=vip]", "data-next") == "erin"
            assert page.is_hidden("#paused-banner")
            assert page.text_content("tr[data-agent=alice] .picks-today") == "0"

            # A lead routed over HTTP: the page moves on by itself.
            assert stack.post_lead({"id": "UI-1", "number": "998300001"}).status_code == 202
            stack.wait_status("UI-1", "posted", "connected", "completed")
            page.wait_for_selector("[data-pool=sales][data-next=bob]", timeout=15_000)
            page.wait_for_selector("tr[data-lead=UI-1]", timeout=15_000)
            assert page.text_content("tr[data-agent=alice] .picks-today") == "1"
            assert "alice" in (page.text_content("tr[data-lead=UI-1]") or "")

            # Pause bob from his button: his state changes, and the next lead would go to carol.
            page.click("tr[data-agent=bob] button[data-action=pause]")
            page.wait_for_selector("tr[data-agent=bob][data-state=paused]", timeout=15_000)
            page.wait_for_selector("[data-pool=sales][data-next=carol]", timeout=15_000)
            agents = stack.client.get(f"{stack.api_url}/v1/admin/agents",
                                      headers={"authorization": f"Bearer {ADMIN_TOKEN}"}).json()["agents"]
            assert {agent["name"]: agent["paused"] for agent in agents}["bob"] is True
            assert page.evaluate("window.__loadedOnce") is True

            # Delivery paused (as after a Ryng 403): the banner shows, and goes when delivery resumes.
            pause = DeliveryPause(connect(stack.redis_url), keys=Keys(stack.settings["ROUTER_KEY_PREFIX"]),
                                  probe_seconds=60)
            pause.pause(reason="Ryng answered 403: invalid token")
            page.wait_for_selector("#paused-banner:not([hidden])", timeout=15_000)
            assert "invalid token" in (page.text_content("#paused-banner") or "")

            shot = tmp_path / "routing-page.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            print(f"screenshot: {shot}")

            page.click("tr[data-agent=bob] button[data-action=resume]")
            page.wait_for_selector("tr[data-agent=bob][data-state=available]", timeout=15_000)
            pause.resume()
            page.wait_for_selector("#paused-banner[hidden]", state="attached", timeout=15_000)
        finally:
            browser.close()


def test_the_page_counts_leads_waiting_for_their_crm_record(make_stack: Callable[..., Stack]) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    stack = make_stack(ROUTER_ADMIN_TOKEN=ADMIN_TOKEN)
    stack.start_api()  # no worker: nothing reads the records meanwhile
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            _sign_in(page, stack)
            page.wait_for_selector("#fetching[data-count='0']")
            assert page.text_content("#fetching") == "No lead is waiting for its CRM record."

            client = connect(stack.redis_url)
            keys = Keys(stack.settings["ROUTER_KEY_PREFIX"])
            waits = FetchWaits(client, keys=keys, store=LeadStore(client, keys=keys))
            for lead_id in ("UI-F1", "UI-F2"):
                waits.accept(lead_id=lead_id, crm_id=f"crm-{lead_id}", source="hubspot")
            waits.retry_later("UI-F1", attempts=1, error="CRM answered 503", delay_seconds=3600)
            page.wait_for_selector("#fetching[data-count='2']", timeout=15_000)
            assert page.text_content("#fetching") == "2 waiting for their CRM record · next read now"
            waits.retry_later("UI-F2", attempts=1, error="CRM answered 503", delay_seconds=3600)
            page.wait_for_function(
                "document.getElementById('fetching').textContent.endsWith('next read in 60 min')", timeout=15_000)
            client.close()
        finally:
            browser.close()
