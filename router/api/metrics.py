"""What `/metrics` exposes: the router's state and the counters every process keeps in Redis.

Workers are other processes (other hosts, even): what they observe is in Redis (`workers/store/counters.py`,
`workers/store/histograms.py`), so any API instance renders the same figures. Label sets are bounded: agents and
pools of the routing, statuses, Ryng's outcomes, callback kinds and results — never a lead id.
The families are listed in the README ("Metrics").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import get_args

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from workers.clock import now_ms
from workers.operator.snapshot import AgentStateName, agent_state
from workers.routing import schedule
from workers.routing.agents import AgentState
from workers.services import Services
from workers.store import histograms
from workers.store.counters import plain
from workers.store.keys import Keys, broker_queue
from workers.store.lead_record import OPEN, Status

__all__ = ["AGENT_STATES", "FAMILIES", "RouterCollector"]

#: Every agent has exactly one of these states at a time (`lead_router_agent_state` is 1 for it).
AGENT_STATES: tuple[str, ...] = get_args(AgentStateName)

#: Metric family names as the text exposition writes them (a counter family `x` is exposed as `x_total`).
FAMILIES = {
    "lead_router_events": "counter",
    "lead_router_leads": "gauge",
    "lead_router_leads_by_status": "gauge",
    "lead_router_delivery_paused": "gauge",
    "lead_router_agent_picks": "counter",
    "lead_router_agent_open_leads": "gauge",
    "lead_router_agent_capacity": "gauge",
    "lead_router_agent_state": "gauge",
    "lead_router_ryng_request_duration_seconds": "histogram",
    "lead_router_webhook_to_posted_seconds": "histogram",
    "lead_router_limiter_waits": "counter",
    "lead_router_limiter_requests_in_window": "gauge",
    "lead_router_limiter_limit": "gauge",
    "lead_router_queue_depth": "gauge",
    "lead_router_callbacks": "counter",
    "lead_router_outcome_deliveries": "counter",
}

_CHUNK = 1000
#: Finished leads count in `lead_router_leads_by_status` for this long after they were accepted.
FINISHED_WINDOW_MS = 24 * 3600 * 1000


class RouterCollector:
    """A prometheus_client collector over one router's Redis (registered per scrape)."""

    def __init__(self, services: Services) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        services = self._services
        fields = services.counters.fields()
        counters = plain(fields)
        events = CounterMetricFamily("lead_router_events", "Router events by kind", labels=["kind"])
        for name, value in sorted(counters.items()):
            if not name.startswith(("callback:", "outcome:")):
                events.add_metric([name], value)
        yield events
        yield from self._leads()
        paused = GaugeMetricFamily("lead_router_delivery_paused", "1 while Ryng delivery is paused")
        paused.add_metric([], 1 if services.pause.state() else 0)
        yield paused
        yield from self._agents(services.agents.agents())
        yield _histogram(fields, histograms.RYNG_REQUEST, "lead_router_ryng_request_duration_seconds",
                         "One request to Ryng's create-campaign endpoint, by the client's outcome", label="outcome")
        yield _histogram(fields, histograms.WEBHOOK_TO_POSTED, "lead_router_webhook_to_posted_seconds",
                         "From a lead's acceptance to Ryng taking its campaign")
        yield from self._limiter(counters)
        depth = GaugeMetricFamily("lead_router_queue_depth", "Delivery tasks waiting in the broker queue",
                                  labels=["queue"])
        queue = services.settings.celery_queue
        length = self._queue_length(queue)
        if length is not None:
            depth.add_metric([queue], length)
        yield depth
        yield _split(counters, "callback:", "lead_router_callbacks", "Ryng callbacks by kind and result",
                     ["kind", "result"])
        yield _split(counters, "outcome:", "lead_router_outcome_deliveries",
                     "Outcome messages to the CRMs: delivered, retrying (a failed try) or dead", ["result"])

    def _leads(self) -> Iterator[Metric]:
        services = self._services
        by_set = GaugeMetricFamily("lead_router_leads", "Leads by delivery set", labels=["set"])
        for name, value in services.parking.counts().items():
            by_set.add_metric([name], value)
        yield by_set
        by_status = GaugeMetricFamily(
            "lead_router_leads_by_status", "Leads by status: every open lead, and the finished leads accepted in the "
            "last 24 hours", labels=["status"])
        for name, value in leads_by_status(services.redis, services.keys, now_ms=now_ms()).items():
            by_status.add_metric([name], value)
        yield by_status

    def _agents(self, agents: Iterable[AgentState]) -> Iterator[Metric]:
        picks = CounterMetricFamily("lead_router_agent_picks", "Leads the routing gave each agent",
                                    labels=["agent"])
        open_leads = GaugeMetricFamily("lead_router_agent_open_leads", "Leads on their way to or with each agent "
                                       "(capacity held)", labels=["agent"])
        capacity = GaugeMetricFamily("lead_router_agent_capacity", "Each agent's capacity (0: unlimited)",
                                     labels=["agent"])
        state = GaugeMetricFamily("lead_router_agent_state", "1 for each agent's state now", labels=["agent", "state"])
        routing = self._services.routing
        now = datetime.now(UTC)
        for agent in agents:
            picks.add_metric([agent.name], agent.assigned)
            open_leads.add_metric([agent.name], agent.open)
            capacity.add_metric([agent.name], agent.capacity)
            configured = routing.agent(agent.name)
            current = agent_state(agent, off=not schedule.on_shift(configured.schedule if configured else None, now))
            for name in AGENT_STATES:
                state.add_metric([agent.name, name], 1 if name == current else 0)
        yield from (picks, open_leads, capacity, state)

    def _limiter(self, counters: Mapping[str, int]) -> Iterator[Metric]:
        limiter = self._services.limiter
        waits = CounterMetricFamily("lead_router_limiter_waits", "Sends the rate limiter made wait for a slot")
        waits.add_metric([], counters.get("limiter_waits", 0))
        yield waits
        used = GaugeMetricFamily("lead_router_limiter_requests_in_window",
                                 "Requests to Ryng in the limiter's sliding window")
        used.add_metric([], limiter.in_window())
        yield used
        limit = GaugeMetricFamily("lead_router_limiter_limit", "Requests to Ryng allowed per window")
        limit.add_metric([], limiter.limit)
        yield limit

    def _queue_length(self, queue: str) -> int | None:
        """The broker queue's length, when the broker is a Redis (the store's own, or another); else None."""
        services = self._services
        url = services.settings.celery_broker_url
        try:
            if url is None:
                return int(services.redis.llen(broker_queue(queue)))
            if url.startswith(("redis://", "rediss://", "unix://")):
                with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
                    return int(client.llen(broker_queue(queue)))
        except redis.RedisError:
            return None
        return None


