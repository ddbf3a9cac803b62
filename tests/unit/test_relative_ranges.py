from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from exports.reports.relative import RELATIVE_RANGES, resolve_relative_range

UTC = timezone.utc
# Wednesday 2024-11-13 10:00 UTC
NOW = datetime(2024, 11, 13, 10, 0, tzinfo=UTC)


def local(start: datetime, end: datetime, tz: str) -> tuple[str, str]:
    zone = ZoneInfo(tz)
    return start.astimezone(zone).isoformat(), end.astimezone(zone).isoformat()


@pytest.mark.parametrize("name, first, end", [
    ("yesterday", "2024-11-12", "2024-11-13"),
    ("last_7_days", "2024-11-06", "2024-11-13"),
    ("last_30_days", "2024-10-14", "2024-11-13"),
    ("last_week", "2024-11-04", "2024-11-11"),
    ("last_month", "2024-10-01", "2024-11-01"),
    ("month_to_date", "2024-11-01", "2024-11-13"),
    ("last_quarter", "2024-07-01", "2024-10-01"),
    ("quarter_to_date", "2024-10-01", "2024-11-13"),
    ("year_to_date", "2024-01-01", "2024-11-13"),
    ("last_year", "2023-01-01", "2024-01-01"),
])
def test_each_range_in_utc(name, first, end):
    start, stop = resolve_relative_range(name, "UTC", NOW)
    assert (start, stop) == (datetime.fromisoformat(first).replace(tzinfo=UTC),
                             datetime.fromisoformat(end).replace(tzinfo=UTC))


def test_every_name_is_covered():
    assert len(RELATIVE_RANGES) == 10
    for name in RELATIVE_RANGES:
        start, end = resolve_relative_range(name, "Europe/Berlin", NOW)
        assert start < end <= NOW


def test_berlin_october_month_spans_the_25_hour_day():
    start, end = resolve_relative_range("last_month", "Europe/Berlin", NOW)
    # 1 October 00:00 CEST (+02:00) to 1 November 00:00 CET (+01:00)
    assert start == datetime(2024, 9, 30, 22, tzinfo=UTC)
    assert end == datetime(2024, 10, 31, 23, tzinfo=UTC)
    assert end - start == timedelta(days=31, hours=1)


def test_berlin_dst_days_are_23_and_25_hours():
    autumn = resolve_relative_range("yesterday", "Europe/Berlin", datetime(2024, 10, 28, 12, tzinfo=UTC))
    assert autumn[1] - autumn[0] == timedelta(hours=25)
    spring = resolve_relative_range("yesterday", "Europe/Berlin", datetime(2024, 4, 1, 12, tzinfo=UTC))
    assert spring[1] - spring[0] == timedelta(hours=23)


def test_tokyo_last_month_is_tokyos_month():
    # 2024-11-30 20:00 UTC is already 1 December in Tokyo.
    start, end = resolve_relative_range("last_month", "Asia/Tokyo", datetime(2024, 11, 30, 20, tzinfo=UTC))
    assert local(start, end, "Asia/Tokyo") == ("2024-11-01T00:00:00+09:00", "2024-12-01T00:00:00+09:00")
    assert start == datetime(2024, 10, 31, 15, tzinfo=UTC)


def test_new_york_yesterday_uses_local_date():
    # 2024-11-13 03:00 UTC is still 12 November in New York.
    start, end = resolve_relative_range("yesterday", "America/New_York", datetime(2024, 11, 13, 3, tzinfo=UTC))
    assert local(start, end, "America/New_York") == ("2024-11-11T00:00:00-05:00", "2024-11-12T00:00:00-05:00")


def test_last_quarter_wraps_the_year():
    start, end = resolve_relative_range("last_quarter", "UTC", datetime(2024, 2, 10, tzinfo=UTC))
    assert (start.date().isoformat(), end.date().isoformat()) == ("2023-10-01", "2024-01-01")


def test_unknown_name():
    with pytest.raises(ValueError, match="last_month"):
        resolve_relative_range("last_fortnight", "UTC", NOW)
