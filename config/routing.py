"""The routing file: agents, pools and rules, validated with pydantic.

A routing file is TOML (`.toml`) or YAML (`.yaml`/`.yml`); `ROUTER_AGENTS` stays the one-pool shortcut.
`load_routing` raises `RoutingConfigError` whose message has one line per mistake, each naming the key path
and, where it can be found, the line of the file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.conditions import Condition
from config.routing_lines import locate_toml, locate_yaml
from config.routing_models import (
    DAYS,
    AgentConfig,
    PoolConfig,
    Problem,
    RoutingConfig,
    RuleConfig,
    ScheduleConfig,
)

__all__ = [
    "DAYS",
    "AgentConfig",
    "Condition",
    "PoolConfig",
    "RoutingConfig",
    "RoutingConfigError",
    "RuleConfig",
    "ScheduleConfig",
    "load_routing",
]


class RoutingConfigError(Exception):
    """The routing file is unreadable or invalid; the message has one line per mistake."""


#: The last configuration validated in this process, by what it was made of (the file's path and text, the
#: agents): the same inputs give the same frozen configuration, so it is not validated again. A worker's pool
#: children inherit what the main process validated at start-up (validation touches megabytes of pydantic's
#: code, which every process would otherwise page in for itself).
_last: tuple[tuple[str | None, str, tuple[str, ...]], RoutingConfig] | None = None


def load_routing(*, path: str | None, agents: list[str]) -> RoutingConfig:
    """Read and validate the routing file; with no file, one round-robin pool "default" of `agents`.

    With a file, `agents` (ROUTER_AGENTS) not declared in it are added with default settings and, when the
    file declares no pools, they all form the pool "default".
    """
    global _last
    text = "" if path is None else _read(path)
    made_of = (path, text, tuple(agents))
    if _last is not None and _last[0] == made_of:
        return _last[1]
    config = _parse(path, text, agents)
    _last = (made_of, config)
    return config


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RoutingConfigError(f"routing file {path}: cannot read: {exc.strerror or exc}") from None


def _parse(path: str | None, text: str, agents: list[str]) -> RoutingConfig:
    if path is None:
        return _validate({"agents": [], "pools": []}, agents=agents, locate=None, origin="ROUTER_AGENTS")
    file = Path(path)
    if file.suffix.lower() in (".yaml", ".yml"):
        try:
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise RoutingConfigError(f"routing file {path}: invalid YAML: {exc}") from None
        locate = locate_yaml(text)
    else:
        try:
            raw = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise RoutingConfigError(f"routing file {path}: invalid TOML: {exc}") from None
        locate = locate_toml(text)
    if not isinstance(raw, dict):
        raise RoutingConfigError(f"routing file {path}: the top level must be a table/mapping")
    return _validate(_normalise(raw), agents=agents, locate=locate, origin=f"routing file {path}")


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    """Accept agents/pools as tables keyed by name (`[agents.alice]`) or as lists of tables with `name`."""
    data = dict(raw)
    for section in ("agents", "pools"):
        value = data.get(section, [])
        if isinstance(value, dict):
            data[section] = [
                {"name": name, **body} if isinstance(body, dict) else body for name, body in value.items()
            ]
    data["_keyed"] = {s: isinstance(raw.get(s), dict) for s in ("agents", "pools")}
    return data


def _validate(
    data: dict[str, Any], *, agents: list[str], locate: dict[tuple[str, ...], int] | None, origin: str
) -> RoutingConfig:
    keyed = data.pop("_keyed", {})
    declared = {entry.get("name") for entry in data.get("agents", []) if isinstance(entry, dict)}
    data["agents"] = [*data.get("agents", []), *({"name": name} for name in agents if name not in declared)]
    if not data.get("pools"):
        names = [entry.get("name") for entry in data["agents"] if isinstance(entry, dict)]
        data["pools"] = [{"name": "default", "members": names}]
    problems: list[Problem] = []
    try:
        config = RoutingConfig.model_validate(data, context={"problems": problems})
    except ValidationError as exc:
        problems = [(tuple(str(part) for part in error["loc"]), error["msg"]) for error in exc.errors()]
    else:
        if not problems:
            return config
    lines = []
    for loc, message in problems:
        path = _written_path(loc, data, keyed)
        line = _line_of(path, locate)
        where = f"{origin} line {line}" if line else origin
        lines.append(f"{where}: {'.'.join(path) or '(top level)'}: {message}")
    raise RoutingConfigError("\n".join(lines))


def _written_path(loc: tuple[str, ...], data: dict[str, Any], keyed: dict[str, bool]) -> tuple[str, ...]:
    """The key path as written: `pools.life.strategy` for keyed tables, `rules.0.pool` for lists."""
    path = [part for part in loc if not part.startswith("function-") and part not in _TYPE_TAGS]
    if len(path) >= 2 and keyed.get(path[0]) and path[1].isdigit():
        entries = data.get(path[0], [])
        index = int(path[1])
        if index < len(entries) and isinstance(entries[index], dict) and "name" in entries[index]:
            path[1] = str(entries[index]["name"])
    return tuple(path)


_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "tuple[str,str]", "date", "list", "dict"})


def _line_of(path: tuple[str, ...], locate: dict[tuple[str, ...], int] | None) -> int | None:
    """The line of the deepest part of `path` found in the file."""
    if not locate:
        return None
    for end in range(len(path), 0, -1):
        if path[:end] in locate:
            return locate[path[:end]]
    return None
