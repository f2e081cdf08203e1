"""Celery tasks: thin wrappers that unpack the message and call plain logic."""

from __future__ import annotations

from typing import Any

import structlog
from celery.signals import task_postrun, task_prerun, worker_init, worker_process_shutdown

from workers.celery_app import app
from workers.delivery.pump import Pump
from workers.services import Services, close_process_services, process_services
from workers.task_message import DELIVER_TASK
from workers.tls import tls_context

log = structlog.get_logger(__name__)


@app.task(name=DELIVER_TASK, ignore_result=True)
def deliver(lead_id: str) -> dict[str, str]:
    """Deliver one lead (idempotent: a redelivered message for a posted lead does nothing).

    The result (what Flower shows for the task) names the lead, the agent this run routed it to (empty when it
    picked none) and what happened: no customer data.
    """
    outcome = process_services().deliverer.run(lead_id)
    agent = str(structlog.contextvars.get_contextvars().get("agent") or "")
    log.info("lead_delivery_step", lead_id=lead_id, outcome=outcome)
    return {"lead": lead_id, "agent": agent, "outcome": str(outcome)}


@app.task(name="lead_router.send_outcome", ignore_result=True)
def send_outcome(lead_id: str) -> str:
    """Send the lead's oldest outcome to its CRM (a claim from the outbox; a stray copy sends at most again)."""
    sent = process_services().outcome_sender.run(lead_id)
    log.info("outcome_step", lead_id=lead_id, outcome=sent)
    return str(sent)


@app.task(name="lead_router.fetch_lead", ignore_result=True)
def fetch_lead(lead_id: str) -> str:
    """Read a waiting lead's record from its CRM's API, then hand it to delivery (a claim from the waits)."""
    fetched = process_services().fetcher.run(lead_id)
    log.info("fetch_step", lead_id=lead_id, outcome=fetched)
    return str(fetched)


def enqueue(lead_id: str, *, request_id: str | None = None) -> None:
    """Publish one delivery task for a lead (the lead id and request id travel in the headers)."""
    request_id = request_id or structlog.contextvars.get_contextvars().get("request_id") or ""
    deliver.apply_async(args=(lead_id,), headers={"lead_id": lead_id, "request_id": request_id})


def start_pump() -> Pump:
    """Start the pump thread with its own Redis connection (the worker's main process)."""
    from config.settings import get_settings

    services = Services.from_settings(get_settings(), routing_interval=0.0)
    services.migrate()
    services.assigner.sync()
    services.retention.index_existing()

    def expire_reservations() -> int:
        services.follow_routing()  # keeps Redis in step with a changed routing file even with no leads coming
        services.retention.sweep()  # at most once per ROUTER_RETENTION_SWEEP_SECONDS across all workers
        return services.assigner.expire_reservations()

    def send_outcomes() -> int:
        claimed = services.outbox.claim_due()
        for lead_id in claimed:
            send_outcome.apply_async(args=(lead_id,), headers={"lead_id": lead_id})
        return len(claimed)

    def send_fetches() -> int:
        claimed = services.fetch_waits.claim_due()
        for lead_id in claimed:
            fetch_lead.apply_async(args=(lead_id,), headers={"lead_id": lead_id})
        return len(claimed)

    pump = Pump(
        parking=services.parking,
        enqueue=enqueue,
        expire_reservations=expire_reservations,
        interval=services.settings.router_pump_interval_seconds,
        outcomes=lambda: send_outcomes() + send_fetches(),
    )
    pump.start()
    return pump


@task_prerun.connect
def _bind_lead(task: Any = None, args: Any = None, **_: Any) -> None:
    structlog.contextvars.clear_contextvars()
    request = getattr(task, "request", None)
    headers = getattr(request, "headers", None) or {}
    lead_id = headers.get("lead_id") or getattr(request, "lead_id", None) or (args[0] if args else None)
    request_id = headers.get("request_id") or getattr(request, "request_id", None) or None
    structlog.contextvars.bind_contextvars(lead_id=lead_id, request_id=request_id)


@task_postrun.connect
def _unbind_lead(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


@worker_init.connect
def _prepare_pool(**_: Any) -> None:
    """Before the pool forks: validate the routing file and read the CA bundle once, in the main process, so
    the children inherit both (see `config.routing.load_routing` and `workers.tls`)."""
    from config.routing import load_routing
    from config.settings import get_settings

    settings = get_settings()
    load_routing(path=settings.router_routing_file, agents=settings.agents)
    tls_context()


@worker_process_shutdown.connect
def _close(**_: Any) -> None:
    close_process_services()
