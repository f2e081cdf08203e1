"""The `lead-router` console script: api, worker, run, sandbox, and operator commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import redis
import typer

from config.logging import configure_logging
from config.routing import RoutingConfigError, load_routing
from config.settings import Settings, get_settings
from router.cli.settings import services_or_exit, settings_or_exit
from workers.store.connections import redis_url

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
    uvicorn.run(
        create_app(settings),
        host=host or settings.router_host,
        port=port or settings.router_port,
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
    from workers.celery_app import app as celery_app

    argv = ["worker", f"--concurrency={concurrency}", f"--pool={pool}", f"--loglevel={settings.log_level}",
            f"--queues={settings.celery_queue}", "--without-gossip", "--without-mingle"]
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery_app.worker_main(argv)


@app.command()
def run(
    concurrency: Annotated[int, typer.Option(min=1, max=16, help="worker processes")] = 1,
    flower_port: Annotated[int, typer.Option(help="Flower's port (0: no Flower)")] = 5555,
) -> None:
    """Start everything for development: embedded Redis, the Ryng sandbox (without a token), API, worker."""
    settings = settings_or_exit()
    _startup(settings)
    from router.cli.runner import run_all

    raise typer.Exit(run_all(settings, concurrency=concurrency, flower_port=flower_port or None))


@app.command()
def explain(lead_id: str) -> None:
    """Why a lead went where it went: status, agent, pool, rule, strategy, skipped agents, attempts."""
    from router.api.records_view import record_view

    view = record_view(services_or_exit().store, lead_id)
    if view is None:
        typer.echo(f"no lead with id {lead_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(view.model_dump(exclude_none=True), indent=2))


@app.command("import")
def import_leads(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with id,number[,name,pool,agent,...]")],
    source: Annotated[str, typer.Option(
        help="a source of the routing file: each row is that CRM's record, mapped; else the name recorded on each "
             "lead (rules can match it)")] = "csv",
) -> None:
    """Import leads from a CSV file: every other column becomes a lead field. Bad rows are listed, not fatal."""
    from router.intake.csv_import import import_csv
    from router.intake.sources.intake import book_for
    from workers.services import Services
    from workers.tasks import enqueue

    settings = settings_or_exit()
    _startup(settings)
    services = Services.from_settings(settings)
    services.migrate()
    try:
        pools = sorted(services.pool_names)
        mapping = book_for(services.routing).get(source)
        report = import_csv(path, store=services.store, enqueue=enqueue, source=source, pools=pools,
                            agents=services.agent_names, mapping=mapping)
    except (ValueError, UnicodeDecodeError) as exc:
        typer.echo(f"lead-router import: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        services.close()
    for error in report.errors:
        typer.echo(f"rejected {error}", err=True)
    typer.echo(f"{report.taken} taken, {report.duplicates} already known, {len(report.errors)} rejected")
    raise typer.Exit(1 if report.errors else 0)


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
    from router.cli.export import register as register_export
    from router.cli.routing import register as register_routing
    from router.cli.sandbox import sandbox
    from router.cli.sources import register as register_sources

    app.command("sandbox")(sandbox)
    register_agents(app)
    app.add_typer(dead_app, name="dead", help="Dead letters: list, show, replay, purge.")
    app.add_typer(delivery_app, name="delivery", help="Delivery to Ryng: status, resume after a 403 pause.")
    register_routing(app)
    register_export(app)
    register_sources(app)


_register()


def main() -> None:
    try:
        app(prog_name="lead-router")
    except redis.ConnectionError as exc:  # an operator command with no Redis to talk to: one line, no traceback
        url = redis_url(get_settings().redis_url)
        typer.echo(f"lead-router: cannot reach Redis at {url} ({exc}); set REDIS_URL", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
