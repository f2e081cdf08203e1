"""`lead-router sources`: list the routing file's sources, and test a mapping on a sample payload.

`lead-router sources test NAME FILE` prints the leads a sample payload would become (or why not), without
Redis, a worker or the CRM: an admin checks a mapping before pointing the CRM at it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from config.routing import RoutingConfigError, load_routing
from router.cli.settings import settings_or_exit
from router.intake.sources.decoding import PayloadError, decode_body
from router.intake.sources.intake import SourceBook
from router.intake.sources.mapping import MappingError
from workers.fetch.crm_api import record_url

__all__ = ["register", "sources_app"]

sources_app = typer.Typer(help="CRM sources declared in the routing file: list them, test a mapping.",
                          no_args_is_help=True)

_BY_SUFFIX = {".json": "application/json", ".xml": "text/xml", ".form": "application/x-www-form-urlencoded",
              ".txt": "text/plain"}


def _book() -> SourceBook:
    settings = settings_or_exit(announce=False)
    try:
        routing = load_routing(path=settings.router_routing_file, agents=settings.agents)
    except RoutingConfigError as exc:
        typer.echo(f"lead-router: {exc}", err=True)
        raise typer.Exit(2) from None
    return SourceBook(routing.sources)


@sources_app.command("list")
def list_sources() -> None:
    """Each source: its preset, how it is authenticated, its URL path."""
    book = _book()
    if not book.names:
        typer.echo("no sources: declare [[sources]] in the routing file (ROUTER_ROUTING_FILE)")
        return
    for name in book.names:
        source = book.get(name)
        assert source is not None
        auth = source.config.auth if isinstance(source.config.auth, str) else source.config.auth.scheme
        typer.echo(f"{name}: preset {source.config.preset}, auth {auth}, POST /v1/sources/{name}")


@sources_app.command("test")
def test_source(
    name: Annotated[str, typer.Argument(help="the source's name in the routing file")],
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a sample payload as the CRM sends it")],
    content_type: Annotated[
        str | None, typer.Option(help="the CRM's content type (default from the suffix: .json .xml .form .txt)")
    ] = None,
    record: Annotated[Path | None, typer.Option(
        exists=True, dir_okay=False, help="a sample record as the CRM's API answers it (sources with a fetch)"
    )] = None,
) -> None:
    """Print the leads a sample payload would become, or why it would be refused (exit code 1).

    An event that carries only its record's id (a source with a fetch) is listed under `fetch` with the URL its
    record is read from; with `--record`, the lead that record would become is printed too.
    """
    source = _book().get(name)
    if source is None:
        typer.echo(f"lead-router: no source named {name!r} in the routing file", err=True)
        raise typer.Exit(2)
    kind = content_type or _BY_SUFFIX.get(path.suffix.lower(), "application/json")
    try:
        payload = decode_body(path.read_bytes(), content_type=kind)
        mapped = source.mapping.map(payload)
    except (PayloadError, MappingError) as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(1) from None
    leads = [lead.normalised() for lead in mapped.leads]
    fetches: list[dict[str, object]] = [
        {"id": event.id, "record_url": record_url(source.config, event.crm_id)} for event in mapped.fetches
    ]
    if record is not None:
        for entry, event in zip(fetches, mapped.fetches, strict=True):
            try:
                sample = json.loads(record.read_bytes())
                entry["lead"] = source.mapping.record_lead(sample, lead_id=event.id).normalised()
            except (ValueError, MappingError) as exc:
                typer.echo(f"refused: the record: {exc}", err=True)
                raise typer.Exit(1) from None
    out: dict[str, object] = {"source": name, "leads": leads, "ignored": mapped.ignored}
    if source.config.fetch is not None:
        out["fetch"] = fetches
    typer.echo(json.dumps(out, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")