def leads_by_status(client: redis.Redis, keys: Keys, *, now_ms: int) -> dict[str, int]:
    """Every open lead (the pending set) and the finished leads accepted in the last `FINISHED_WINDOW_MS` (the
    created index), by status: a scrape reads the backlog and a day's leads, not the whole retention."""
    counts = dict.fromkeys((str(status) for status in Status), 0)
    open_statuses = {str(status) for status in OPEN}
    for status in _statuses(client, keys, keys.pending, "-inf"):
        if status in open_statuses:
            counts[status] += 1
    for status in _statuses(client, keys, keys.created, now_ms - FINISHED_WINDOW_MS):
        if status in counts and status not in open_statuses:
            counts[status] += 1
    return counts


def _statuses(client: redis.Redis, keys: Keys, index: str, low: int | str) -> Iterator[str | None]:
    """The status of each lead in the sorted set `index` scored from `low`, a chunk of pipelined reads at a time."""
    start = 0
    while True:
        ids: list[str] = client.zrangebyscore(index, low, "+inf", start=start, num=_CHUNK)  # type: ignore[assignment]
        if not ids:
            return
        pipe = client.pipeline(transaction=False)
        for lead_id in ids:
            pipe.hget(keys.lead(lead_id), "status")
        yield from pipe.execute()
        start += _CHUNK


def _histogram(
    fields: Mapping[str, int], histogram: histograms.Histogram, name: str, documentation: str, *, label: str = ""
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=[label] if label else None)
    for value, counts in sorted(histograms.read(fields, histogram).items()):
        family.add_metric([value] if label else [], counts.cumulative(histogram.buckets), counts.sum_seconds)
    return family


def _split(counters: Mapping[str, int], prefix: str, name: str, documentation: str, labels: list[str]) -> Metric:
    """A counter family over the counters named `<prefix><label>:<label>...`."""
    family = CounterMetricFamily(name, documentation, labels=labels)
    for field, value in sorted(counters.items()):
        if field.startswith(prefix):
            parts = field.removeprefix(prefix).split(":")
            if len(parts) == len(labels):
                family.add_metric(parts, value)
    return family
