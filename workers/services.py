"""The composition root: every collaborator of the router, built from settings in one place.

The API, the worker, every CLI command and the tests build a `Services` with `Services.from_settings(settings)`
and take only what they use: each collaborator is built on first use, so an import that needs a lead store never
opens a Ryng client. A worker process keeps one `Services` (built after the prefork pool forks, see
`process_services`); the API keeps one for its lifespan.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import httpx
import redis.asyncio as aioredis
from redis import Redis

from config.routing import RoutingConfig
from config.routing_watch import RoutingWatch
from config.settings import Settings, get_settings
from workers.delivery.deliverer import LOCKED_RETRY_SECONDS, Deliverer
from workers.delivery.ledger import DeliveryLedger
from workers.delivery.policy import DeliveryPolicy
from workers.fetch.waits import FETCH_LEASE_SECONDS, FetchWaits
from workers.outcomes.outbox import Outbox
from workers.outcomes.sender import OutcomeSender
from workers.routing.agents import AgentStore
from workers.routing.assigner import Assigner, cancel_reservation
from workers.ryng.callbacks import CallbackRecorder
from workers.ryng.client import RyngClient
from workers.ryng.target import ryng_target
from workers.store.connections import connect, connect_async, redis_url
from workers.store.counters import Counters
from workers.store.dead_letters import DeadLetters
from workers.store.front_door import FrontDoor
from workers.store.keys import Keys
from workers.store.limiter import RateLimiter
from workers.store.migrations import migrate
from workers.store.parking import Parking
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore
from workers.store.retention import Retention, RetentionPolicy
from workers.tls import tls_context

if TYPE_CHECKING:
    from workers.fetch.fetcher import Fetcher

__all__ = ["LIMITER_WINDOW_SECONDS", "Services", "close_process_services", "process_services"]

#: One second of margin on Ryng's minute: network delay may move a request into Ryng's next window
#: (the default of RYNG_RATE_WINDOW_SECONDS).
LIMITER_WINDOW_SECONDS = 61.0


@dataclass(eq=False)
class Services:
    """Settings, one Redis client and the collaborators built over them (each on first use).

    Tests may replace a collaborator before first use (`services.limiter = RateLimiter(...)`): the ones built
    later take the replacement.
    """

    settings: Settings
    redis: Redis
    keys: Keys
    #: httpx transport for the Ryng client (tests pass `httpx.MockTransport`); None: the network.
    ryng_transport: httpx.BaseTransport | None = None
    #: httpx transport for outcomes sent to CRMs (tests may pass `httpx.MockTransport`); None: the network.
    outcome_transport: httpx.BaseTransport | None = None
    #: httpx transport for reading records from CRMs' APIs (tests may pass `httpx.MockTransport`); None: the network.
    fetch_transport: httpx.BaseTransport | None = None
    #: How the deliverer sleeps through a short wait (tests record instead).
    sleep: Callable[[float], None] = time.sleep
    #: Seconds between looks at the routing file; 0 looks on every `follow_routing()`.
    routing_interval: float = 2.0
    _routing: RoutingConfig | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        client: Redis | None = None,
        routing: RoutingConfig | None = None,
        ryng_transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        routing_interval: float = 2.0,
    ) -> Services:
        """Wire the router from settings; `client` reuses a Redis client, `routing` replaces the routing file."""
        return cls(
            settings=settings,
            redis=client if client is not None else connect(redis_url(settings.redis_url)),
            keys=Keys(settings.router_key_prefix),
            ryng_transport=ryng_transport,
            sleep=sleep,
            routing_interval=routing_interval,
            _routing=routing,
        )

    def migrate(self, *, unreachable_ok: bool = False) -> int:
        """Bring Redis to the key layout in force (cheap when done; see `workers.store.migrations`)."""
        return migrate(self.redis, keys=self.keys, unreachable_ok=unreachable_ok)

    # --- storage -------------------------------------------------------------------------------------------

    @cached_property
    def store(self) -> LeadStore:
        return LeadStore(
            self.redis, keys=self.keys, lease_seconds=self.settings.router_lease_seconds,
            lock_seconds=self.settings.delivery_lock_seconds,
            min_replicas=self.settings.router_redis_min_replicas,
            replica_timeout_ms=self.settings.router_redis_replica_timeout_ms,
        )

    @cached_property
    def parking(self) -> Parking:
        return Parking(self.redis, keys=self.keys, lease_seconds=self.settings.router_lease_seconds)

    @cached_property
    def pause(self) -> DeliveryPause:
        return DeliveryPause(self.redis, keys=self.keys, probe_seconds=self.settings.router_pause_probe_seconds)

    @cached_property
    def limiter(self) -> RateLimiter:
        return RateLimiter(
            self.redis, keys=self.keys, limit=self.settings.ryng_rate_limit_per_min,
            window_seconds=self.settings.ryng_rate_window_seconds,
        )

    @cached_property
    def counters(self) -> Counters:
        return Counters(self.redis, keys=self.keys)

    @cached_property
    def callbacks(self) -> CallbackRecorder:
        return CallbackRecorder(self.redis, keys=self.keys)

    @cached_property
    def retention(self) -> Retention:
        settings = self.settings
        return Retention(self.redis, keys=self.keys, policy=RetentionPolicy(
            keep_full_seconds=settings.router_retention_seconds,
            keep_tombstone_seconds=settings.router_tombstone_seconds,
            every_seconds=settings.router_retention_sweep_seconds,
            export_file=settings.router_export_file or None,
            export_stream=settings.router_export_stream,
        ))

    @cached_property
    def agents(self) -> AgentStore:
        return AgentStore(self.redis, keys=self.keys)

    # --- the API's asynchronous intake ---------------------------------------------------------------------

    @cached_property
    def async_redis(self) -> aioredis.Redis:
        """A `redis.asyncio` client for the API's event loop (it connects on first use, in the running loop)."""
        return connect_async(redis_url(self.settings.redis_url))

    @cached_property
    def front_door(self) -> FrontDoor:
        """Records (and, with the broker on this Redis, queues) leads in one asynchronous call."""
        from workers.celery_app import app
        from workers.task_message import DELIVER_TASK, DeliveryMessages, same_redis

        settings = self.settings
        store_url = redis_url(settings.redis_url)
        # Unset, the broker is REDIS_URL's own Redis (through the same sentinels, if any).
        broker_is_store = settings.celery_broker_url is None or same_redis(store_url, settings.celery_broker_url)
        messages = None
        if broker_is_store and DeliveryMessages.supported(app):
            db = int(self.async_redis.connection_pool.connection_kwargs.get("db", 0))
            messages = DeliveryMessages(app, task_name=DELIVER_TASK, db=db)
        return FrontDoor(
            self.async_redis, keys=self.keys, lease_seconds=settings.router_lease_seconds, messages=messages,
            min_replicas=settings.router_redis_min_replicas,
            replica_timeout_ms=settings.router_redis_replica_timeout_ms,
        )

    def dead_letters(self, *, enqueue: Callable[[str], None] | None = None) -> DeadLetters:
        """Dead letters; with `enqueue`, replays send leads back to delivery (else replays are refused).

        Needs no routing configuration: a replay frees a reservation without wrap-up.
        """
        if enqueue is None:
            return DeadLetters(
                self.redis, keys=self.keys, lease_seconds=self.settings.router_lease_seconds, enqueue=_no_enqueue
            )
        return DeadLetters(
            self.redis, keys=self.keys, lease_seconds=self.settings.router_lease_seconds, enqueue=enqueue,
            release=lambda lead_id: cancel_reservation(self.redis, keys=self.keys, lead_id=lead_id),
        )

    # --- routing -------------------------------------------------------------------------------------------

    @cached_property
    def routing_watch(self) -> RoutingWatch:
        return RoutingWatch(
            path=self.settings.router_routing_file, agents=self.settings.agents, interval=self.routing_interval
        )

    @property
    def routing(self) -> RoutingConfig:
        """The routing in force: the one given to `from_settings`, else the routing file's (or ROUTER_AGENTS)."""
        return self._routing if self._routing is not None else self.routing_watch.config

    @cached_property
    def assigner(self) -> Assigner:
        return self._assigner_for(self.routing)

    @property
    def pool_names(self) -> frozenset[str]:
        return frozenset(pool.name for pool in self.assigner.routing.pools)

    @property
    def agent_names(self) -> frozenset[str]:
        """The agents the routing knows (empty when it names none: then any explicit agent goes to Ryng)."""
        return frozenset(agent.name for agent in self.assigner.routing.agents)

    def follow_routing(self) -> bool:
        """Adopt a changed routing file (a new assigner, re-registered in Redis); True when it changed."""
        return self._routing is None and self.routing_watch.check(self.adopt_routing)

    def adopt_routing(self, routing: RoutingConfig, *, sync: bool = True) -> None:
        """Route by `routing` from now on; `sync` re-registers its agents and pools in Redis (idempotent)."""
        assigner = self._assigner_for(routing)
        if sync:
            assigner.sync()
        self.__dict__["assigner"] = assigner
        self.__dict__.pop("deliverer", None)  # the next delivery is wired to the new assigner

    def _assigner_for(self, routing: RoutingConfig) -> Assigner:
        return Assigner(
            self.redis, keys=self.keys, routing=routing,
            reservation_timeout_seconds=self.settings.router_reservation_timeout_seconds,
        )

    # --- delivery ------------------------------------------------------------------------------------------

    @cached_property
    def ryng(self) -> RyngClient:
        base_url, token = ryng_target(self.settings)
        return RyngClient(
            base_url=base_url,
            token=token,
            timeout=self.settings.ryng_timeout_seconds,
            body_format=self.settings.ryng_body_format,
            form_agent_field=self.settings.ryng_form_agent_field,
            transport=self.ryng_transport,
        )

    @cached_property
    def policy(self) -> DeliveryPolicy:
        return DeliveryPolicy.from_settings(self.settings)

    @cached_property
    def ledger(self) -> DeliveryLedger:
        return DeliveryLedger(
            self.redis, keys=self.keys, limiter=self.limiter, lease_seconds=self.settings.router_lease_seconds,
            lock_seconds=self.settings.delivery_lock_seconds,
            reservation_timeout_seconds=self.settings.router_reservation_timeout_seconds,
            locked_retry_seconds=LOCKED_RETRY_SECONDS,
        )

    @cached_property
    def deliverer(self) -> Deliverer:
        return Deliverer(
            store=self.store, ledger=self.ledger, pause=self.pause, assigner=self.assigner, ryng=self.ryng,
            policy=self.policy, counters=self.counters, sleep=self.sleep,
            on_dead=lambda lead_id: self.outbox.notify(lead_id, kind="lead.dead"),
        )

    # --- outcomes back to the CRM ----------------------------------------------------------------------------

    @cached_property
    def outbox(self) -> Outbox:
        timeout = self.settings.router_outcome_timeout_seconds
        return Outbox(
            self.redis, keys=self.keys, store=self.store, routing=lambda: self.routing,
            lease_seconds=max(self.settings.router_lease_seconds, 2 * timeout + 5),
        )

    @cached_property
    def outcome_sender(self) -> OutcomeSender:
        settings = self.settings
        policy = _backoff(settings.router_outcome_backoff_base_seconds, settings.router_outcome_backoff_max_seconds)
        client = httpx.Client(timeout=settings.router_outcome_timeout_seconds, transport=self.outcome_transport,
                              verify=tls_context())
        return OutcomeSender(outbox=self.outbox, client=client, policy=policy,
                             max_attempts=settings.router_outcome_max_attempts)

    # --- id-only events: their records read from the CRM's API -------------------------------------------

    @cached_property
    def fetch_waits(self) -> FetchWaits:
        return FetchWaits(self.redis, keys=self.keys, store=self.store,
                          lease_seconds=max(self.settings.router_lease_seconds, FETCH_LEASE_SECONDS))

    @cached_property
    def fetcher(self) -> Fetcher:
        # Imported on first use: reading records from CRMs' APIs brings the CRM payload mapping (phone numbers,
        # JMESPath, the API's schemas), which a worker that only delivers would otherwise carry in every process.
        from workers.fetch.crm_api import CrmApi
        from workers.fetch.fetcher import Fetcher
        from workers.tasks import enqueue  # the delivery task (imported late: the tasks module imports this one)

        settings = self.settings
        policy = _backoff(settings.router_fetch_backoff_base_seconds, settings.router_fetch_backoff_max_seconds)
        api = CrmApi(httpx.Client(transport=self.fetch_transport, verify=tls_context()))
        return Fetcher(
            waits=self.fetch_waits, store=self.store, api=api,
            routing=lambda: self.routing, policy=policy, max_attempts=settings.router_fetch_max_attempts,
            enqueue=enqueue, on_dead=lambda lead_id: self.outbox.notify(lead_id, kind="lead.dead"),
            counters=self.counters,
        )

    def close(self) -> None:
        """Close what was opened: the Ryng and CRM clients (if they were ever built) and the Redis client."""
        ryng = self.__dict__.get("ryng")
        if ryng is not None:
            ryng.close()
        for name in ("outcome_sender", "fetcher"):
            opened = self.__dict__.get(name)
            if opened is not None:
                opened.close()
        self.redis.close()

    async def aclose(self) -> None:
        """Close the asynchronous client (if it was ever built), then everything `close` closes."""
        client = self.__dict__.get("async_redis")
        if client is not None:
            await client.aclose()
        self.close()


def _backoff(base_seconds: float, max_seconds: float) -> DeliveryPolicy:
    """A jittered backoff from `base_seconds`, doubling up to `max_seconds` (never below the base)."""
    return DeliveryPolicy(backoff_base_seconds=base_seconds, backoff_max_seconds=max(max_seconds, base_seconds))


def _no_enqueue(lead_id: str) -> None:
    raise RuntimeError("read-only dead-letter access cannot enqueue")


_process: Services | None = None
_process_pid: int | None = None


def process_services() -> Services:
    """This worker process's services, built on first use (and again after a fork); follows the routing file.

    The routing file is looked at on every call (a stat): a lead the API took under a newly added pool never
    meets the old file here.
    """
    global _process, _process_pid
    if _process is None or _process_pid != os.getpid():
        _process = Services.from_settings(get_settings(), routing_interval=0.0)
        _process_pid = os.getpid()
    _process.follow_routing()
    return _process


def close_process_services() -> None:
    global _process, _process_pid
    if _process is not None and _process_pid == os.getpid():
        _process.close()
    _process, _process_pid = None, None
