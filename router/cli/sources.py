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
) -> None:
    """Print the leads a sample payload would become, or why it would be refused (exit code 1)."""
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
    typer.echo(json.dumps({"source": name, "leads": leads, "ignored": mapped.ignored}, indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(sources_app, name="sources")
