"""Schedules: shifts in the agent's time zone, overnight spans, holidays and leave, next start."""

from __future__ import annotations

from datetime import UTC, date, datetime

from config.routing import ScheduleConfig
from workers.routing.schedule import next_start, on_shift

KOLKATA = ScheduleConfig(timezone="Asia/Kolkata", days=("mon", "tue", "wed", "thu", "fri"),
                         hours=("09:00-13:00", "14:00-18:00"), holidays=(date(2025, 12, 25),),
                         leave=((date(2025, 12, 29), date(2025, 12, 30)),))


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_no_schedule_is_always_on() -> None:
    assert on_shift(None, utc(2025, 12, 25, 3, 0))


def test_hours_are_read_in_the_agents_time_zone() -> None:
    # Monday 2025-12-22: 09:00 IST is 03:30 UTC.
    assert not on_shift(KOLKATA, utc(2025, 12, 22, 3, 29))
    assert on_shift(KOLKATA, utc(2025, 12, 22, 3, 30))
    assert not on_shift(KOLKATA, utc(2025, 12, 22, 7, 45))     # lunch 13:15 IST
    assert on_shift(KOLKATA, utc(2025, 12, 22, 12, 29))        # 17:59 IST
    assert not on_shift(KOLKATA, utc(2025, 12, 22, 12, 30))    # 18:00 IST


def test_weekends_holidays_and_leave_are_off() -> None:
    assert not on_shift(KOLKATA, utc(2025, 12, 20, 6, 0))      # Saturday
    assert not on_shift(KOLKATA, utc(2025, 12, 25, 6, 0))      # holiday
    assert not on_shift(KOLKATA, utc(2025, 12, 30, 6, 0))      # leave
    assert on_shift(KOLKATA, utc(2025, 12, 31, 6, 0))


def test_overnight_spans_belong_to_the_day_they_start() -> None:
    night = ScheduleConfig(timezone="UTC", days=("fri",), hours=("22:00-06:00",))
    assert on_shift(night, utc(2025, 12, 19, 23, 0))   # Friday night
    assert on_shift(night, utc(2025, 12, 20, 5, 59))   # Saturday morning, Friday's shift
    assert not on_shift(night, utc(2025, 12, 20, 22, 0))


def test_next_start_skips_lunch_weekend_and_holiday() -> None:
    assert next_start(KOLKATA, utc(2025, 12, 22, 7, 45)) == utc(2025, 12, 22, 8, 30)
    assert next_start(KOLKATA, utc(2025, 12, 19, 13, 0)) == utc(2025, 12, 22, 3, 30)   # Fri evening → Mon
    assert next_start(KOLKATA, utc(2025, 12, 24, 13, 0)) == utc(2025, 12, 26, 3, 30)   # skips Christmas
    now = utc(2025, 12, 22, 5, 0)
    assert next_start(KOLKATA, now) == now
