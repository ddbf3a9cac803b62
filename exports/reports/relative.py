"""Relative date ranges ("last_month", "yesterday", …) resolved to absolute intervals.

Ranges are cut at local midnights of the report's timezone, never by adding hours to a UTC
instant: a Berlin day across the October DST change is 25 hours long, and `last_month` for a
Tokyo account is Tokyo's calendar month. Only complete days are covered — the `*_to_date` ranges
end at the start of today — so a scheduled report never contains a partial day.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

RELATIVE_RANGES: tuple[str, ...] = (
    "yesterday",
    "last_7_days",
    "last_30_days",
    "last_week",
    "last_month",
    "month_to_date",
    "last_quarter",
    "quarter_to_date",
    "year_to_date",
    "last_year",
)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant local `day` starts in `tz`, as an aware UTC datetime.

    Where a DST change skips midnight itself (e.g. America/Santiago), zoneinfo resolves the
    missing wall time with the pre-transition offset; the round trip through UTC lands on the
    first real instant of the day.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(dt_timezone.utc)


def _quarter_start(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def resolve_local_days(name: str, today: date) -> tuple[date, date]:
    """[first_day, end_day) of the named range, as local calendar dates, given local `today`."""
    if name == "yesterday":
        return today - timedelta(days=1), today
    if name == "last_7_days":
        return today - timedelta(days=7), today
    if name == "last_30_days":
        return today - timedelta(days=30), today
    if name == "last_week":  # the previous ISO week, Monday to Sunday
        this_monday = today - timedelta(days=today.weekday())
        return this_monday - timedelta(days=7), this_monday
    if name == "last_month":
        first = date(today.year, today.month, 1)
        return _add_months(first, -1), first
    if name == "month_to_date":
        return date(today.year, today.month, 1), today
    if name == "last_quarter":
        first = _quarter_start(today)
        return _add_months(first, -3), first
    if name == "quarter_to_date":
        return _quarter_start(today), today
    if name == "year_to_date":
        return date(today.year, 1, 1), today
    if name == "last_year":
        return date(today.year - 1, 1, 1), date(today.year, 1, 1)
    raise ValueError(f"unknown relative range {name!r}; use one of: {', '.join(RELATIVE_RANGES)}")


def resolve_relative_range(name: str, timezone: str, now: datetime) -> tuple[datetime, datetime]:
    """(start inclusive, end exclusive) as aware UTC datetimes, cut at local midnights of
    `timezone` as of the instant `now` (aware; naive is taken as UTC)."""
    tz = ZoneInfo(timezone)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt_timezone.utc)
    first_day, end_day = resolve_local_days(name, now.astimezone(tz).date())
    return local_midnight(first_day, tz), local_midnight(end_day, tz)


def describe_interval(start: datetime | None, end: datetime | None, tz: str) -> str:
    """An interval as people read it, in `tz`: whole days as their first and last day
    ("01 Oct 2026 – 31 Oct 2026 (UTC)", the exclusive end's day not shown), one day as that day,
    anything else as times with the end marked exclusive; end-only as "balances as of ..."."""
    if end is None:
        return ""
    zone = ZoneInfo(tz)
    end_local = end.astimezone(zone)
    if start is None:
        return f"balances as of {end_local:%Y-%m-%d %H:%M} {tz}"
    start_local = start.astimezone(zone)
    if start_local.time() == end_local.time() == time.min:
        last = (end_local - timedelta(days=1)).date()
        if last == start_local.date():
            return f"{last:%a %d %b %Y} ({tz})"
        return f"{start_local:%d %b %Y} – {last:%d %b %Y} ({tz})"
    return f"{start_local:%Y-%m-%d %H:%M} – {end_local:%Y-%m-%d %H:%M} ({tz}, end exclusive)"
