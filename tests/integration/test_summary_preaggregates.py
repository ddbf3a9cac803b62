"""Summary reports served from the 15-minute pre-aggregates equal the fact-based figures, cent
for cent, for every summary type and currency, in timezones whose days are cut at :00, :30 and
:45 past the UTC hour and across DST changes, with interval edges at arbitrary microseconds
(the ragged edges come from the fact). Also: the daily marts and fees.summary agree through the
one definition of fee types (the reporting_categories seed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from exports import db, reporting_categories
from exports.reports.catalog import REPORT_TYPES
from exports.reports.engine import build_report_query, validate_report_request
from exports.warehouse import open_warehouse
from tests.fixtures.platform import run_dbt

pytestmark = pytest.mark.integration

UTC = timezone.utc
SUMMARY_TYPES = [t for t in REPORT_TYPES.values() if t.shape == "summary"]
LOCAL_DAY_TYPES = {"fees.summary", "revenue.summary"}  # rows per day in the report timezone
# Chosen by when the settling payout took effect, over every day: the daily grain only.
PAYOUT_TIME_TYPES = {"payout_reconciliation.summary"}
TIMEZONES = ("UTC", "Asia/Kolkata", "Asia/Kathmandu", "Europe/Berlin", "Australia/Lord_Howe")


def _ragged_edges(client, account: str) -> tuple[datetime, datetime]:
    """Interval edges that cut a 15-minute bucket between two of the account's transactions (one
    each side), early and late in the demo period: a bucket counted whole at an edge, or a fact
    remainder lost, changes the figures."""
    times = [r[0].replace(tzinfo=UTC) for r in client.query(
        "SELECT created_at FROM analytics.fct_balance_transactions WHERE account_id = {a:String} "
        "ORDER BY created_at", parameters={"a": account}).result_rows]
    cuts = [b for a, b in zip(times, times[1:])
            if a < b and a.replace(minute=a.minute // 15 * 15, second=0, microsecond=0)
            == b.replace(minute=b.minute // 15 * 15, second=0, microsecond=0)]
    early = next(c for c in cuts if c >= datetime(2026, 9, 12, tzinfo=UTC))
    late = next(c for c in reversed(cuts) if c < datetime(2026, 10, 31, tzinfo=UTC))
    return early, late


def _cases(start: datetime, end: datetime) -> list[tuple[str, datetime, datetime]]:
    """(timezone, start, end): ragged edges spanning DST changes (Europe 2026-10-25, Lord Howe's
    half-hour shift 10-04, America 11-01), bucket-aligned edges, and an interval inside one bucket."""
    return [(tz, start, end) for tz in TIMEZONES] + [
        ("America/New_York", datetime(2026, 10, 1, 4, tzinfo=UTC), datetime(2026, 11, 2, 5, 15, tzinfo=UTC)),
        ("Asia/Kathmandu", end - timedelta(microseconds=1), end + timedelta(microseconds=1)),
    ]


def _busiest_account(settings) -> str:
    with db.connect("source", settings) as conn:
        return conn.execute("SELECT account_id FROM balance_transactions GROUP BY 1 "
                            "ORDER BY count(DISTINCT currency) DESC, count(*) DESC LIMIT 1").fetchone()[0]


def test_summaries_from_preaggregates_equal_the_fact_for_every_type_currency_and_timezone(demo_platform):
    settings = demo_platform.settings
    account = _busiest_account(settings)
    now = demo_platform.data_available_end + timedelta(days=60)
    compared = currencies = 0
    with open_warehouse(settings, purpose="test preaggregates") as client:
        for tz, start, end in _cases(*_ragged_edges(client, account)):
            for report in SUMMARY_TYPES:
                params = {"interval_end": end.isoformat(), "timezone": tz, "columns": report.column_names}
                if report.interval != "end_only":
                    params["interval_start"] = start.isoformat()
                validated = validate_report_request(account, report.id, params, "csv", settings=settings,
                                                    now=now, data_available_end=None)
                fast = build_report_query(client, validated, settings=settings)
                slow = build_report_query(client, validated, settings=settings, preaggregated=False)
                assert "balance_transactions_15m" not in slow.sql and "balance_transactions_1d" not in slow.sql
                if report.id in PAYOUT_TIME_TYPES:
                    assert "balance_transactions_1d" in fast.sql and "fct_balance_transactions" not in fast.sql
                elif (end - start) > timedelta(days=2):
                    assert "balance_transactions_15m" in fast.sql, (report.id, tz)
                    # whole UTC days from the daily rollup unless the report splits local days
                    assert ("balance_transactions_1d" in fast.sql) == (report.id not in LOCAL_DAY_TYPES)
                got = client.query(fast.sql, parameters=fast.parameters).result_rows
                expected = client.query(slow.sql, parameters=slow.parameters).result_rows
                assert got == expected, (report.id, tz, start, end)
                compared += bool(expected)
                currencies = max(currencies, len({row[-2] for row in expected}))
    assert compared >= 6 * len(TIMEZONES) and currencies >= 2


def test_reporting_categories_seed_is_the_definition_python_uses(demo_platform):
    with open_warehouse(demo_platform.settings) as client:
        seeded = client.query("SELECT reporting_category, fee_type, fee_amount, revenue_component, is_payout "
                              "FROM analytics.reporting_categories ORDER BY reporting_category").result_rows
        fact_categories = {r[0] for r in client.query(
            "SELECT DISTINCT reporting_category FROM analytics.fct_balance_transactions").result_rows}
    assert seeded == sorted((c.name, c.fee_type, c.fee_amount, c.revenue_component, c.is_payout)
                            for c in reporting_categories.categories())
    assert fact_categories <= set(reporting_categories.names())
    assert "dispute_reversal" in reporting_categories.names()


def test_daily_fee_summary_equals_fees_summary_per_utc_day(demo_platform):
    """The mart analysts read and the report merchants download count fees the same way
    (dispute reversals' fees are dispute fees in both)."""
    settings = demo_platform.settings
    account = _busiest_account(settings)
    start, end = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)
    with open_warehouse(settings) as client:
        mart = {(str(d), c, t): (int(n), int(a)) for d, c, t, n, a in client.query(
            "SELECT day, currency, fee_type, fee_count, fee_minor FROM analytics.daily_fee_summary "
            "WHERE account_id = {a:String} AND day >= '2026-09-01' AND day < '2026-11-01'",
            parameters={"a": account}).result_rows}
        validated = validate_report_request(account, "fees.summary",
                                            {"interval_start": start.isoformat(), "interval_end": end.isoformat(),
                                             "timezone": "UTC"}, "csv", settings=settings,
                                            now=end + timedelta(days=60), data_available_end=None)
        query = build_report_query(client, validated, settings=settings)
        rows = client.query(query.sql, parameters=query.parameters).result_rows
    names = [c.name for c in query.columns]
    report = {(str(r[names.index("date")]), r[names.index("currency")], r[names.index("fee_type")]):
              (int(r[names.index("fee_count")]), int(r[names.index("fee_amount")])) for r in rows}
    assert report == mart
    assert {key[2] for key in mart} == {"processing", "dispute", "platform"}


