"""Per-process resources of a worker: one Redis client, one Ryng httpx client, the pieces that use them.

Built on first use in each process (after the prefork pool forks) and closed at process shutdown.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import redis

from config.routing import RoutingConfig
from config.routing_watch import RoutingWatch
from config.settings import Settings, get_settings
from workers.delivery.deliverer import Deliverer, DeliveryPolicy
from workers.routing.assigner import Assigner
from workers.ryng.client import RyngClient
from workers.store.connections import connect, redis_url
from workers.store.counters import Counters
from workers.store.keys import Keys
from workers.store.limiter import RateLimiter
from workers.store.parking import Parking
from workers.store.pause import DeliveryPause
from workers.store.records import LeadStore

SANDBOX_PATH = "/rest-api/v1"


@dataclass
class WorkerContext:
    settings: Settings
    redis: redis.Redis
    keys: Keys
    store: LeadStore
    parking: Parking
    limiter: RateLimiter
    pause: DeliveryPause
    assigner: Assigner
    ryng: RyngClient
    counters: Counters
    deliverer: Deliverer
    routing_watch: RoutingWatch | None = None

    def follow_routing(self) -> bool:
        """Adopt a changed routing file: a new assigner, re-registered in Redis; True when it changed."""
        return self.routing_watch is not None and self.routing_watch.check(self._adopt_routing)

    def _adopt_routing(self, routing: RoutingConfig) -> None:
        assigner = Assigner(
            self.redis, keys=self.keys, routing=routing,
            reservation_timeout_seconds=self.settings.router_reservation_timeout_seconds,
        )
        assigner.sync()
        self.assigner = assigner
        self.deliverer = make_deliverer(
            settings=self.settings, store=self.store, parking=self.parking, limiter=self.limiter,
            pause=self.pause, assigner=assigner, ryng=self.ryng, counters=self.counters,
        )

    def close(self) -> None:
        self.ryng.close()
        self.redis.close()


def ryng_target(settings: Settings) -> tuple[str, str]:
    """The Ryng base URL and token in force: the real account when a token is set, else the sandbox."""
    if not settings.uses_sandbox:
        url = settings.ryng_url
        if url is None:
            raise ValueError("RYNG_ACCESS_TOKEN is set: set RYNG_SUBDOMAIN or RYNG_BASE_URL too")
        token = settings.ryng_access_token
        assert token is not None
        return url, token.get_secret_value()
    url = settings.ryng_url or f"http://{settings.sandbox_host}:{settings.sandbox_port}{SANDBOX_PATH}"
    return url, settings.sandbox_token


def callback_urls(settings: Settings) -> tuple[str | None, str | None]:
    """The connect and terminal callback URLs handed to Ryng, when a public URL and secret are set."""
    secret = settings.router_callback_secret
    if not settings.router_public_url or secret is None or not secret.get_secret_value():
        return None, None
    base = f"{settings.router_public_url}/v1/ryng/{secret.get_secret_value()}"
    return f"{base}/connect", f"{base}/terminal"


def policy_from(settings: Settings) -> DeliveryPolicy:
    connect_url, terminal_url = callback_urls(settings)
    return DeliveryPolicy(
        max_attempts=settings.router_max_attempts,
        backoff_base_seconds=settings.router_backoff_base_seconds,
        backoff_max_seconds=settings.router_backoff_max_seconds,
        max_crashes=settings.router_max_deliveries,
        campaign_name_template=settings.ryng_campaign_name_template,
        field_slots=tuple(sorted(settings.field_map.items())),
        lead_id_slot=settings.ryng_lead_id_field,
        connect_callback_url=connect_url,
        terminal_callback_url=terminal_url,
    )


def make_deliverer(
    *, settings: Settings, store: LeadStore, parking: Parking, limiter: RateLimiter, pause: DeliveryPause,
    assigner: Assigner, ryng: RyngClient, counters: Counters,
) -> Deliverer:
    def acquire() -> tuple[bool, float]:
        slot = limiter.acquire()
        return slot.granted, slot.wait_seconds

    return Deliverer(
        store=store, parking=parking, limiter_acquire=acquire, pause=pause, assigner=assigner,
        ryng=ryng, policy=policy_from(settings), counters=counters, sleep=time.sleep,
    )


def build_context(settings: Settings) -> WorkerContext:
    client = connect(redis_url(settings.redis_url))
    keys = Keys(settings.router_key_prefix)
    store = LeadStore(
        client, keys=keys, lease_seconds=settings.router_lease_seconds, lock_seconds=settings.delivery_lock_seconds
    )
    parking = Parking(client, keys=keys, lease_seconds=settings.router_lease_seconds)
    # One second of margin on Ryng's minute: network delay may move a request into Ryng's next window.
    limiter = RateLimiter(client, keys=keys, limit=settings.ryng_rate_limit_per_min, window_seconds=61.0)
    pause = DeliveryPause(client, keys=keys, probe_seconds=settings.router_pause_probe_seconds)
    # A stat per task (interval 0): a lead the API took under a newly added pool never meets the old file here.
    watch = RoutingWatch(path=settings.router_routing_file, agents=settings.agents, interval=0.0)
    assigner = Assigner(
        client, keys=keys, routing=watch.config, reservation_timeout_seconds=settings.router_reservation_timeout_seconds
    )
    base_url, token = ryng_target(settings)
    ryng = RyngClient(
        base_url=base_url,
        token=token,
        timeout=settings.ryng_timeout_seconds,
        body_format=settings.ryng_body_format,
        form_agent_field=settings.ryng_form_agent_field,
    )
    counters = Counters(client, keys=keys)
    deliverer = make_deliverer(
        settings=settings, store=store, parking=parking, limiter=limiter, pause=pause, assigner=assigner,
        ryng=ryng, counters=counters,
    )
    return WorkerContext(
        settings=settings, redis=client, keys=keys, store=store, parking=parking, limiter=limiter,
        pause=pause, assigner=assigner, ryng=ryng, counters=counters, deliverer=deliverer, routing_watch=watch,
    )


_context: WorkerContext | None = None
_context_pid: int | None = None


def get_context() -> WorkerContext:
    """This process's context, built on first use (and rebuilt after a fork)."""
    global _context, _context_pid
    if _context is None or _context_pid != os.getpid():
        _context = build_context(get_settings())
        _context_pid = os.getpid()
    _context.follow_routing()
    return _context


def close_context() -> None:
    global _context, _context_pid
    if _context is not None and _context_pid == os.getpid():
        _context.close()
    _context, _context_pid = None, None
