"""The same small file for many accounts in one warehouse query, split by account.

On the embedded engine a query costs ~20-30 ms of analysis whatever it reads, and a statement
file of a small account is a few dozen rows: a month-end is counted in queries. Inside
`engine.run_cache()`, `prefetch(client, settings, files)` groups the files that differ only in
their account — same report type, format, interval, timezone, columns and options — and runs,
for each group of a type that batches accounts (ReportType.batches_accounts), one query over all
its accounts: the file's own query with the account condition an `IN` and each row's account
selected too. That is a small CSV's one query (csv_writer.small_csv_sql), or a summary PDF's
query and each of its companions' (pdf_writer.SummaryRows). `generate_report` then writes each
of those files from its account's rows (`take`), through the same writer as a file that queried
for itself: the same bytes, the same manifest.

Rows are kept for the data version they were read at: a file validated at another version (the
marts were rebuilt meanwhile) queries for itself, as does any file not prefetched or whose
account has more rows than the one-query path takes (the streamed CSV; the PDF's row limit).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from exports.errors import InvalidParameter
from exports.reports.catalog import data_available_end as _data_available_end
from exports.reports.catalog import get_report_type
from exports.reports.query import ReportQuery
from exports.settings import Settings

# Filters naming an id the engine checks against the account (engine._check_belongs).
_PER_ACCOUNT_FILTERS = frozenset({"payout", "customer"})
MONEY_FORMAT = "major"  # generate_report's default, the only one requests use


@dataclass(frozen=True)
class File:
    """A file about to be generated (generate_report's arguments)."""
    account_id: str
    report_type: str
    parameters: dict[str, Any]
    format: str


# Inside a `batch_cache()` block: (query and its parameters, options, data version) -> rows.
_rows: contextvars.ContextVar[dict | None] = contextvars.ContextVar("batched_rows", default=None)


@contextmanager
def batch_cache() -> Iterator[None]:
    token = _rows.set({})
    try:
        yield
    finally:
        _rows.reset(token)


def _key(query: ReportQuery, fmt: str, timestamp_format: str, data_version: datetime | None) -> tuple:
    # The parameters include the account.
    return (query.sql, query.parameters_key(), fmt, timestamp_format, data_version)


def _group_key(query: ReportQuery, fmt: str, timestamp_format: str) -> tuple:
    return (query.report_type, fmt, query.sql, query.parameters_key(except_account=True), timestamp_format)


def _batchable(query: ReportQuery, fmt: str) -> bool:
    from exports.writers import tries_small_csv

    if fmt == "pdf":
        return query.shape == "summary"
    return fmt == "csv" and tries_small_csv(query)  # a large account's itemized file streams


def prefetch(client, settings: Settings, files: Sequence[File]) -> int:
    """Inside a `batch_cache()`: fetch the rows of the batchable small CSVs and summary PDFs among
    `files`, one query (a PDF: one per query it reads) per group of files that differ only in
    their account. Returns the files whose rows are kept. A file that fails validation or its
    account lookup is left to generate_report, which reports the error as it would have."""
    from exports.reports.engine import build_report_query, validate_report_request

    cache = _rows.get()
    if cache is None:
        return 0
    data_version = _data_available_end(settings)
    # group key -> (the first file's validated request, the group's queries)
    groups: dict[tuple, tuple[Any, list[ReportQuery]]] = {}
    for file in files:
        if not get_report_type(file.report_type).batches_accounts:
            continue
        try:
            validated = validate_report_request(file.account_id, file.report_type, file.parameters,
                                                file.format, settings=settings,
                                                data_available_end=data_version)
            if _PER_ACCOUNT_FILTERS & set(validated.filters):
                continue
            query = build_report_query(client, validated, settings=settings, data_as_of=data_version)
        except InvalidParameter:
            continue
        if not _batchable(query, file.format):
            continue
        group = groups.setdefault(_group_key(query, file.format, validated.timestamp_format), (validated, []))
        group[1].append(query)
    kept = 0
    for validated, members in groups.values():
        if len(members) < 2:
            continue  # its own query is the same query
        batch = build_report_query(client, validated, settings=settings, data_as_of=data_version,
                                   batch_accounts=[query.account_id for query in members])
        by_account = _fetch(client, settings, validated, members[0], batch)
        for query in members:
            key = _key(query, validated.format, validated.timestamp_format, data_version)
            cache[key] = by_account[query.account_id]
            kept += 1
    return kept


def _fetch(client, settings: Settings, validated, query: ReportQuery, batch: ReportQuery) -> dict[str, Any]:
    """account -> what its file's writer would have fetched (`query`: one of them)."""
    if validated.format == "pdf":
        from exports.writers.pdf_writer import summary_rows_by_account

        return summary_rows_by_account(client, query, batch, limit=settings.pdf_itemized_row_limit)
    from exports.writers import SMALL_CSV_ROWS
    from exports.writers.csv_writer import small_csv_rows_by_account

    found = small_csv_rows_by_account(client, query, batch, max_rows=SMALL_CSV_ROWS,
                                      money_format=MONEY_FORMAT, timestamp_style=validated.timestamp_format)
    return {account: found.get(account, []) for account in batch.parameters["account_ids"]}


def take(query: ReportQuery, fmt: str, *, money_format: str, timestamp_format: str,
         data_version: datetime | None) -> Any:
    """What was prefetched for this file's query (once): a small CSV's rows or a summary PDF's
    SummaryRows; None: query for them."""
    cache = _rows.get()
    if not cache or (fmt == "csv" and money_format != MONEY_FORMAT):
        return None
    return cache.pop(_key(query, fmt, timestamp_format, data_version), None)