# One per demo account: the local-day grain is cut in each account's own timezone.
ACCOUNT_TIMEZONES = (*TIMEZONES, "America/New_York")
LOCAL_DAYS_MODEL = "balance_transactions_local_1d"


def _accounts_by_volume(client) -> list[str]:
    return [r[0] for r in client.query(
        "SELECT account_id FROM analytics.fct_balance_transactions GROUP BY 1 "
        "ORDER BY count(DISTINCT currency) DESC, count() DESC").result_rows]


def _set_account_timezones(settings, zones: dict[str, str]) -> None:
    """dim_accounts as dbt would build it after the accounts' timezones changed in the source,
    then the local-day model's incremental run."""
    with open_warehouse(settings, purpose="test local days: timezones") as client:
        for account, tz in zones.items():
            client.command("ALTER TABLE analytics.dim_accounts UPDATE timezone = {tz:String} "
                           "WHERE account_id = {a:String} SETTINGS mutations_sync = 2",
                           parameters={"tz": tz, "a": account})
    built = run_dbt(["run", "--select", LOCAL_DAYS_MODEL], settings)
    assert built.returncode == 0, built.stdout[-4000:]


def _assert_local_days_match(client, settings, zones: dict[str, str], now: datetime) -> None:
    for account, tz in zones.items():
        params = {"a": account, "tz": tz}
        held = {r[0] for r in client.query(f"SELECT DISTINCT timezone FROM analytics.{LOCAL_DAYS_MODEL} "
                                            "WHERE account_id = {a:String}", parameters=params).result_rows}
        assert held == {tz}, (account, held)  # rebuilt whole in the account's current timezone
        model = client.query(
            f"SELECT local_day, currency, reporting_category, sum(transaction_count), sum(gross_minor), "
            f"sum(fee_minor), sum(net_minor), sum(fee_count) FROM analytics.{LOCAL_DAYS_MODEL} "
            "WHERE account_id = {a:String} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", parameters=params).result_rows
        fact = client.query(
            "SELECT toDate(created_at, {tz:String}), currency, reporting_category, count(), sum(gross_minor), "
            "sum(fee_minor), sum(net_minor), countIf(fee_minor != 0) FROM analytics.fct_balance_transactions "
            "WHERE account_id = {a:String} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3", parameters=params).result_rows
        assert model == fact and model, (account, tz)
        local = ZoneInfo(tz)
        cases = [(tz, datetime(2026, 9, 10, tzinfo=local), datetime(2026, 10, 30, tzinfo=local)),  # whole days
                 (tz, datetime(2026, 9, 12, 10, 7, 13, 5, tzinfo=UTC), datetime(2026, 10, 30, 17, 52, 41, 999_999, tzinfo=UTC)),
                 ("Asia/Kathmandu" if tz != "Asia/Kathmandu" else "UTC",  # not the rows' timezone: UTC grains
                  datetime(2026, 9, 10, tzinfo=UTC), datetime(2026, 10, 30, tzinfo=UTC))]
        for report_tz, start, end in cases:
            for report in SUMMARY_TYPES:
                query_params = {"interval_end": end.isoformat(), "timezone": report_tz, "columns": report.column_names}
                if report.interval != "end_only":
                    query_params["interval_start"] = start.isoformat()
                validated = validate_report_request(account, report.id, query_params, "csv", settings=settings,
                                                    now=now, data_available_end=None)
                fast = build_report_query(client, validated, settings=settings)
                slow = build_report_query(client, validated, settings=settings, preaggregated=False)
                if report.id not in PAYOUT_TIME_TYPES and report.interval != "end_only":
                    assert LOCAL_DAYS_MODEL in fast.sql, (report.id, report_tz)
                got = client.query(fast.sql, parameters=fast.parameters).result_rows
                expected = client.query(slow.sql, parameters=slow.parameters).result_rows
                assert got == expected, (report.id, account, tz, report_tz, start, end)


