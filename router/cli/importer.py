"""`lead-router import FILE`: a progress bar while it runs (on a terminal), then one summary, fatal error or not."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from router.intake.csv_import import ImportReport

if TYPE_CHECKING:
    from workers.services import Services

__all__ = ["import_leads", "register", "summary"]

_BATCH = 1000


def import_leads(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV with id,number[,name,pool,agent,...]")],
    source: Annotated[str, typer.Option(
        help="a source of the routing file: each row is that CRM's record, mapped; else the name recorded on each "
             "lead (rules can match it)")] = "csv",
) -> None:
    """Import leads from a CSV file: every other column becomes a lead field. Bad rows are listed, not fatal."""
    from router.cli.main import _startup
    from router.cli.settings import settings_or_exit
    from router.intake.csv_import import import_csv
    from router.intake.sources.intake import book_for
    from workers.services import Services
    from workers.tasks import enqueue

    settings = settings_or_exit()
    _startup(settings)
    services = Services.from_settings(settings)
    try:
        services.migrate()
        mapping = book_for(services.routing).get(source)
        with _progress(path.stat().st_size) as progress:
            report = import_csv(path, store=services.store, enqueue=enqueue, source=source,
                                pools=sorted(services.pool_names), agents=services.agent_names, mapping=mapping,
                                progress=progress)
        agents = _agents(services, report.taken_ids) if report.stopped is None else Counter()
    finally:
        services.close()
    for error in report.errors:
        typer.echo(f"rejected {error}", err=True)
    typer.echo("\n".join(summary(report, agents=agents, rate_per_min=settings.ryng_rate_limit_per_min,
                                 mapped=mapping is not None, now=datetime.now(UTC))))
    raise typer.Exit(2 if report.stopped else 1 if report.errors else 0)


def summary(
    report: ImportReport, *, agents: Counter[str], rate_per_min: int, mapped: bool, now: datetime
) -> list[str]:
    """What the import did, the same lines whether it finished or stopped early."""
    lines = [f"{report.taken} taken, {report.duplicates} already known, {len(report.errors)} rejected "
             f"({report.rows} rows read)"]
    if report.stopped is not None:
        lines.append(f"stopped at line {report.line or 1}: {report.stopped}; the rows before it are taken as counted "
                     "(import the file again to go on: rows already taken count as already known)")
    if report.extra_columns:
        what = "handed to the source's mapping as the CRM record" if mapped else "kept as lead fields"
        lines.append(f"extra columns, {what}: {', '.join(report.extra_columns)}")
    if agents:
        assigned = {name: count for name, count in agents.items() if name}
        waiting = agents.get("", 0)
        by_agent = ", ".join(f"{name} {count}" for name, count in sorted(assigned.items()))
        lines.append(f"by agent so far: {by_agent or 'none yet'}" + (f"; {waiting} still queued" if waiting else ""))
    if report.targets:
        lines.append("asked for: " + ", ".join(f"{name} {count}" for name, count in report.targets.most_common()))
    if report.taken:
        lines.append(_eta_line(report.taken, rate_per_min=rate_per_min, now=now))
    return lines


def _eta_line(count: int, *, rate_per_min: int, now: datetime) -> str:
    minutes = count / rate_per_min
    when = (now + timedelta(minutes=minutes)).isoformat(timespec="seconds")
    return (f"at {rate_per_min} per minute (RYNG_RATE_LIMIT_PER_MIN) the last of these {count} leads reaches Ryng "
            f"in about {_duration(minutes * 60)}, around {when} (later if other leads are waiting)")


def _duration(seconds: float) -> str:
    seconds = max(1, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def _agents(services: Services, lead_ids: Sequence[str]) -> Counter[str]:
    """How many of these leads each agent holds so far ("" for leads not yet assigned)."""
    keys = services.store.keys
    counts: Counter[str] = Counter()
    for start in range(0, len(lead_ids), _BATCH):
        pipe = services.redis.pipeline(transaction=False)
        for lead_id in lead_ids[start:start + _BATCH]:
            pipe.hget(keys.lead(lead_id), "agent")
        for agent in pipe.execute():
            counts[agent.decode() if isinstance(agent, bytes) else agent or ""] += 1
    return counts


@contextmanager
def _progress(total_bytes: int) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr with rows, rate and time left; nothing when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("importing"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TextColumn("{task.fields[rows]} rows, {task.fields[rate]} rows/s"), TimeElapsedColumn(),
               TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("import", total=max(total_bytes, 1), rows=0, rate="-")

        def update(done_bytes: int, rows: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{rows / elapsed:,.0f}" if elapsed > 0.5 else "-"
            bar.update(task, completed=done_bytes, rows=rows, rate=rate)

        yield update


def register(app: typer.Typer) -> None:
    """Add `import` to the `lead-router` app."""
    app.command("import")(import_leads)
