"""The router's Redis Lua scripts: one `<name>.lua` file per script in this folder, loaded here and only here.

Each file starts with a header saying what its KEYS and ARGV hold. Every key a script touches is passed in KEYS
(the caller builds them with `workers.store.keys.Keys`), never built from ARGV, and every key of one router
carries the same hash tag: so each script runs on Redis Cluster too.

`pick.lua` is completed by one strategy file (`strategy_<name>.lua`), spliced in at its `--@STRATEGY@` marker;
scripts that take a slot from the shared rate limiter get `rate_slot.lua` (functions) at their `--@RATE_SLOT@`,
those that mark a lead `sending` get `mark_sending.lua` at `--@MARK_SENDING@`, and those that settle delivery runs
get `settle_one.lua` at `--@SETTLE@`.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Literal, get_args

import redis.asyncio
from redis.commands.core import AsyncScript, Script

from config.routing_models import Strategy
from workers.store.connections import RedisClient

__all__ = ["FRAGMENTS", "SCRIPTS", "STRATEGIES", "ScriptName", "load_async_script", "load_script", "script_source"]

ScriptName = Literal[
    "agent_set",
    "batch_claim",
    "batch_settle",
    "callback_apply",
    "dead_purge",
    "dead_replay",
    "delivery_begin",
    "delivery_claim",
    "delivery_resume",
    "delivery_settle",
    "fetch_accept",
    "fetch_fill",
    "fetch_retry",
    "lead_accept",
    "lead_bury",
    "lead_intake",
    "lead_transition",
    "lead_unlock",
    "outcome_add",
    "outcome_claim_due",
    "outcome_retry",
    "outcome_settle",
    "parked_claim_due",
    "pending_claim_expired",
    "pick",
    "rate_acquire",
    "reservation_release",
    "retention_drop",
    "retention_shrink",
    "routing_sync",
]
SCRIPTS: tuple[ScriptName, ...] = get_args(ScriptName)
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
_MARKER = "--@STRATEGY@"
#: Markers at which scripts splice in a fragment file (functions shared by several scripts).
_SPLICES = {"--@RATE_SLOT@": "rate_slot", "--@MARK_SENDING@": "mark_sending", "--@SETTLE@": "settle_one"}
#: Files that are parts of scripts, not scripts.
FRAGMENTS = tuple(_SPLICES.values())


@cache
def _read(filename: str) -> str:
    return resources.files(__name__).joinpath(filename).read_text(encoding="utf-8")


def script_source(name: ScriptName, *, strategy: Strategy | None = None) -> str:
    """The text of a script; `pick` needs a strategy, which is spliced in, and no other script takes one."""
    text = _read(f"{name}.lua")
    if (strategy is None) != (_MARKER not in text):
        raise ValueError(f"script {name!r} {'needs' if strategy is None else 'takes no'} strategy")
    for marker, fragment in _SPLICES.items():
        if marker in text:
            text = text.replace(marker, _read(f"{fragment}.lua"))
    return text if strategy is None else text.replace(_MARKER, _read(f"strategy_{strategy}.lua"))


def load_script(client: RedisClient, name: ScriptName, *, strategy: Strategy | None = None) -> Script:
    """A callable script bound to `client` (no round trip: Redis learns it on first use, by its SHA)."""
    return client.register_script(script_source(name, strategy=strategy))


def load_async_script(client: redis.asyncio.Redis, name: ScriptName) -> AsyncScript:
    """`load_script` for a `redis.asyncio` client (the API's intake)."""
    return client.register_script(script_source(name))
