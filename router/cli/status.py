"""`lead-router status [--watch]`: the router at a glance, from the operator snapshot plus a Celery ping.

Which Redis (password masked) and where its URL came from, workers online, queue depth, waiting leads by reason
with when they go, leads waiting for their CRM record (status `fetching`) with the next read, the limiter's
budget, the delivery pause, agents one line each, dead letters and callbacks that matched no lead. Register with
`register(app)`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import typer

from workers.operator.snapshot import Snapshot

__all__ = ["RedisSource", "register", "render", "status"]

#: Seconds between two pictures with `--watch`.
WATCH_SECONDS = 2.0
#: How long the Celery ping waits for workers to answer.
PING_SECONDS = 1.0


@dataclass(frozen=True)
class RedisSource:
    url: str
    source: str


def _ago(iso: str | None) -> str:
    if not iso:
        return "never"
    seconds = max(0.0, time.time() - datetime.fromisoformat(iso).timestamp())
    return f"{seconds:.0f} s ago" if seconds < 90 else f"{seconds / 60:.0f} min ago"


def _due(iso: str) -> str:
    seconds = datetime.fromisoformat(iso).timestamp() - time.time()
    return "now" if seconds <= 0 else f"in {seconds:.0f} s" if seconds < 90 else f"in {seconds / 60:.0f} min"


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


_STATES = {"off_shift": "off shift", "wrap_up": "wrap-up", "at_capacity": "at capacity"}


def render(snapshot: Snapshot, *, redis: RedisSource, workers: list[str] | None) -> str:
    """The status as text lines; `workers` None means the ping could not be sent."""
    lines = [f"Redis      {redis.url}  ({redis.source})"]
    if workers is None:
        lines.append("Workers    unknown (the broker could not be asked)")
    else:
        lines.append(f"Workers    {len(workers)} online" + (f": {', '.join(sorted(workers))}" if workers else ""))
    queue = "unknown (the broker did not say)" if snapshot.queue_depth is None else snapshot.queue_depth
    lines.append(f"Queue      {queue} queued, {snapshot.in_flight} in flight")
    if snapshot.delivery_paused:
        lines.append(f"Delivery   PAUSED since {snapshot.paused_since}: {snapshot.pause_reason}"
                     " (fix the token, then `lead-router delivery resume`)")
    else:
        lines.append("Delivery   running")
    budget = snapshot.budget
    slot = f"; next slot in {budget.next_slot_in_seconds:.1f} s" if budget.remaining == 0 else ""
    lines.append(f"Budget     {budget.remaining} of {budget.limit} Ryng requests left in {budget.window_seconds:g} s"
                 + slot)
    if snapshot.waiting_total:
        lines.append(f"Waiting    {snapshot.waiting_total} leads; all sent in about "
                     f"{_duration(snapshot.drain_eta_seconds)}")
        for group in snapshot.waiting:
            lines.append(f"             {group.reason}: {group.count} (next {_due(group.next_due_at)}, "
                         f"last {_due(group.last_due_at)})")
    else:
        lines.append("Waiting    none")
    if snapshot.fetching:
        due = snapshot.fetching_next_due_at
        lines.append(f"Fetching   {snapshot.fetching} waiting for their CRM record"
                     + (f"; next read {_due(due)}" if due else ""))
    else:
        lines.append("Fetching   none")
    lines.append(f"Dead       {snapshot.dead_total}"
                 + "".join(f"\n             {dead.id}: {dead.reason}" for dead in snapshot.dead_latest))
    lines.append(f"Callbacks  {snapshot.callbacks_unmatched} unmatched")
    if not snapshot.agents:
        lines.append("Agents     none registered yet (a worker registers the routing's agents when it starts)")
    else:
        lines.append("Agents")
        width = max(len(agent.name) for agent in snapshot.agents)
        for agent in snapshot.agents:
            state = _STATES.get(agent.state, agent.state)
            if agent.state == "paused" and agent.pause_reason:
                state += f" ({agent.pause_reason})"
            capacity = agent.capacity or "∞"
            lines.append(f"  {agent.name.ljust(width)}  {state:<22} open {agent.open}/{capacity}  "
                         f"today {agent.picks_today}  last pick {_ago(agent.last_pick_at)}")
    for pool in snapshot.pools:
        rotation = " ".join(f"[{name}]" if name == pool.next_agent else name for name in pool.members)
        nxt = pool.next_agent or "nobody eligible"
        lines.append(f"Pool {pool.name} ({pool.strategy}): {rotation}  next: {nxt}")
    return "\n".join(lines)


def _ping() -> list[str] | None:
    """Names of the Celery workers that answer a ping within PING_SECONDS; None when the broker is unreachable."""
    from workers.celery_app import app as celery_app

    try:
        replies = celery_app.control.ping(timeout=PING_SECONDS)
    except Exception:  # the broker is down or refuses us: say so, the rest of the status still stands
        return None
    return [name for reply in replies or [] for name in reply]


def _broker_depth(queue: str) -> int | None:
    """The delivery queue's length asked of the broker itself (a passive declare: RabbitMQ or another Redis)."""
    from workers.celery_app import app as celery_app

    try:
        with celery_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=int(PING_SECONDS))
            channel: Any = connection.default_channel  # kombu's channels all take a passive queue_declare
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception:  # unreachable broker, or no such queue yet: the depth is unknown, the status still stands
        return None


def status(
    watch: Annotated[bool, typer.Option("--watch", help=f"refresh every {WATCH_SECONDS:g} s until Ctrl-C")] = False,
) -> None:
    """The router at a glance: Redis, workers, queue, waiting leads, budget, pause, agents, dead letters."""
    from router.cli.settings import redis_source, services_or_exit
    from workers.operator.snapshot import SnapshotReader

    services = services_or_exit()
    source = RedisSource(*redis_source(services.settings))
    reader = SnapshotReader.for_services(services)
    try:
        while True:
            snapshot = reader.take()
            if snapshot.queue_depth is None:
                snapshot.queue_depth = _broker_depth(services.settings.celery_queue)
            text = render(snapshot, redis=source, workers=_ping())
            if not watch:
                typer.echo(text)
                return
            typer.echo("\x1b[2J\x1b[H" + text + f"\n\n(every {WATCH_SECONDS:g} s; Ctrl-C to stop)")
            time.sleep(WATCH_SECONDS)
    except KeyboardInterrupt:
        return
    finally:
        services.close()


def register(app: typer.Typer) -> None:
    app.command("status")(status)
