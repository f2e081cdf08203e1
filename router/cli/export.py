"""`lead-router export`: leads and their outcomes since a date, as CSV or JSON Lines (full records and tombstones).

Register with `register(app)`.
"""

from __future__ import annotations

import csv
import json
import re
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal, TextIO

import typer

from router.cli.settings import services_or_exit
from workers.clock import iso
from workers.store.retention import outcome_row

__all__ = ["parse_since", "register"]

_AGO = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_since(text: str, *, now: float | None = None) -> int:
    """`2026-11-01`, `2026-11-01T09:00:00+05:30` or an age such as `7d`, `12h`, `30m`: epoch milliseconds."""
    ago = _AGO.match(text.strip())
    if ago:
        return int(((now if now is not None else time.time()) - float(ago[1]) * _UNIT[ago[2]]) * 1000)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither a date (2026-11-01, ISO-8601) nor an age (7d, 12h)") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a date without an offset is in this machine's time zone
    return int(moment.timestamp() * 1000)


def export(
    since: Annotated[str, typer.Option(help="a date (2026-11-01, ISO-8601 with offset) or an age (7d, 12h)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write (default: stdout)")] = None,
    fmt: Annotated[Literal["csv", "jsonl"], typer.Option("--format", help="csv or jsonl")] = "csv",
) -> None:
    """Write every lead accepted since SINCE with its outcome: agent, status, times, disposition, talk time."""
    since_ms = parse_since(since)
    services = services_or_exit()
    out: TextIO = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
    count = 0
    try:
        writer: csv.DictWriter[str] | None = None
        for record in services.retention.leads_since(since_ms):
            row = outcome_row(record)
            if fmt == "jsonl":
                out.write(json.dumps(row, sort_keys=True, default=str) + "\n")
            else:
                flat = row | {"fields": json.dumps(row["fields"], sort_keys=True)}
                if writer is None:
                    writer = csv.DictWriter(out, fieldnames=list(flat))
                    writer.writeheader()
                writer.writerow(flat)
            count += 1
    finally:
        if output:
            out.close()
        services.close()
    typer.echo(f"exported {count} leads accepted since {iso(since_ms)}"
               + (f" to {output}" if output else ""), err=True)


def register(app: typer.Typer) -> None:
    app.command("export")(export)
