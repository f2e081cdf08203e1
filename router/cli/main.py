"""The `lead-router` console script: api, worker, run, sandbox, and operator commands."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import redis
import typer

from config.logging import configure_logging
from config.routing import RoutingConfigError, load_routing
from config.settings import Settings, get_settings
from router.cli.ports import refuse_busy_port
from router.cli.settings import settings_or_exit
from workers.store.connections import masked, redis_url

app = typer.Typer(
    name="lead-router",
    help="Routes CRM leads to Ryng agents: a cross-campaign round robin, paced and delivered at least once.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _startup(settings: Settings, *, webhooks: bool = True) -> None:
    """Configure logging and refuse bad settings; `webhooks=False` skips the webhook secrets (and the web stack
    their check imports), for processes that never take a webhook."""
    configure_logging(level=settings.log_level, fmt=settings.log_format)
    if not settings.uses_sandbox and settings.ryng_url is None:
        typer.echo("lead-router: RYNG_ACCESS_TOKEN is set: set RYNG_SUBDOMAIN or RYNG_BASE_URL too", err=True)
        raise typer.Exit(2)
    try:
        load_routing(path=settings.router_routing_file, agents=settings.agents)
        if webhooks:
            from router.api.app import build_verifier

            build_verifier(settings)
    except (RoutingConfigError, ValueError) as exc:  # a routing-file or webhook-secret mistake: one clear error
        typer.echo(f"lead-router: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="bind address (ROUTER_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (ROUTER_PORT)")] = None,
) -> None:
    """Serve the HTTP API (leads, callbacks, health, metrics)."""
    import uvicorn

    from router.api.app import create_app
    from router.api.limits import uvicorn_limits

    settings = settings_or_exit()
    _startup(settings)
    bind_host, bind_port = host or settings.router_host, port or settings.router_port
    refuse_busy_port("api", bind_host, bind_port, fix="ROUTER_PORT / --port")
    uvicorn.run(
        create_app(settings),
        host=bind_host,
        port=bind_port,
        log_config=None,
        access_log=False,
        **uvicorn_limits(  # type: ignore[arg-type]
            header_timeout=settings.router_header_timeout_seconds,
            max_per_client=settings.router_max_connections_per_client,
        ),
    )


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 2,
    pool: Annotated[str, typer.Option(help="Celery pool: prefork, solo or threads")] = "prefork",
    hostname: Annotated[str | None, typer.Option(help="Celery node name")] = None,
) -> None:
    """Run a Celery worker: picks agents, paces and posts leads to Ryng."""
    settings = settings_or_exit()
    _startup(settings, webhooks=False)
    options = [f"--concurrency={concurrency}", f"--pool={pool}", f"--loglevel={settings.log_level}",
               f"--queues={settings.celery_queue}", "--without-gossip", "--without-mingle"]
    if hostname:
        options.append(f"--hostname={hostname}")
    # Checked: become the worker process (same pid), leaving this command line's modules behind, since every
    # pool child is a copy of the process that forks it.
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "workers", *options])


@app.command()
def run(
    concurrency: Annotated[int, typer.Option(min=1, max=16, help="worker processes")] = 1,
    flower_port: Annotated[int, typer.Option(help="Flower's port (0: no Flower)")] = 5555,
) -> None:
    """Start everything for development: embedded Redis, the Ryng sandbox (without a token), API, worker."""
    settings = settings_or_exit(find_run=False, announce=False)
    _startup(settings)
    from router.cli.runner import run_all

    raise typer.Exit(run_all(settings, concurrency=concurrency, flower_port=flower_port or None))


@app.command()
def consume(
    queue: Annotated[str, typer.Option(help="queue to read JSON leads from")] = "crm-leads",
    url: Annotated[str | None, typer.Option(help="broker URL (amqp:// or redis://); default CELERY_BROKER_URL")] = None,
    source: Annotated[str, typer.Option(
        help="a source of the routing file: each message is that CRM's payload, mapped; else the name recorded on "
             "each lead")] = "queue",
) -> None:
    """Take leads from a message queue (RabbitMQ or Redis): one lead (or one CRM payload) per message."""
    from kombu import Connection

    from router.intake.queue_consumer import LeadConsumer
    from router.intake.sources.intake import book_for
    from workers.services import Services
    from workers.store.connections import redis_url
    from workers.tasks import enqueue

    settings = settings_or_exit()
    _startup(settings)
    services = Services.from_settings(settings)
    services.migrate()
    broker = url or settings.celery_broker_url or redis_url(settings.redis_url)
    with Connection(broker) as connection:
        typer.echo(f"consuming leads from queue {queue!r}")
        LeadConsumer(connection, queue=queue, store=services.store, enqueue=enqueue, client=services.redis,
                     source=source, pools=sorted(services.pool_names), agents=services.agent_names,
                     mapping=book_for(services.routing).get(source)).run()


def _register() -> None:
    from router.cli.agents import register as register_agents
    from router.cli.dead import dead_app, delivery_app
    from router.cli.explain import register as register_explain
    from router.cli.export import register as register_export
    from router.cli.importer import register as register_import
    from router.cli.routing import register as register_routing
    from router.cli.sandbox import sandbox
    from router.cli.sources import register as register_sources
    from router.cli.status import register as register_status

    app.command("sandbox")(sandbox)
    register_agents(app)
    register_explain(app)
    register_import(app)
    app.add_typer(dead_app, name="dead", help="Dead letters: list, show, replay, purge.")
    app.add_typer(delivery_app, name="delivery", help="Delivery to Ryng: status, resume after a 403 pause.")
    register_routing(app)
    register_export(app)
    register_sources(app)
    register_status(app)


_register()


def main() -> None:
    try:
        app(prog_name="lead-router")
    except redis.ConnectionError as exc:  # an operator command with no Redis to talk to: one line, no traceback
        url = masked(redis_url(get_settings().redis_url))
        typer.echo(f"lead-router: cannot reach Redis at {url} ({exc}); set REDIS_URL, or start `make run` in this "
                   "folder", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
