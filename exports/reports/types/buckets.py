"""The ledger rows summary reports aggregate: pre-aggregates at three grains plus the fact at the edges.

`ledger_rows(ctx, cuts=...)` is a subquery with one row per group of balance transactions and
the same columns whichever table a row comes from:

    t                    DateTime64(6, 'UTC'): an instant inside the group's day or bucket
                         (pre-aggregates) or created_at (fact)
    account_id           the group's account (one of QueryContext.account_ids in a batch)
    currency, currency_exponent, reporting_category
    payout_effective_at  Nullable: when the settling payout took effect (NULL: unsettled)
    transaction_count, gross_minor, fee_minor, net_minor, fee_count (rows with a fee != 0)

Between two cut points, rows come from, coarsest first:
- `balance_transactions_local_1d` for every whole day in the report timezone, when that is the
  timezone the account's local-day rows were cut in (the account's own: where most reports are
  cut). The query checks that itself (`_LOCAL_TZ_HELD`) and otherwise reads those days from the
  grains below, so an account whose timezone changed is exact before and after its rebuild;
- `balance_transactions_1d` for every other whole UTC day (when the caller does not group by
  local day);
- `balance_transactions_15m` for every other whole 15-minute bucket;
- `fct_balance_transactions` for the ragged rest (a report interval may start at any microsecond).
So a condition `t < cut` is exact for every cut point the caller declares, and sums equal the
fact's cent for cent. A builder that groups by local day also declares its timezone: 15-minute
buckets align with every UTC offset in use (+5:30, +5:45, DST), and if a local midnight in the
interval did not (historic LMT offsets), the whole query reads the fact. Local days are used
only where their midnights align too (a local day is a sum of whole buckets).

`ctx.preaggregated=False` reads the fact only: the baseline the benchmark and the equality test
compare against.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from exports.reports.types.base import QueryContext, account_is, to_unix_micros

# The dbt models summaries read (coarsest first), built from fct_balance_transactions.
PREAGGREGATES = ("balance_transactions_local_1d", "balance_transactions_1d", "balance_transactions_15m")

BUCKET = timedelta(minutes=15)
_BUCKET_US = 15 * 60 * 1_000_000
_MAX_DAYS_CHECKED = 40_000  # > any report span; bounds the alignment scan

Range = tuple[datetime | None, datetime]  # [lo, hi); lo None = from the beginning


def _floor(value: datetime) -> datetime:
    us = to_unix_micros(value)
    return datetime.fromtimestamp(0, timezone.utc) + timedelta(microseconds=us - us % _BUCKET_US)


def _ceil(value: datetime) -> datetime:
    floor = _floor(value)
    return floor if floor == value else floor + BUCKET


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(timezone.utc)


def local_days_align(tz_name: str, start: datetime, end: datetime) -> bool:
    """True when every local midnight of `tz_name` in [start, end) falls on a 15-minute UTC
    boundary, i.e. no bucket straddles two local days."""
    tz = ZoneInfo(tz_name)
    day = start.astimezone(tz).date()
    for _ in range(_MAX_DAYS_CHECKED):
        midnight = _local_midnight(day, tz)
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


def _split(ranges: list[Range], floor: Callable[[datetime], datetime],
           ceil: Callable[[datetime], datetime]) -> tuple[list[Range], list[Range]]:
    """(whole units, rest) of `ranges`: each range's part between the first unit boundary at or
    after lo and the last one at or before hi, and the pieces outside it (all of a range
    holding no whole unit). `floor`/`ceil` round an instant to a unit boundary."""
    whole, rest = [], []
    for lo, hi in ranges:
        aligned_lo = None if lo is None else ceil(lo)
        aligned_hi = floor(hi)
        if aligned_lo is None or aligned_lo < aligned_hi:
            whole.append((aligned_lo, aligned_hi))
            if lo is not None and lo < aligned_lo:
                rest.append((lo, aligned_lo))
            if aligned_hi < hi:
                rest.append((aligned_hi, hi))
        else:
            rest.append((lo, hi))
    return whole, rest


def _local_day_split(ranges: list[Range], tz_name: str) -> tuple[list[Range], list[Range]]:
    """(whole local days whose midnights all align with 15-minute buckets, rest); ranges open at
    the start stay whole in `rest` (the UTC grains serve them)."""
    tz = ZoneInfo(tz_name)

    def floor(value: datetime) -> datetime:
        midnight = _local_midnight(value.astimezone(tz).date(), tz)
        return midnight if midnight <= value else value  # no midnight found: no whole day

    def ceil(value: datetime) -> datetime:
        midnight = floor(value)
        return midnight if midnight == value else _local_midnight(value.astimezone(tz).date() + timedelta(days=1), tz)

    bounded = [r for r in ranges if r[0] is not None]
    whole, rest = _split(bounded, floor, ceil)
    aligned = [(lo, hi) for lo, hi in whole if local_days_align(tz_name, lo, hi + timedelta(microseconds=1))]
    rest += [r for r in whole if r not in aligned] + [r for r in ranges if r[0] is None]
    return aligned, rest


def _ranges_sql(column: str, ranges: list[Range], prefix: str, params: dict[str, Any]) -> str:
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


def _local_days_sql(ranges: list[Range], tz_name: str, params: dict[str, Any]) -> str:
    tz = ZoneInfo(tz_name)
    terms = []
    for i, (lo, hi) in enumerate(ranges):
        assert lo is not None
        params[f"l{i}_lo"] = lo.astimezone(tz).date()
        params[f"l{i}_hi"] = hi.astimezone(tz).date()
        terms.append(f"(local_day >= {{l{i}_lo:Date}} AND local_day < {{l{i}_hi:Date}})")
    return "(" + " OR ".join(terms) + ")"


class _Grains:
    """The UTC grains' ranges of one set of report ranges: whole UTC days (1d), whole buckets
    (15m), the rest (fact)."""

    def __init__(self, ranges: list[Range], utc_days: bool):
        self.buckets, self.facts = _split(ranges, _floor, _ceil)
        self.days: list[Range] = []
        if utc_days:
            self.days, self.buckets = _split(self.buckets, _day_floor, _day_ceil)


def _where(column: str, prefix: str, edges: list[Range], fallback: list[Range], params: dict[str, Any],
           fallback_condition: str) -> str | None:
    """Condition on `column` selecting the `edges` ranges, and the `fallback` ones unless the
    local-day rows serve them; None when it selects nothing."""
    terms = []
    if edges:
        terms.append(_ranges_sql(column, edges, f"{prefix}e", params))
    if fallback:
        terms.append(f"({fallback_condition} AND {_ranges_sql(column, fallback, f'{prefix}g', params)})")
    return "(" + " OR ".join(terms) + ")" if terms else None


def ledger_rows(ctx: QueryContext, *, cuts: list[datetime], open_start: bool = False,
                local_days: bool = False, fact_only: bool = False, payouts: bool = False,
                where: tuple[str, ...] = ()) -> tuple[str, dict[str, Any]]:
    """(subquery SQL, its parameters) of ledger rows of the account (each account of a batch)
    in (-inf if open_start else cuts[0], cuts[-1]). `where` are extra conditions on
    reporting_category/currency (written with the column names above); `fact_only` forces the
    fact (e.g. a filter on a column the pre-aggregate does not have); `payouts` fills payout_effective_at on fact rows (a join the
    other summaries need not pay for; without it the column is NULL there)."""
    cuts = sorted(set(cuts))
    params: dict[str, Any] = {}
    bounds: list[datetime | None] = ([None] if open_start else []) + cuts
    segments: list[Range] = list(zip(bounds, bounds[1:]))
    use_buckets = ctx.preaggregated and not fact_only and not (
        local_days and not local_days_align(ctx.timezone, cuts[0], cuts[-1]))
    if use_buckets:
        local, edges = _local_day_split(segments, ctx.timezone)
    else:
        local, edges = [], [(bounds[0], cuts[-1])]
    # The local-day rows serve `local` only if they were cut in the report timezone; else the
    # UTC grains read those ranges too (`fallback`).
    on_edges = _Grains(edges, utc_days=not local_days) if use_buckets else None
    on_local = _Grains(local, utc_days=not local_days)
    facts_edges = on_edges.facts if on_edges else edges
    params["local_tz"] = ctx.timezone
    account = account_is(ctx, "account_id")
    # The row's account has no local-day rows in the report timezone (one timezone per account:
    # the dbt model's pre_hook). A set per query, not a scalar per account, so one query serves
    # a batch of accounts.
    held_elsewhere = (f"account_id NOT IN (SELECT account_id FROM {ctx.marts}.balance_transactions_local_1d "
                      f"WHERE {account} AND timezone = {{local_tz:String}})")
    extra = "".join(f" AND {w}" for w in where)
    columns = ("account_id, currency, currency_exponent, reporting_category, payout_effective_at, "
               "transaction_count, gross_minor, fee_minor, net_minor, fee_count")
    parts = []
    if local:
        parts.append(f"""SELECT toDateTime64(first_bucket_start, 6, 'UTC') AS t, {columns}
    FROM {ctx.marts}.balance_transactions_local_1d
    WHERE {account} AND timezone = {{local_tz:String}}
      AND {_local_days_sql(local, ctx.timezone, params)}{extra}""")
    if on_edges:
        days = _where("toDateTime64(day, 6, 'UTC')", "d", on_edges.days, on_local.days, params, held_elsewhere)
        if days:
            parts.append(f"""SELECT toDateTime64(day, 6, 'UTC') AS t, {columns}
    FROM {ctx.marts}.balance_transactions_1d
    WHERE {account} AND {days}{extra}""")
        buckets = _where("bucket_start", "b", on_edges.buckets, on_local.buckets, params, held_elsewhere)
        if buckets:
            parts.append(f"""SELECT toDateTime64(bucket_start, 6, 'UTC') AS t, {columns}
    FROM {ctx.marts}.balance_transactions_15m
    WHERE {account} AND {buckets}{extra}""")
    facts = _where("created_at", "f", facts_edges, on_local.facts, params, held_elsewhere)
    if facts:
        payout_at = ("if(ifNull(f.automatic_payout_id, '') = '', NULL, po.created_at)" if payouts
                     else "CAST(NULL AS Nullable(DateTime64(6, 'UTC')))")
        payout_join = f"""
    LEFT JOIN (SELECT payout_id, created_at FROM {ctx.marts}.fct_payouts
               WHERE {account}) AS po
        ON po.payout_id = f.automatic_payout_id""" if payouts else ""
        parts.append(f"""SELECT f.created_at AS t, f.account_id AS account_id, f.currency AS currency,
           f.currency_exponent AS currency_exponent, f.reporting_category AS reporting_category,
           {payout_at} AS payout_effective_at, toUInt64(1) AS transaction_count, f.gross_minor AS gross_minor, f.fee_minor AS fee_minor,
           f.net_minor AS net_minor, toUInt64(f.fee_minor != 0) AS fee_count
    FROM (SELECT * FROM {ctx.marts}.fct_balance_transactions
          WHERE {account} AND {facts}) AS f{payout_join}
    WHERE 1{extra}""")
    if not parts:  # an empty interval
        parts.append(f"SELECT toDateTime64(0, 6, 'UTC') AS t, {columns} FROM {ctx.marts}.balance_transactions_1d WHERE 0")
    return "(\n    " + "\n    UNION ALL\n    ".join(parts) + "\n)", params


def settled_rows(ctx: QueryContext, *, where: tuple[str, ...]) -> str:
    """Subquery of the account's ledger groups (ledger_rows' columns) from every UTC day of the
    daily grain, for conditions on payout_effective_at: which payout settled a transaction does
    not depend on when the transaction was created, so no day is left out. A group's
    payout_effective_at is its payout's created_at (fct_payouts), as the fact-based join reads it."""
    return f"""(
    SELECT toDateTime64(day, 6, 'UTC') AS t, account_id, currency, currency_exponent, reporting_category,
           payout_effective_at, transaction_count, gross_minor, fee_minor, net_minor, fee_count
    FROM {ctx.marts}.balance_transactions_1d
    WHERE {account_is(ctx, "account_id")}{"".join(f" AND {w}" for w in where)}
)"""
