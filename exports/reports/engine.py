"""The report engine's entry points: validate a request, build its typed query, generate a file.

    validate_report_request(...)  pure: no warehouse; raises InvalidParameter
    build_report_query(client, validated)  checks ids against the warehouse, returns ReportQuery
    generate_report(...)  validate -> open warehouse -> build -> exports.writers.write_report
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone as dt_timezone
from pathlib import Path
from typing import Any, Callable

import psycopg

from exports import db
from exports.errors import InvalidParameter
from exports.reports import batches
from exports.reports.catalog import data_available_end as _data_available_end
from exports.reports.catalog import get_report_type
from exports.reports.params import ValidatedReport, validate_parameters
from exports.reports.query import Figure, Manifest, ReportQuery
from exports.reports.types.base import QueryContext
from exports.settings import Settings, get_settings

_LOOK_UP = object()  # sentinel: read data_available_end from replication's watermarks


def account_timezone(account_id: str, settings: Settings | None = None) -> str | None:
    """The account's IANA timezone from the source database (None when unknown), so requests are
    validated — and their errors worded — in the merchant's zone before the warehouse is opened."""
    settings = settings or get_settings()
    try:
        with db.connect("source", settings) as conn:
            row = conn.execute("SELECT timezone FROM accounts WHERE id = %s", (account_id,)).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return row[0] if row else None


def validate_report_request(
    account_id: str, report_type: str, parameters: dict, fmt: str, *,
    settings: Settings | None = None, now: datetime | None = None,
    account_timezone: str | None = None, data_available_end: Any = _LOOK_UP,
) -> ValidatedReport:
    """Validate a request without touching the warehouse.

    `data_available_end`: by default read from the app database (replication watermarks; a
    missing value means nothing to check against yet); pass a datetime or None to skip the read.
    """
    settings = settings or get_settings()
    report = get_report_type(report_type)
    if data_available_end is _LOOK_UP:
        data_available_end = _data_available_end(settings)
    validated = validate_parameters(
        report, account_id, parameters, fmt, max_span_days=settings.max_report_span_days,
        now=now or datetime.now(dt_timezone.utc), account_timezone=account_timezone,
        data_available_end=data_available_end,
    )
    if validated.format == "pdf" and report.shape == "itemized":
        # A selection too wide for any page is refused now (a 400), not after queueing.
        from exports.writers.pdf_layout import check_itemized_columns_fit

        check_itemized_columns_fit([report.column(name).column for name in validated.columns])
    return validated


@dataclass(frozen=True)
class WarehouseAccount:
    """What a report needs to know of its account from the warehouse."""
    name: str
    timezone: str
    # An upper bound of the rows any itemized report of the account can have: its balance
    # transactions plus its payments in the marts (every itemized type lists one of those).
    # Counted without FINAL, so rows not yet merged count twice: only ever too high.
    rows_bound: int


# Inside a `run_cache()` block each account is looked up once (account id -> WarehouseAccount).
_accounts: contextvars.ContextVar[dict | None] = contextvars.ContextVar("warehouse_accounts",
                                                                        default=None)


@contextmanager
def run_cache() -> Iterator[None]:
    """For one run rendering many reports (a batch, a statement run): each report's shape
    (exports.writers.manifest.shape_cache) and each account's warehouse facts are read once. On
    the embedded engine a query costs ~20 ms of planning whatever it reads, more than a small
    report's rows; a run is short enough that an account renamed during it keeps its old name
    until the next run. Rows prefetched for many accounts' files (exports.reports.batches) are
    kept for the block too."""
    from exports.writers.manifest import shape_cache

    with shape_cache(), batches.batch_cache():
        token = _accounts.set({})
        try:
            yield
        finally:
            _accounts.reset(token)


def prefetch_accounts(client, settings: Settings, account_ids: Sequence[str]) -> int:
    """Inside a `run_cache()` block: look up many accounts in one query (a statement shard's),
    instead of one query each as their first reports start. Accounts the warehouse does not
    have are left out, so their reports fail as before. Returns the accounts cached."""
    cache = _accounts.get()
    wanted = sorted(set(account_ids) - set(cache or ())) if cache is not None else []
    if not wanted:
        return 0
    marts = settings.warehouse_marts_database

    def counts(table: str) -> str:
        return (f"(SELECT account_id, count() AS n FROM {marts}.{table} "
                f"WHERE account_id IN {{ids:Array(String)}} GROUP BY account_id)")

    # The same figures as warehouse_account's: name and timezone of one dimension row, and the
    # rows bound counted without FINAL.
    rows = client.query(
        f"SELECT a.account_id, a.name, a.timezone, bt.n + p.n "
        f"FROM (SELECT account_id, name, timezone FROM {marts}.dim_accounts "
        f"      WHERE account_id IN {{ids:Array(String)}} LIMIT 1 BY account_id) AS a "
        f"LEFT JOIN {counts('fct_balance_transactions')} AS bt ON bt.account_id = a.account_id "
        f"LEFT JOIN {counts('fct_payments')} AS p ON p.account_id = a.account_id",
        parameters={"ids": wanted}, settings={"join_use_nulls": 0}).result_rows
    for account_id, name, tz, bound in rows:
        cache[account_id] = WarehouseAccount(name or "", tz or "UTC", int(bound))
    return len(rows)


