"""How summaries split an interval between the pre-aggregates' grains (account-local days, UTC
days, 15-minute buckets) and the fact."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from exports.reports.types.buckets import (
    _ceil, _day_ceil, _day_floor, _floor, _local_day_split, _split, local_days_align,
)

UTC = timezone.utc


def _segments(cuts: list[datetime], open_start: bool):
    bounds = ([None] if open_start else []) + cuts
    return _split(list(zip(bounds, bounds[1:])), _floor, _ceil)


def _split_days(ranges):
    return _split(ranges, _day_floor, _day_ceil)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_ragged_edges_come_from_the_fact_and_whole_buckets_from_the_preaggregate():
    buckets, facts = _segments([t("2026-10-01 04:44:01.000007"), t("2026-10-02 13:07:11")], open_start=False)
    assert buckets == [(t("2026-10-01 04:45"), t("2026-10-02 13:00"))]
    assert facts == [(t("2026-10-01 04:44:01.000007"), t("2026-10-01 04:45")),
                     (t("2026-10-02 13:00"), t("2026-10-02 13:07:11"))]


def test_aligned_edges_read_no_fact_and_every_cut_is_respected():
    buckets, facts = _segments([t("2026-10-01 00:00"), t("2026-10-02 00:15")], open_start=True)
    assert buckets == [(None, t("2026-10-01 00:00")), (t("2026-10-01 00:00"), t("2026-10-02 00:15"))]
    assert facts == []


def test_an_interval_inside_one_bucket_is_read_from_the_fact():
    start, end = t("2026-10-20 10:01:02"), t("2026-10-20 10:13:59")
    assert _segments([start, end], open_start=False) == ([], [(start, end)])


def test_ranges_cover_the_interval_exactly_once():
    cuts = [t("2026-03-08 06:59:59.5"), t("2026-03-09 00:00:00.25"), t("2026-03-10 11:30")]
    buckets, facts = _segments(cuts, open_start=False)
    pieces = sorted(buckets + facts)
    assert pieces[0][0] == cuts[0] and pieces[-1][1] == cuts[-1]
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    assert all(b[0].minute % 15 == 0 and b[0].second == 0 and b[0].microsecond == 0 for b in buckets)


def test_local_days_align_with_15_minute_buckets_in_every_modern_zone_but_not_lmt():
    start, end = t("2026-01-01 00:00"), t("2027-01-01 00:00")
    for zone in ("Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "Australia/Lord_Howe",
                 "Pacific/Chatham", "America/St_Johns"):
        assert local_days_align(zone, start, end), zone
    # Kolkata kept local mean time (+5:53:20) until 1941: its midnights were not on the grid.
    assert not local_days_align("Asia/Kolkata", t("1900-01-01 00:00"), t("1900-01-03 00:00"))
    assert local_days_align("UTC", start, start + timedelta(minutes=1))


def test_whole_utc_days_are_split_off_the_bucket_ranges():
    days, rest = _split_days([(t("2026-10-01 04:45"), t("2026-10-04 13:00")), (None, t("2026-09-01 00:15"))])
    assert days == [(t("2026-10-02 00:00"), t("2026-10-04 00:00")), (None, t("2026-09-01 00:00"))]
    assert rest == [(t("2026-10-01 04:45"), t("2026-10-02 00:00")), (t("2026-10-04 00:00"), t("2026-10-04 13:00")),
                    (t("2026-09-01 00:00"), t("2026-09-01 00:15"))]
    assert _split_days([(t("2026-10-01 04:45"), t("2026-10-01 23:00"))]) == (
        [], [(t("2026-10-01 04:45"), t("2026-10-01 23:00"))])


def test_whole_local_days_are_split_off_at_the_accounts_midnights():
    # Kolkata's midnight is 18:30 UTC the day before.
    lo, hi = t("2026-10-01 04:44:01"), t("2026-10-05 13:07")
    local, rest = _local_day_split([(lo, hi)], "Asia/Kolkata")
    assert local == [(t("2026-10-01 18:30"), t("2026-10-04 18:30"))]
    assert rest == [(lo, t("2026-10-01 18:30")), (t("2026-10-04 18:30"), hi)]
    # A DST change: New York's midnights are 05:00 UTC before 2026-03-08 and 04:00 after.
    local, rest = _local_day_split([(t("2026-03-07 12:00"), t("2026-03-10 12:00"))], "America/New_York")
    assert local == [(t("2026-03-08 05:00"), t("2026-03-10 04:00"))]


def test_no_local_days_for_open_ranges_short_ranges_or_unaligned_midnights():
    open_range, short = (None, t("2026-10-01 00:00")), (t("2026-10-01 19:00"), t("2026-10-02 18:00"))
    assert _local_day_split([open_range, short], "Asia/Kolkata") == ([], [short, open_range])
    lmt = (t("1900-01-01 00:00"), t("1900-01-05 00:00"))  # Kolkata's local mean time, +5:53:20
    local, rest = _local_day_split([lmt], "Asia/Kolkata")
    assert local == [] and sorted(rest, key=lambda r: r[0])[0][0] == lmt[0]
    assert sum(((b - a) for a, b in rest), timedelta()) == lmt[1] - lmt[0]
