"""The ledger rows summary reports aggregate: 15-minute pre-aggregates plus the fact at the edges.

`ledger_rows(ctx, cuts=...)` is a subquery with one row per group of balance transactions and
the same columns whichever table a row comes from:

    t                    DateTime64(6, 'UTC'): the bucket start (pre-aggregate) or created_at (fact)
    currency, currency_exponent, reporting_category
    payout_effective_at  Nullable: when the settling payout took effect (NULL: unsettled)
    transaction_count, gross_minor, fee_minor, net_minor, fee_count (rows with a fee != 0)

Rows come from `balance_transactions_1d` for every whole UTC day between two cut points (when the
caller does not group by local day), from `balance_transactions_15m` for every other whole
15-minute bucket, and from `fct_balance_transactions` for the ragged rest (a report interval may start at any
microsecond), so a condition `t < cut` is exact for every cut point the caller declares, and
sums equal the fact's cent for cent. A builder that groups by local day also declares its
timezone: 15-minute buckets align with every UTC offset in use (+5:30, +5:45, DST), and if a
local midnight in the interval did not (historic LMT offsets), the whole query reads the fact.

`ctx.preaggregated=False` reads the fact only: the baseline the benchmark and the equality test
compare against.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from exports.reports.types.base import QueryContext, to_unix_micros

BUCKET = timedelta(minutes=15)
_BUCKET_US = 15 * 60 * 1_000_000
_MAX_DAYS_CHECKED = 40_000  # > any report span; bounds the alignment scan


def _floor(value: datetime) -> datetime:
    us = to_unix_micros(value)
    return datetime.fromtimestamp(0, timezone.utc) + timedelta(microseconds=us - us % _BUCKET_US)


def _ceil(value: datetime) -> datetime:
    floor = _floor(value)
    return floor if floor == value else floor + BUCKET


def local_days_align(tz_name: str, start: datetime, end: datetime) -> bool:
    """True when every local midnight of `tz_name` in [start, end) falls on a 15-minute UTC
    boundary, i.e. no bucket straddles two local days."""
    tz = ZoneInfo(tz_name)
    day = start.astimezone(tz).date()
    for _ in range(_MAX_DAYS_CHECKED):
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)
        if midnight >= end:
            return True
        if midnight >= start and to_unix_micros(midnight) % _BUCKET_US:
            return False
        day += timedelta(days=1)
    return False


def _day_floor(value: datetime) -> datetime:
    return value.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def _day_ceil(value: datetime) -> datetime:
    floor = _day_floor(value)
    return floor if floor == value else floor + timedelta(days=1)


def _segments(cuts: list[datetime], open_start: bool) -> tuple[list, list]:
    """(bucket ranges, fact ranges) covering (-inf or cuts[0], cuts[-1]) split at every cut;
    a range is (lo | None, hi)."""
    bounds: list[datetime | None] = ([None] if open_start else []) + cuts
    buckets, facts = [], []
    for lo, hi in zip(bounds, bounds[1:]):
        aligned_lo = None if lo is None else _ceil(lo)
        aligned_hi = _floor(hi)
        if aligned_lo is None or aligned_lo < aligned_hi:
            buckets.append((aligned_lo, aligned_hi))
            if lo is not None and lo < aligned_lo:
                facts.append((lo, aligned_lo))
            if aligned_hi < hi:
                facts.append((aligned_hi, hi))
        else:
            facts.append((lo, hi))
    return buckets, facts


def _split_days(buckets: list) -> tuple[list, list]:
    """(whole UTC day ranges, remaining 15-minute ranges) of bucket-aligned ranges."""
    days, rest = [], []
    for lo, hi in buckets:
        day_lo = None if lo is None else _day_ceil(lo)
        day_hi = _day_floor(hi)
        if day_lo is None or day_lo < day_hi:
            days.append((day_lo, day_hi))
            if lo is not None and lo < day_lo:
                rest.append((lo, day_lo))
            if day_hi < hi:
                rest.append((day_hi, hi))
        else:
            rest.append((lo, hi))
    return days, rest


def _ranges_sql(column: str, ranges: list, prefix: str, params: dict[str, Any]) -> str:
    terms = []
    for i, (lo, hi) in enumerate(ranges):
        parts = []
        if lo is not None:
            params[f"{prefix}{i}_lo"] = to_unix_micros(lo)
            parts.append(f"{column} >= fromUnixTimestamp64Micro({{{prefix}{i}_lo:Int64}}, 'UTC')")
        params[f"{prefix}{i}_hi"] = to_unix_micros(hi)
        parts.append(f"{column} < fromUnixTimestamp64Micro({{{prefix}{i}_hi:Int64}}, 'UTC')")
        terms.append("(" + " AND ".join(parts) + ")")
    return "(" + " OR ".join(terms) + ")" if terms else "0"


def ledger_rows(ctx: QueryContext, *, cuts: list[datetime], open_start: bool = False,
                local_days: bool = False, fact_only: bool = False, payouts: bool = False,
                where: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """(subquery SQL, its parameters) of ledger rows of the account in (-inf if open_start else
    cuts[0], cuts[-1]). `where` are extra conditions on reporting_category/currency (written
    with the column names above); `fact_only` forces the fact (e.g. a filter on a column the
    pre-aggregate does not have); `payouts` fills payout_effective_at on fact rows (a join the
    other summaries need not pay for; without it the column is NULL there)."""
    cuts = sorted(set(cuts))
    params: dict[str, Any] = {}
    use_buckets = ctx.preaggregated and not fact_only and not (
        local_days and not local_days_align(ctx.timezone, cuts[0], cuts[-1]))
    days: list = []
    if use_buckets:
        buckets, facts = _segments(cuts, open_start)
        if not local_days:  # no per-local-day split: whole UTC days come from the daily rollup
            days, buckets = _split_days(buckets)
    else:
        buckets, facts = [], [(None if open_start else cuts[0], cuts[-1])]
    extra = "".join(f" AND {w}" for w in where)
    parts = []
    if days:
        parts.append(f"""SELECT toDateTime64(day, 6, 'UTC') AS t, currency, currency_exponent,
           reporting_category, payout_effective_at, transaction_count, gross_minor, fee_minor,
           net_minor, fee_count
    FROM {ctx.marts}.balance_transactions_1d
    WHERE account_id = {{account_id:String}} AND {_ranges_sql("toDateTime64(day, 6, 'UTC')", days, 'd', params)}{extra}""")
    if buckets:
        parts.append(f"""SELECT toDateTime64(bucket_start, 6, 'UTC') AS t, currency, currency_exponent,
           reporting_category, payout_effective_at, transaction_count, gross_minor, fee_minor,
           net_minor, fee_count
    FROM {ctx.marts}.balance_transactions_15m
    WHERE account_id = {{account_id:String}} AND {_ranges_sql('bucket_start', buckets, 'b', params)}{extra}""")
    if facts:
        payout_at = ("if(ifNull(f.automatic_payout_id, '') = '', NULL, po.created_at)" if payouts
                     else "CAST(NULL AS Nullable(DateTime64(6, 'UTC')))")
        payout_join = f"""
    LEFT JOIN (SELECT payout_id, created_at FROM {ctx.marts}.fct_payouts
               WHERE account_id = {{account_id:String}}) AS po
        ON po.payout_id = f.automatic_payout_id""" if payouts else ""
        parts.append(f"""SELECT f.created_at AS t, f.currency AS currency, f.currency_exponent AS currency_exponent,
           f.reporting_category AS reporting_category, {payout_at} AS payout_effective_at,
           toUInt64(1) AS transaction_count, f.gross_minor AS gross_minor, f.fee_minor AS fee_minor,
           f.net_minor AS net_minor, toUInt64(f.fee_minor != 0) AS fee_count
    FROM (SELECT * FROM {ctx.marts}.fct_balance_transactions
          WHERE account_id = {{account_id:String}} AND {_ranges_sql('created_at', facts, 'f', params)}) AS f{payout_join}
    WHERE 1{extra}""")
    return "(\n    " + "\n    UNION ALL\n    ".join(parts) + "\n)", params
