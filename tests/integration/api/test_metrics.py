"""`/metrics` scraped from a running stack (API over HTTP, a real worker, the sandbox), parsed as Prometheus does."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import redis
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from router.api.metrics import AGENT_STATES, FAMILIES, leads_by_status
from tests.harness import ROOT, Stack, free_port, wait_until
from workers.clock import now_ms
from workers.store.keys import Keys
from workers.store.lead_record import Status
from workers.store.records import LeadStore

DASHBOARD = ROOT / "deploy" / "grafana" / "lead-router.json"


def scrape(stack: Stack) -> dict[str, Metric]:
    response = httpx.get(f"{stack.api_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def values(family: Metric, sample_name: str, **labels: str) -> list[float]:
    return [s.value for s in family.samples
            if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())]


def by_label(family: Metric, sample_name: str, label: str) -> dict[str, float]:
    return {s.labels[label]: s.value for s in family.samples if s.name == sample_name}


def test_metrics_after_routing_leads_count_what_happened(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_sandbox("--call-delay", "0.2", "--callback-retry", "0.2")
    stack.start_api()
    stack.start_worker()
    ids = [f"M{n}" for n in range(5)]
    for lead_id in ids:
        assert stack.post_lead({"id": lead_id, "number": "998314242"}).status_code == 202
    for lead_id in ids:
        stack.wait_status(lead_id, "completed", timeout=40)

    def settled() -> dict[str, Metric] | None:  # the terminal callbacks have all been counted
        families = scrape(stack)
        applied = values(families["lead_router_callbacks"], "lead_router_callbacks_total", kind="terminal",
                         result="applied")
        return families if applied == [len(ids)] else None

    families = wait_until(settled, timeout=20, what="every terminal callback counted")
    for name, kind in FAMILIES.items():
        assert name in families, name
        assert families[name].type == kind, name

    picks = by_label(families["lead_router_agent_picks"], "lead_router_agent_picks_total", "agent")
    assert set(picks) == {"alice", "bob"}
    assert sum(picks.values()) == len(ids)
    assert picks == {"alice": 3, "bob": 2}  # the round robin, from alice
    open_leads = by_label(families["lead_router_agent_open_leads"], "lead_router_agent_open_leads", "agent")
    assert open_leads == {"alice": 0, "bob": 0}  # every call ended: capacity freed
    states = [s for s in families["lead_router_agent_state"].samples if s.value == 1]
    assert sorted((s.labels["agent"], s.labels["state"]) for s in states) == [("alice", "available"),
                                                                               ("bob", "available")]
    assert {s.labels["state"] for s in families["lead_router_agent_state"].samples} == set(AGENT_STATES)

    ryng = families["lead_router_ryng_request_duration_seconds"]
    assert values(ryng, "lead_router_ryng_request_duration_seconds_count", outcome="accepted") == [len(ids)]
    assert values(ryng, "lead_router_ryng_request_duration_seconds_bucket", outcome="accepted", le="+Inf") == [
        len(ids)]
    assert values(ryng, "lead_router_ryng_request_duration_seconds_sum", outcome="accepted")[0] > 0
    posted = families["lead_router_webhook_to_posted_seconds"]
    assert values(posted, "lead_router_webhook_to_posted_seconds_count") == [len(ids)]
    buckets = [s.value for s in posted.samples if s.name.endswith("_bucket")]
    assert buckets == sorted(buckets) and buckets[-1] == len(ids)  # cumulative
    assert values(posted, "lead_router_webhook_to_posted_seconds_sum")[0] > 0

    statuses = by_label(families["lead_router_leads_by_status"], "lead_router_leads_by_status", "status")
    assert statuses["completed"] == len(ids) and statuses["dead"] == 0
    callbacks = by_label(families["lead_router_callbacks"], "lead_router_callbacks_total", "kind")
    assert set(callbacks) <= {"connect", "terminal"}
    assert values(families["lead_router_callbacks"], "lead_router_callbacks_total", kind="connect",
                  result="applied") == [2 * len(ids)]  # agent-connected and customer-connected
    assert values(families["lead_router_queue_depth"], "lead_router_queue_depth", queue="leads") == [0]
    assert values(families["lead_router_limiter_requests_in_window"],
                  "lead_router_limiter_requests_in_window") == [len(ids)]
    assert values(families["lead_router_limiter_limit"], "lead_router_limiter_limit") == [6000]
    events = by_label(families["lead_router_events"], "lead_router_events_total", "kind")
    assert events["posted"] == len(ids)
    assert not any(lead_id in httpx.get(f"{stack.api_url}/metrics", timeout=10).text for lead_id in ids)


def test_the_limiter_counts_its_waits_and_the_queue_its_depth(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(RYNG_RATE_LIMIT_PER_MIN="2")
    stack.start_sandbox("--no-calls")
    stack.start_api()
    for n in range(4):
        assert stack.post_lead({"id": f"Q{n}", "number": "998314242"}).status_code == 202
    families = scrape(stack)  # no worker yet: every task waits in the queue
    assert values(families["lead_router_queue_depth"], "lead_router_queue_depth", queue="leads") == [4]
    assert by_label(families["lead_router_leads_by_status"], "lead_router_leads_by_status", "status")["queued"] == 4
    stack.start_worker()

    def waited() -> dict[str, Metric] | None:  # two posted (the limit), the other two waiting for the next minute
        families = scrape(stack)
        waits = values(families["lead_router_limiter_waits"], "lead_router_limiter_waits_total")
        statuses = by_label(families["lead_router_leads_by_status"], "lead_router_leads_by_status", "status")
        return families if waits and waits[0] >= 2 and statuses["waiting"] == 2 else None

    families = wait_until(waited, timeout=30, what="the limiter's waits counted")
    statuses = by_label(families["lead_router_leads_by_status"], "lead_router_leads_by_status", "status")
    assert statuses["posted"] == 2 and statuses["waiting"] == 2
    assert values(families["lead_router_limiter_requests_in_window"],
                  "lead_router_limiter_requests_in_window") == [2]


def _exprs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["expr"]] if isinstance(node.get("expr"), str) else []
        return found + [expr for value in node.values() for expr in _exprs(value)]
    if isinstance(node, list):
        return [expr for value in node for expr in _exprs(value)]
    return []


def exposed_names() -> set[str]:
    """Every sample name /metrics can expose, from the families and their types."""
    suffixes = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
    return {name + suffix for name, kind in FAMILIES.items() for suffix in suffixes[kind]}


def test_the_grafana_dashboard_queries_only_families_metrics_exposes() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["title"] and dashboard["panels"] and dashboard.get("uid")
    exprs = _exprs(dashboard["panels"])
    assert len(exprs) >= 10
    exposed = exposed_names()
    used: set[str] = set()
    for expr in exprs:
        names = set(re.findall(r"\blead_router_[a-z_]+", expr))
        assert names, expr
        assert names <= exposed, (expr, names - exposed)
        used |= names
    families = {name for name in FAMILIES if any(u.startswith(name) for u in used)}
    assert families == set(FAMILIES), set(FAMILIES) - families  # every family has a panel


def test_an_idle_router_declares_every_family_with_its_type(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_api()
    text = httpx.get(f"{stack.api_url}/metrics", timeout=10).text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {name: family.type for name, family in families.items()} == FAMILIES
    assert {s.name for family in families.values() for s in family.samples} <= exposed_names()
    assert values(families["lead_router_delivery_paused"], "lead_router_delivery_paused") == [0]


def test_leads_by_status_counts_every_open_lead_and_the_finished_ones_of_a_day(client: redis.Redis, keys: Keys) -> None:
    store = LeadStore(client, keys=keys)
    for lead_id in ("L1", "L2", "L3", "L4"):
        store.accept(lead_id=lead_id, payload={"id": lead_id, "number": "998314242"}, source="api")
    store.transition("L1", Status.POSTED, allowed=frozenset(Status))
    store.transition("L2", Status.COMPLETED, allowed=frozenset(Status))
    store.transition("L4", Status.WAITING, allowed=frozenset(Status))
    now = now_ms()
    two_days_ago = now - 2 * 86_400_000
    client.zadd(keys.created, {"L2": two_days_ago, "L3": two_days_ago})  # accepted long ago
    counts = leads_by_status(client, keys, now_ms=now)
    assert counts == {status: 0 for status in Status} | {"accepted": 1, "waiting": 1, "posted": 1}


def test_metrics_without_redis_is_a_503_that_says_so(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    stack.start_api()
    answer = httpx.get(f"{stack.api_url}/metrics", timeout=20)
    assert answer.status_code == 503 and "Redis is unreachable" in answer.text
