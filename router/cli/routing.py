"""`lead-router routing check [FILE]`: validate a routing file as start-up and reload would, and summarise it.

Register with `register(app)` (adds the `routing` group).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from config.routing import RoutingConfig, RoutingConfigError, load_routing

__all__ = ["register", "routing_app", "summary"]

routing_app = typer.Typer(help="The routing file: check it before a (re)load.", no_args_is_help=True)


def summary(config: RoutingConfig, *, origin: str) -> list[str]:
    """A few readable lines: counts, then each pool and each rule."""
    lines = [
        f"{origin}: OK — {len(config.agents)} agents, {len(config.pools)} pools, {len(config.rules)} rules; "
        f"default pool {config.default_pool!r}"
    ]
    for pool in config.pools:
        empty: str = "ryng (Ryng chooses)" if pool.when_empty == "ryng" else pool.when_empty
        if empty == "wait":
            empty += f" up to {pool.max_wait_seconds:g}s"
        if pool.overflow:
            empty += f", then overflow to {pool.overflow!r}" if pool.when_empty == "wait" else f" to {pool.overflow!r}"
        elif pool.when_empty == "wait":
            empty += ", then dead-lettered"
        sticky = f"; sticky {pool.sticky_seconds:g}s" if pool.sticky_seconds else ""
        members = ", ".join(config.members(pool.name)) or "(no members)"
        lines.append(f"  pool {pool.name}: {pool.strategy}{sticky}; members {members}; when empty: {empty}")
    for rule in config.rules:
        lines.append(f"  rule {rule.name} → pool {rule.pool}")
    return lines


@routing_app.command("check")
def check(
    file: Annotated[
        Path | None, typer.Argument(dir_okay=False, help="routing file (default: ROUTER_ROUTING_FILE)")
    ] = None,
) -> None:
    """Validate FILE (TOML or YAML): exit 0 with a summary, or exit 2 with one line per mistake."""
    from router.cli.settings import settings_or_exit

    settings = settings_or_exit(announce=False)
    path = str(file) if file is not None else settings.router_routing_file
    try:
        config = load_routing(path=path, agents=settings.agents)
    except RoutingConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    origin = f"routing file {path}" if path else "no routing file (ROUTER_AGENTS)"
    typer.echo("\n".join(summary(config, origin=origin)))


def register(app: typer.Typer) -> None:
    """Add `routing` to the `lead-router` app."""
    app.add_typer(routing_app, name="routing")