def test_local_day_grain_is_cut_in_each_accounts_timezone_and_rebuilt_when_it_changes(demo_platform):
    """Every account's local-day rows equal the fact per day of its own timezone (half-hour,
    45-minute, DST and Lord Howe's half-hour DST included), summaries read from them equal the
    fact-based ones, and after every account's timezone changes the next dbt run rebuilds each
    account's rows in its new timezone (none left in the old one)."""
    settings = demo_platform.settings
    now = demo_platform.data_available_end + timedelta(days=60)
    with open_warehouse(settings, purpose="test local days") as client:
        accounts = _accounts_by_volume(client)
        original = dict(client.query("SELECT account_id, timezone FROM analytics.dim_accounts").result_rows)
    assert len(accounts) >= len(ACCOUNT_TIMEZONES)
    zones = dict(zip(accounts, ACCOUNT_TIMEZONES))
    moved = dict(zip(accounts, ACCOUNT_TIMEZONES[1:] + ACCOUNT_TIMEZONES[:1]))  # every account moves
    try:
        for assigned in (zones, moved):
            _set_account_timezones(settings, assigned)
            with open_warehouse(settings, purpose="test local days") as client:
                _assert_local_days_match(client, settings, assigned, now)
    finally:
        _set_account_timezones(settings, {a: original[a] for a in zones})


def test_payout_reconciliation_summary_from_the_daily_grain_equals_the_fact_with_filters(demo_platform):
    """Payouts chosen by effective time read the daily grain (every day: a payout settles rows of
    any age); with a currency or category filter too; one payout by id reads the fact."""
    settings = demo_platform.settings
    account = _busiest_account(settings)
    now = demo_platform.data_available_end + timedelta(days=60)
    with open_warehouse(settings, purpose="test payout reconciliation") as client:
        payout = client.query("SELECT payout_id FROM analytics.fct_payouts WHERE account_id = {a:String} "
                              "ORDER BY created_at DESC LIMIT 1", parameters={"a": account}).result_rows[0][0]
        cases = [{}, {"currency": "gbp"}, {"reporting_category": ["charge", "refund"]}, {"payout": payout}]
        compared = 0
        for filters in cases:
            params = {"interval_start": "2026-09-15T00:00:00+02:00", "interval_end": "2026-10-31T00:00:00+01:00",
                      "timezone": "Europe/Berlin", **filters}
            if "payout" in filters:
                del params["interval_start"], params["interval_end"]
            validated = validate_report_request(account, "payout_reconciliation.summary", params, "csv",
                                                settings=settings, now=now, data_available_end=None)
            fast = build_report_query(client, validated, settings=settings)
            slow = build_report_query(client, validated, settings=settings, preaggregated=False)
            assert ("fct_balance_transactions" in fast.sql) == ("payout" in filters), filters
            got = client.query(fast.sql, parameters=fast.parameters).result_rows
            expected = client.query(slow.sql, parameters=slow.parameters).result_rows
            assert got == expected, filters
            compared += len(expected) > 1
    assert compared == len(cases)
