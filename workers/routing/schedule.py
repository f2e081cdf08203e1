"""Shifts: whether an agent is on shift at an instant, in the agent's own time zone.

A span of hours belongs to the day it starts on (22:00-06:00 on Friday runs into Saturday morning); a holiday
or leave day cancels the spans that start on it. Computed in Python per pick and handed to the pick script.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from config.routing import DAYS, RoutingConfig, ScheduleConfig

__all__ = ["next_start", "off_shift", "on_shift"]

_HORIZON_DAYS = 15


def _works_on(schedule: ScheduleConfig, day: date) -> bool:
    if DAYS[day.weekday()] not in schedule.days or day in schedule.holidays:
        return False
    return not any(first <= day <= last for first, last in schedule.leave)


def _shifts(
    schedule: ScheduleConfig, around: datetime, *, days: range
) -> Iterable[tuple[datetime, datetime]]:
    """(start, end) of each shift in UTC, for local days `around` + each offset in `days`."""
    zone = ZoneInfo(schedule.timezone)
    local_day = around.astimezone(zone).date()
    for offset in days:
        day = local_day + timedelta(days=offset)
        if not _works_on(schedule, day):
            continue
        for start, minutes in schedule.spans():
            begin = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
            yield begin, begin + timedelta(minutes=minutes)


def on_shift(schedule: ScheduleConfig | None, now: datetime) -> bool:
    """True when `now` (aware) falls inside one of the schedule's shifts; no schedule means always."""
    if schedule is None:
        return True
    return any(begin <= now < end for begin, end in _shifts(schedule, now, days=range(-1, 1)))


def next_start(schedule: ScheduleConfig | None, now: datetime) -> datetime | None:
    """`now` when on shift, else the start of the next shift within about two weeks (None if none)."""
    if on_shift(schedule, now):
        return now
    assert schedule is not None
    starts = [begin for begin, _ in _shifts(schedule, now, days=range(0, _HORIZON_DAYS)) if begin > now]
    return min(starts, default=None)


def off_shift(routing: RoutingConfig, names: Iterable[str], now: datetime) -> list[str]:
    """The agents among `names` that are off shift at `now` (agents without a schedule never are)."""
    result = []
    for name in names:
        agent = routing.agent(name)
        if agent is not None and not on_shift(agent.schedule, now):
            result.append(name)
    return result
