"""Cron due times are evaluated on the template's wall clock: DST moves the UTC instant, never the
local time, and every due time comes out exactly once."""

from datetime import UTC, datetime, timedelta

import pytest

from exports.errors import InvalidParameter
from exports.scheduling.scheduler import due_times_between, latest_due_time, next_due_time
from exports.scheduling.templates import validate_cron, validate_timezone

BERLIN_DAILY_6 = ("0 6 * * *", "Europe/Berlin")


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_berlin_6am_across_autumn_dst_change_2026():
    # DST ends Sunday 2026-10-25 03:00 CEST -> 02:00 CET.
    due = due_times_between(*BERLIN_DAILY_6, utc(2026, 10, 23, 12), utc(2026, 10, 27, 12))
    assert due == [utc(2026, 10, 24, 4), utc(2026, 10, 25, 5), utc(2026, 10, 26, 5), utc(2026, 10, 27, 5)]


def test_berlin_6am_across_spring_dst_change_2026():
    # DST starts Sunday 2026-03-29 02:00 CET -> 03:00 CEST.
    due = due_times_between(*BERLIN_DAILY_6, utc(2026, 3, 27, 12), utc(2026, 3, 30, 12))
    assert due == [utc(2026, 3, 28, 5), utc(2026, 3, 29, 4), utc(2026, 3, 30, 4)]


def test_interval_is_open_at_start_and_closed_at_end():
    after = utc(2026, 1, 10, 5)  # exactly a due time (06:00 CET)
    assert due_times_between(*BERLIN_DAILY_6, after, utc(2026, 1, 11, 5)) == [utc(2026, 1, 11, 5)]
    assert due_times_between(*BERLIN_DAILY_6, after, utc(2026, 1, 11, 4, 59)) == []


def test_time_in_the_autumn_overlap_runs_once_and_in_the_spring_gap_still_runs():
    # 02:30 happens twice on 2026-10-25 in Berlin: run at the first one only.
    autumn = due_times_between("30 2 * * *", "Europe/Berlin", utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    assert autumn == [utc(2026, 10, 25, 0, 30)]
    # 02:30 does not exist on 2026-03-29: it runs once, shifted by the gap (03:30 CEST = 01:30 UTC).
    spring = due_times_between("30 2 * * *", "Europe/Berlin", utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
    assert spring == [utc(2026, 3, 29, 1, 30)]


def test_latest_and_next_due_time():
    assert latest_due_time(*BERLIN_DAILY_6, utc(2026, 10, 20), utc(2026, 10, 26, 12)) == utc(2026, 10, 26, 5)
    assert latest_due_time(*BERLIN_DAILY_6, utc(2026, 10, 26, 5), utc(2026, 10, 26, 12)) is None
    assert next_due_time(*BERLIN_DAILY_6, utc(2026, 10, 24, 4)) == utc(2026, 10, 25, 5)
    assert next_due_time("0 6 1 * *", "Asia/Tokyo", utc(2026, 1, 31)) == utc(2026, 1, 31, 21)


def test_frequent_schedule_is_capped_per_call():
    due = due_times_between("* * * * *", "UTC", utc(2026, 1, 1), utc(2026, 1, 2), limit=100)
    assert len(due) == 100
    assert due[0] == utc(2026, 1, 1, 0, 1) and due[-1] - due[0] == timedelta(minutes=99)


@pytest.mark.parametrize("expression", ["61 * * * *", "0 6 * *", "0 6 * * * *", "every day", ""])
def test_bad_cron_names_the_field(expression):
    with pytest.raises(InvalidParameter) as error:
        validate_cron(expression)
    assert error.value.param == "schedule_cron"


def test_bad_timezone_names_the_field():
    assert validate_timezone("Asia/Tokyo") == "Asia/Tokyo"
    with pytest.raises(InvalidParameter) as error:
        validate_timezone("Mars/Olympus_Mons")
    assert error.value.param == "timezone"
