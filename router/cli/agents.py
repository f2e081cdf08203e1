"""`lead-router agents ...` and `lead-router pools`: live agent control straight against Redis.

Register with `register(app)` (adds the `agents` group and the `pools` command).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from workers.clock import iso_seconds
from workers.routing.agents import AgentState, AgentStore, UnknownAgentError

__all__ = ["agents_app", "pools", "register"]

agents_app = typer.Typer(help="Agents: list, pause, resume, set weight/capacity.", no_args_is_help=True)


def _store() -> AgentStore:
    from router.cli.settings import services_or_exit

    return services_or_exit().agents


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    return "\n".join(lines)


def _clock(seconds: float | None) -> str:
    return iso_seconds(seconds) or "-"


def _off_shift_now(names: list[str]) -> set[str]:
    """The agents off shift now by the routing file's schedules (none when the file cannot be read)."""
    from datetime import UTC

    from config.routing import RoutingConfigError, load_routing
    from router.cli.settings import settings_or_exit
    from workers.routing.schedule import off_shift

    settings = settings_or_exit()
    try:
        routing = load_routing(path=settings.router_routing_file, agents=settings.agents)
    except RoutingConfigError:
        return set()
    return set(off_shift(routing, names, datetime.now(UTC)))


def _state(agent: AgentState, *, off_shift: bool = False) -> str:
    if agent.paused:
        return f"paused ({agent.pause_reason})"
    if off_shift:
        return "off shift"
    if agent.wrap_up_until:
        return f"wrap-up until {_clock(agent.wrap_up_until)}"
    if agent.capacity and agent.open >= agent.capacity:
        return "at capacity"
    return "available"


def _echo_agent(agent: AgentState) -> None:
    capacity = str(agent.capacity) if agent.capacity else "unlimited"
    typer.echo(f"{agent.name}: {_state(agent)}; weight {agent.weight}; open {agent.open}/{capacity}")


def _missing(name: str) -> typer.Exit:
    typer.echo(f"lead-router: no agent named {name!r} (is it in the routing configuration?)", err=True)
    return typer.Exit(1)


@agents_app.command("list")
def list_agents(
    all_: Annotated[bool, typer.Option("--all", help="include agents no longer configured")] = False,
) -> None:
    """Agents in rotation order with their live state."""
    store = _store()
    agents = store.agents(include_removed=all_)
    if not agents:
        typer.echo("no agents registered yet (a worker registers them at start-up)")
        return
    off = _off_shift_now([agent.name for agent in agents])
    rows = [
        [agent.name, str(agent.agent_id or "-"), _state(agent, off_shift=agent.name in off), str(agent.weight),
         f"{agent.open}/{agent.capacity or 'unlimited'}", str(agent.assigned),
         _clock(agent.last_assigned_at), "" if agent.configured else "removed"]
        for agent in agents
    ]
    typer.echo(_table(["AGENT", "ID", "STATE", "WEIGHT", "OPEN", "ASSIGNED", "LAST ASSIGNED", ""], rows))
    stats = store.stats()
    typer.echo(f"\n{stats.agents} agents, {stats.paused} paused, {stats.open} open leads, "
               f"{stats.reservations} reservations, {stats.assigned} assigned in all")


@agents_app.command()
def pause(
    name: str, reason: Annotated[str, typer.Option(help="why (shown in listings and audits)")] = "paused",
) -> None:
    """Stop routing leads to NAME until resumed."""
    try:
        _echo_agent(_store().pause(name, reason=reason))
    except UnknownAgentError:
        raise _missing(name) from None


@agents_app.command()
def resume(name: str) -> None:
    """Route leads to NAME again."""
    try:
        _echo_agent(_store().resume(name))
    except UnknownAgentError:
        raise _missing(name) from None


@agents_app.command("set")
def set_agent(
    name: str,
    weight: Annotated[int | None, typer.Option(min=1, max=1000, help="weight (weighted pools)")] = None,
    capacity: Annotated[int | None, typer.Option(min=0, max=10_000, help="open leads at once; 0 = no limit")]
    = None,
    reset: Annotated[bool, typer.Option(help="drop overrides, back to the routing configuration")] = False,
) -> None:
    """Override NAME's weight and/or capacity live."""
    if weight is None and capacity is None and not reset:
        typer.echo("lead-router: give --weight, --capacity or --reset", err=True)
        raise typer.Exit(2)
    try:
        _echo_agent(_store().set(name, weight=weight, capacity=capacity, reset=reset))
    except UnknownAgentError:
        raise _missing(name) from None


def pools() -> None:
    """Pools with strategy, members in rotation order, the last agent picked and what happens when empty."""
    found = _store().pools()
    if not found:
        typer.echo("no pools registered yet (a worker registers them at start-up)")
        return
    rows = []
    for pool in found:
        config = pool.config
        empty = str(config.get("when_empty", "wait"))
        if empty == "wait":
            empty += f" {config.get('max_wait_seconds', '?')}s"
        if config.get("overflow"):
            empty += f" → {config['overflow']}"
        sticky = config.get("sticky_seconds") or 0
        rows.append([pool.name, pool.strategy, ",".join(pool.members) or "-", pool.last_agent or "-",
                     f"{sticky}s" if sticky else "-", empty])
    typer.echo(_table(["POOL", "STRATEGY", "MEMBERS", "LAST", "STICKY", "WHEN EMPTY"], rows))


def register(app: typer.Typer) -> None:
    """Add `agents` and `pools` to the `lead-router` app."""
    app.add_typer(agents_app, name="agents")
    app.command("pools")(pools)
