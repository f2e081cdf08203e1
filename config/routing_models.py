"""The routing configuration's models: agents, schedules, pools, rules; cross-checked as a whole.

Loaded from a file by `config.routing.load_routing`; import the names from `config.routing`.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config.conditions import Condition
from config.sources_models import SourceConfig, source_problems

__all__ = [
    "DAYS",
    "AgentConfig",
    "Condition",
    "PoolConfig",
    "Problem",
    "RoutingConfig",
    "RuleConfig",
    "ScheduleConfig",
]

Strategy = Literal["round_robin", "weighted", "least_busy", "longest_idle"]
WhenEmpty = Literal["wait", "overflow", "ryng"]
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NAME = r"^[A-Za-z0-9_.@+-]{1,64}$"
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleConfig(_Model):
    """When an agent works: days and hours in their time zone, minus holidays and leave."""

    timezone: str = "UTC"
    days: tuple[str, ...] = DAYS
    hours: tuple[str, ...] = ("00:00-24:00",)
    holidays: tuple[date, ...] = ()
    leave: tuple[tuple[date, date], ...] = Field(default=(), description="inclusive [first, last] dates")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("days")
    @classmethod
    def _days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        days = tuple(day.lower()[:3] for day in value)
        for day in days:
            if day not in DAYS:
                raise ValueError(f"days must be among {', '.join(DAYS)}")
        return days

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for span in value:
            match = _HOURS.match(span)
            if not match:
                raise ValueError(f"{span!r} must look like 09:00-17:30")
            h1, m1, h2, m2 = (int(part) for part in match.groups())
            if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2) or (h1, m1) == (h2, m2):
                raise ValueError(f"{span!r} is not a valid span of hours")
        return value

    def spans(self) -> list[tuple[time, int]]:
        """Each span as (start, length in minutes); a span whose end is before its start runs overnight."""
        result = []
        for span in self.hours:
            h1, m1, h2, m2 = (int(part) for part in _HOURS.match(span).groups())  # type: ignore[union-attr]
            start, end = h1 * 60 + m1, h2 * 60 + m2
            result.append((time(h1, m1), (end - start) % 1440 or 1440))
        return result


class AgentConfig(_Model):
    """One Ryng agent."""

    name: str = Field(pattern=_NAME, description="Ryng username")
    id: int | None = Field(default=None, ge=0, description="numeric Ryng agent id (form-data `agent` field)")
    weight: int = Field(default=1, ge=1, le=1000)
    capacity: int = Field(default=0, ge=0, le=10_000, description="open leads at once; 0 = unlimited")
    wrap_up_seconds: float = Field(default=0.0, ge=0, le=86_400)
    schedule: ScheduleConfig | None = None
    tags: tuple[str, ...] = ()


class RuleConfig(_Model):
    """Ordered rule: the first whose condition matches a lead picks its pool."""

    name: str
    when: Condition
    pool: str


class PoolConfig(_Model):
    """A group of agents and how one is chosen among them."""

    name: str = Field(pattern=_NAME)
    members: tuple[str, ...] = ()
    tags: tuple[str, ...] = Field(default=(), description="agents carrying any of these tags join too")
    strategy: Strategy = "round_robin"
    sticky_seconds: float = Field(default=0.0, ge=0, description="repeat number → same agent within this")
    catch_up: int = Field(default=3, ge=1, le=1000, description="picks in a row, least_busy")
    when_empty: WhenEmpty = "wait"
    max_wait_seconds: float = Field(default=300.0, ge=0, le=7 * 86_400)
    retry_seconds: float = Field(default=5.0, gt=0, le=3600, description="longest wait hint while waiting")
    overflow: str | None = None


class RoutingConfig(_Model):
    """The whole routing configuration, cross-checked (members, pools and overflow chains exist)."""

    agents: tuple[AgentConfig, ...]
    pools: tuple[PoolConfig, ...]
    rules: tuple[RuleConfig, ...] = ()
    default_pool: str = "default"
    sources: tuple[SourceConfig, ...] = ()

    @model_validator(mode="after")
    def _coherent(self, info: ValidationInfo) -> RoutingConfig:
        problems = _problems(self)
        sink = info.context.get("problems") if isinstance(info.context, dict) else None
        if isinstance(sink, list):
            sink.extend(problems)
        elif problems:
            raise ValueError("; ".join(f"{'.'.join(path)}: {message}" for path, message in problems))
        return self

    def pool(self, name: str) -> PoolConfig:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(name)

    def agent(self, name: str) -> AgentConfig | None:
        for agent in self.agents:
            if agent.name == name:
                return agent
        return None

    def members(self, pool: str) -> list[str]:
        """The pool's agents: named members, then agents carrying one of its tags, in declaration order."""
        config = self.pool(pool)
        names = list(config.members)
        for agent in self.agents:
            if agent.name not in names and set(agent.tags) & set(config.tags):
                names.append(agent.name)
        return names


Problem = tuple[tuple[str, ...], str]


def _problems(config: RoutingConfig) -> list[Problem]:
    """Cross-references that one model alone cannot check, each with the key path it concerns."""
    problems: list[Problem] = []
    agents = [agent.name for agent in config.agents]
    pools = [pool.name for pool in config.pools]
    for index, name in enumerate(agents):
        if name in agents[:index]:
            problems.append((("agents", str(index)), f"agent {name!r} is declared twice"))
    for index, pool in enumerate(config.pools):
        path = ("pools", str(index))
        if pool.name in pools[:index]:
            problems.append((path, f"pool {pool.name!r} is declared twice"))
        unknown = [name for name in pool.members if name not in agents]
        if unknown:
            problems.append(((*path, "members"), f"unknown agents: {', '.join(unknown)}"))
        if pool.overflow is not None and pool.overflow not in pools:
            problems.append(((*path, "overflow"), f"unknown pool {pool.overflow!r}"))
        if pool.when_empty == "overflow" and pool.overflow is None:
            problems.append(((*path, "overflow"), "when_empty = \"overflow\" needs an overflow pool"))
        if pool.when_empty == "ryng" and pool.overflow is not None:
            problems.append(((*path, "overflow"), "is never used with when_empty = \"ryng\"; remove one of them"))
        if pool.tags and not pool.members and not config.members(pool.name):
            problems.append(((*path, "tags"), f"no agent carries any of the tags {', '.join(pool.tags)}"))
    if config.default_pool not in pools:
        problems.append((("default_pool",), f"{config.default_pool!r} is not a declared pool"))
    for index, rule in enumerate(config.rules):
        if rule.pool not in pools:
            problems.append((("rules", str(index), "pool"), f"unknown pool {rule.pool!r}"))
    problems.extend(source_problems(config.sources, pools=pools, agents=agents))
    overflow = {pool.name: pool.overflow for pool in config.pools}
    for index, pool in enumerate(config.pools):
        seen, current = {pool.name}, pool.overflow
        while current is not None and current in overflow:
            if current in seen:
                problems.append((("pools", str(index), "overflow"), f"overflow loops back to {current!r}"))
                break
            seen.add(current)
            current = overflow[current]
    return problems