def warehouse_account(client, settings: Settings, account_id: str) -> WarehouseAccount:
    cache = _accounts.get()
    if cache is not None and account_id in cache:
        return cache[account_id]
    marts = settings.warehouse_marts_database
    # One query, so the bound costs no second round of planning.
    rows = client.query(
        f"SELECT name, timezone, "
        f"(SELECT count() FROM {marts}.fct_balance_transactions WHERE account_id = {{account_id:String}}) "
        f"+ (SELECT count() FROM {marts}.fct_payments WHERE account_id = {{account_id:String}}) "
        f"FROM {marts}.dim_accounts WHERE account_id = {{account_id:String}} LIMIT 1",
        parameters={"account_id": account_id}).result_rows
    if not rows:
        raise InvalidParameter(f"Account {account_id} was not found in the reporting warehouse.",
                               param="account")
    name, tz, bound = rows[0]
    account = WarehouseAccount(name or "", tz or "UTC", int(bound))
    if cache is not None:
        cache[account_id] = account
    return account


def _check_belongs(client, settings: Settings, validated: ValidatedReport) -> None:
    """Ids in filters must be the account's own: another account's payout is 'not found'
    (never 'belongs to someone else', which would confirm it exists)."""
    marts = settings.warehouse_marts_database
    lookups = {"payout": ("fct_payouts", "payout_id"), "customer": ("fct_payments", "customer_id")}
    for name, (table, column) in lookups.items():
        if name not in validated.filters:
            continue
        found = client.query(
            f"SELECT count() FROM {marts}.{table} WHERE account_id = {{account_id:String}} "
            f"AND {column} = {{value:String}}",
            parameters={"account_id": validated.account_id, "value": validated.filters[name]},
        ).result_rows[0][0]
        if not found:
            raise InvalidParameter(f"{name.capitalize()} {validated.filters[name]} was not found for this account.",
                                   param=f"parameters.{name}")


def build_report_query(client, validated: ValidatedReport, *,
                       settings: Settings | None = None, preaggregated: bool = True,
                       data_as_of: datetime | None = None,
                       batch_accounts: Sequence[str] = ()) -> ReportQuery:
    """`preaggregated=False`: summaries scan the fact instead of the 15-minute marts (the
    baseline they equal; benchmarks and tests compare the two). `data_as_of`: a PDF's "data as
    of" when the caller knows it (the data version), else read from the marts.
    `batch_accounts` (a type that batches_accounts): the query of the same report over all these
    accounts, each row's account in ACCOUNT_COLUMN (exports.reports.batches)."""
    settings = settings or get_settings()
    account = warehouse_account(client, settings, validated.account_id)
    account_name, account_tz = account.name, account.timezone
    if validated.timezone_source == "default" and account_tz != validated.timezone:
        # Validated before the account's timezone was known: cut the interval in its timezone.
        validated = validate_parameters(
            get_report_type(validated.report_type), validated.account_id, validated.parameters,
            validated.format, max_span_days=settings.max_report_span_days, now=validated.now,
            account_timezone=account_tz, data_available_end=None,
        )
    _check_belongs(client, settings, validated)
    report = get_report_type(validated.report_type)
    context = QueryContext(
        marts=settings.warehouse_marts_database, account_id=validated.account_id,
        timezone=validated.timezone, interval_start=validated.interval_start,
        interval_end=validated.interval_end, filters=dict(validated.filters),
        columns=tuple(report.column(name) for name in validated.columns),
        preaggregated=preaggregated,
    )
    if batch_accounts:
        if not report.batches_accounts:
            raise ValueError(f"{report.id} does not batch accounts")
        context = replace(context, account_ids=tuple(batch_accounts))
    sql, parameters = report.build(context)
    selected = {c.name for c in context.columns}
    companions = {}
    if validated.format == "pdf":
        for role, companion_type in PDF_COMPANIONS.get(report.id, {}).items():
            companion = get_report_type(companion_type)
            if batch_accounts and not companion.batches_accounts:
                raise ValueError(f"{report.id}'s companion {companion.id} does not batch accounts")
            companion_context = replace(context, columns=tuple(
                companion.column(name) for name in companion.default_columns))
            companion_sql, companion_parameters = companion.build(companion_context)
            companions[role] = ReportQuery(
                report_type=companion.id, title=companion.title, shape=companion.shape,
                sql=companion_sql, parameters=companion_parameters,
                columns=tuple(c.column for c in companion_context.columns),
                account_id=validated.account_id, timezone=validated.timezone,
                interval_start=validated.interval_start, interval_end=validated.interval_end,
                filters=dict(validated.filters))
    return ReportQuery(
        report_type=report.id, title=report.title, shape=report.shape, sql=sql,
        parameters=parameters, columns=tuple(c.column for c in context.columns),
        account_id=validated.account_id, account_name=account_name, timezone=validated.timezone,
        interval_start=validated.interval_start, interval_end=validated.interval_end,
        filters=dict(validated.filters),
        chart_label_column=report.chart_label_column if report.chart_label_column in selected else None,
        chart_value_column=report.chart_value_column if report.chart_value_column in selected else None,
        totals=_figures(report, context.columns),
        identity=report.identity if {report.chart_label_column, report.chart_value_column} <= selected else None,
        data_as_of=(data_as_of or _data_as_of(client, settings)) if validated.format == "pdf" else None,
        companions=companions, locale=validated.locale,
        rows_bound=account.rows_bound if report.shape == "itemized" else None,
    )


