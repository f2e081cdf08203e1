"""`lead-router dead ...` and `lead-router delivery ...`: dead letters and the delivery pause, against Redis.

Mount with `app.add_typer(dead_app, name="dead")` and `app.add_typer(delivery_app, name="delivery")`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from router.cli.settings import services_or_exit
from workers.store.dead_letters import BatchResult, DeadLetters
from workers.store.pause import DeliveryPause

__all__ = ["dead_app", "delivery_app"]

dead_app = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True)
delivery_app = typer.Typer(help="Delivery to Ryng: pause status, resume after a 403.", no_args_is_help=True)


def _dead_letters(*, for_replay: bool = False) -> DeadLetters:
    services = services_or_exit()
    if not for_replay:
        return services.dead_letters()
    from workers.tasks import enqueue

    return services.dead_letters(enqueue=enqueue)


def _pause() -> DeliveryPause:
    return services_or_exit().pause


def _report(verb: str, result: BatchResult) -> None:
    if result.done:
        typer.echo(f"{verb} {len(result.done)}: {', '.join(result.done)}")
    for lead_id, why in result.skipped.items():
        typer.echo(f"skipped {lead_id}: {why}", err=True)
    if result.enqueue_failed:
        typer.echo(f"not queued now (the pump queues them after their lease): {', '.join(result.enqueue_failed)}",
                   err=True)
    if not result.done:
        raise typer.Exit(1)


@dead_app.command("outcomes")
def dead_outcomes(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="show at most this many")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Outcomes the router gave up sending to a CRM (newest first): the lead, the URL, why, and the body."""
    services = services_or_exit()
    dead = services.outbox.dead(limit=limit)
    if as_json:
        typer.echo(json.dumps([item.model_dump() for item in dead], indent=2))
        return
    if not dead:
        typer.echo("no dead outcomes")
        return
    for item in dead:
        typer.echo(f"{item.at}  {item.lead_id}  {item.attempts} tries  {item.url}  {item.reason}")


@dead_app.command("list")
def list_dead(
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="show at most this many")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="skip this many (oldest first)")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Dead-lettered leads, oldest death first, with why and when."""
    page = _dead_letters().listing(offset=offset, limit=limit)
    if as_json:
        typer.echo(page.model_dump_json(indent=2))
        return
    if not page.items:
        typer.echo("no dead letters")
        return
    for item in page.items:
        flag = " [possible duplicate]" if item.possible_duplicate else ""
        typer.echo(f"{item.id}  {item.dead_at or '-'}  attempts={item.attempts} crashes={item.crashes}"
                   f"{flag}  {item.reason or ''}")
    typer.echo(f"\n{len(page.items)} shown of {page.total} dead")


@dead_app.command()
def show(lead_id: str) -> None:
    """One dead lead: its stored record and history, as JSON."""
    detail = _dead_letters().show(lead_id)
    if detail is None:
        typer.echo(f"lead-router: no dead lead with id {lead_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps(detail.model_dump(), indent=2, default=str))


@dead_app.command()
def replay(
    lead_ids: Annotated[list[str] | None, typer.Argument(help="dead lead ids")] = None,
    all_: Annotated[bool, typer.Option("--all", help="replay every dead lead")] = False,
) -> None:
    """Send dead leads through delivery again (same rules, assigner, limiter); history is kept."""
    if all_ == bool(lead_ids):
        typer.echo("lead-router: give lead ids or --all (not both)", err=True)
        raise typer.Exit(2)
    dead = _dead_letters(for_replay=True)
    _report("replayed", dead.replay_all(by="cli") if all_ else dead.replay(lead_ids or [], by="cli"))


@dead_app.command()
def purge(
    lead_ids: Annotated[list[str], typer.Argument(help="dead lead ids")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Delete dead leads for good (record and history)."""
    if not yes:
        typer.confirm(f"Delete {len(lead_ids)} dead lead(s) and their history for good?", abort=True)
    _report("purged", _dead_letters().purge(lead_ids))


@delivery_app.command("status")
def delivery_status() -> None:
    """Whether delivery is paused (Ryng answered 403), since when and why."""
    state = _pause().state()
    if state is None:
        typer.echo("delivery: running")
        return
    typer.echo(f"delivery: PAUSED since {state.get('since', '?')}: {state.get('reason', '?')}")


@delivery_app.command()
def resume() -> None:
    """Resume delivery after fixing RYNG_ACCESS_TOKEN (a 403 pauses it again)."""
    resumed = _pause().resume()
    typer.echo("delivery: resumed" if resumed else "delivery: was not paused")