# Supporting queries a PDF of the type draws on, by role: the balance summary's waterfall breaks
# its activity and its payouts down by reporting category (the same interval and filters).
PDF_COMPANIONS: dict[str, dict[str, str]] = {
    "balance.summary": {"activity_by_category": "balance_change_from_activity.summary",
                        "payouts_by_category": "payouts.summary"},  # payouts and reversals
}


def _data_as_of(client, settings: Settings) -> datetime | None:
    version = _data_version(client, settings)
    return datetime.fromisoformat(version) if version else None


def _data_version(client, settings: Settings) -> str | None:
    """When the marts were last changed (max updated_at of the fact table): a PDF's "data as
    of" when no replication watermark is known (generate_report passes its data version)."""
    try:
        value = client.query(
            f"SELECT max(updated_at) FROM {settings.warehouse_marts_database}.fct_balance_transactions"
        ).result_rows[0][0]
    except Exception:  # noqa: BLE001 - informational only; never fail a report over it
        return None
    return value.isoformat() if value else None


def _figures(report, columns) -> tuple[Figure, ...]:
    """The report's declared figures, or each selected summable money column summed over all
    rows; a figure needs its columns in the file (totals always describe the file's rows)."""
    selected = {c.name for c in columns}
    if report.totals is None:
        return tuple(Figure(c.name, c.name) for c in columns if c.kind == "money" and c.summable)
    return tuple(f for f in report.totals
                 if f.column in selected and (f.label_column is None or f.label_column in selected))


def generate_report(
    account_id: str, report_type: str, parameters: dict, fmt: str, out_path: Path, *,
    settings: Settings | None = None, progress: Callable[[int], None] | None = None, client=None,
    gzip: bool = False, money_format: str = "major", now: datetime | None = None,
    account_timezone: str | None = None,
) -> Manifest:
    """Validate, query the warehouse and write the file; returns the writer's Manifest with the
    interval, timezone and data version added to `extra`.

    The data version is the time the marts were built through when the request was validated
    (exports.replication.data_available_end): the same value bounds the interval and is
    recorded, in the manifest and on the request row (exports.requests.processing). The file
    options (csv_bom, timestamp_format, locale) are request parameters: validated with them and
    recorded in the manifest's `extra.options`."""
    from exports.writers import write_report  # the writers' package; imported when needed

    settings = settings or get_settings()
    data_version = _data_available_end(settings)
    validated = validate_report_request(account_id, report_type, parameters, fmt, settings=settings,
                                        now=now, account_timezone=account_timezone,
                                        data_available_end=data_version)

    def run(open_client) -> Manifest:
        # A PDF's "data as of" is the version the manifest records (no query for it when known).
        query = build_report_query(open_client, validated, settings=settings, data_as_of=data_version)
        prefetched = batches.take(query, validated.format, money_format=money_format,
                                  timestamp_format=validated.timestamp_format,
                                  data_version=data_version)
        manifest = write_report(open_client, query, validated.format, Path(out_path),
                                progress=progress, gzip=gzip, money_format=money_format,
                                settings=settings, csv_bom=validated.csv_bom,
                                timestamp_format=validated.timestamp_format,
                                small_csv_rows=prefetched if validated.format == "csv" else None,
                                summary_pdf_rows=prefetched if validated.format == "pdf" else None)
        manifest.extra.update({
            "account_id": query.account_id,
            "interval_start": query.interval_start.isoformat() if query.interval_start else None,
            "interval_end": query.interval_end.isoformat() if query.interval_end else None,
            "timezone": query.timezone,
            "relative_range": validated.relative_range,
            "filters": query.filters,
            "data_version": data_version.isoformat() if data_version else None,
            "options": validated.options,
        })
        return manifest

    if client is not None:
        return run(client)
    from exports.warehouse import open_warehouse

    with open_warehouse(settings, purpose=f"report {validated.report_type}") as opened:
        return run(opened)
