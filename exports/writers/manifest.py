"""What every written file's Manifest is made of: the query's facts (row count and money totals
per currency, from one aggregate over the same SQL), the file's own bytes (size, sha256), and
the plumbing every writer shares (atomic output, throttled progress).

Totals are the query's figures (ReportQuery.figures: money column sums for itemized reports, the
report's own figures for summaries) from `SELECT _currency, _exponent, count(), sum(<figure>) FROM
(<query.sql>) GROUP BY _currency, _exponent`, run just before the file is streamed (a summary PDF, fetched whole
anyway, sums the rows of its one query instead: `facts_from_rows`). Writers that can count the
rows they stream (XLSX, Parquet, PDF) check their count against it and fail rather than ship a
file whose manifest disagrees with its content (e.g. the marts were rebuilt mid-export). Tests
re-read every file with an independent reader and compare its sums to `totals_minor` cent for
cent.
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from exports.reports.query import Manifest, ReportQuery
from exports.writers.sqlformat import (CURRENCY_COLUMN, EXPONENT_COLUMN, ident, needs_csv_quotes,
                                       sql_string)

PROGRESS_MIN_INTERVAL_SECONDS = 0.25
PROGRESS_ROW_STEP = 50_000


@dataclass(frozen=True)
class QueryFacts:
    """The query's real output columns (names and ClickHouse types, hidden ones excluded),
    row count and money totals."""

    column_names: tuple[str, ...]  # as the SQL names them, in `query.columns` order
    column_types: tuple[str, ...]  # ClickHouse type names, e.g. "DateTime64(6, 'UTC')"
    row_count: int
    totals_minor: dict[str, dict[str, int]]
    exponents: dict[str, int]  # currency -> exponent, for currencies present
    # Every `_exponent` the rows have, rows without a currency (exponent 0) included: when it is
    # one value, the CSV writer can print money as a typed Decimal of that scale.
    row_exponents: frozenset[int] = frozenset()
    # Indexes of platform-code string columns (IDs, statuses: not user text) where some value
    # holds a character a CSV field must quote; None = not looked at (quote every one).
    quoted_codes: frozenset[int] | None = None

    def column_sql(self, index: int) -> str:
        return ident(self.column_names[index])


# Inside a `shape_cache()` block, query_columns answers from the shapes already read in it.
_shapes: contextvars.ContextVar[dict | None] = contextvars.ContextVar("query_shapes", default=None)


@contextmanager
def shape_cache() -> Iterator[None]:
    """Within the block, a query's shape is read once per SQL and parameters other than the
    account (the same report for many accounts in one run: statements). A LIMIT 0 still plans
    the query, ~30-80 ms on chdb, more than some of the files take. Only for a block over which
    the marts' schema cannot change (one run)."""
    token = _shapes.set({})
    try:
        yield
    finally:
        _shapes.reset(token)


def query_columns(client: Client, query: ReportQuery) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The report columns' SQL names and ClickHouse types (LIMIT 0: nothing is computed)."""
    cache = _shapes.get()
    # The account is a filter value; other parameters (the timezone) can change the types.
    key = (query.sql, query.parameters_key(except_account=True))
    if cache is not None and key in cache:
        return cache[key]
    shape = client.query(f"SELECT * FROM ({query.sql}) LIMIT 0", parameters=query.parameters)
    names = list(shape.column_names)
    types = [t.name for t in shape.column_types]
    expected = len(query.columns) + 2
    if len(names) != expected or names[-2:] != [CURRENCY_COLUMN, EXPONENT_COLUMN]:
        raise ValueError(
            f"{query.report_type}: the SQL must select {len(query.columns)} report columns then "
            f"{CURRENCY_COLUMN}, {EXPONENT_COLUMN}; it selects {names}")
    columns = tuple(names[:-2]), tuple(types[:-2])
    if cache is not None:
        cache[key] = columns
    return columns


def money_indexes(query: ReportQuery) -> list[int]:
    return [i for i, c in enumerate(query.columns) if c.kind == "money"]


def figure_row_sql(query: ReportQuery, names: tuple[str, ...] | list[str]) -> list[str]:
    """Per row, what it adds to each of the query's figures (ReportQuery.figures), as Int64
    expressions over the query's output columns: the money value, or 0 where the row's label is
    not the figure's. Summed per currency they are the manifest's totals, by a totals query
    (inspect_query) or over rows already fetched (facts_from_rows)."""
    index = {c.name: i for i, c in enumerate(query.columns)}
    out = []
    for figure in query.figures:
        value = f"ifNull(toInt64({ident(names[index[figure.column]])}), 0)"
        if figure.label_column is not None:
            label = ident(names[index[figure.label_column]])
            value = f"if(toString({label}) = {sql_string(figure.label or '')}, {value}, 0)"
        out.append(value)
    return out


def inspect_query(client: Client, query: ReportQuery) -> QueryFacts:
    """Read the query's shape (LIMIT 0) and its totals; both before any stream is opened, since
    an embedded engine serves one call at a time."""
    names, types = query_columns(client, query)
    figures = figure_row_sql(query, names)
    codes = code_indexes(query)
    sums = "".join(f", sum(toInt128({expr}))" for expr in figures)
    # The code columns' quoting check rides along: aggregation runs on every core, the CSV
    # fields after the report's ORDER BY on one.
    checks = "".join(f", max({needs_csv_quotes(code_text(names[i]))})" for i in codes)
    result = client.query(
        f"SELECT {ident(CURRENCY_COLUMN)}, {ident(EXPONENT_COLUMN)}, count(){sums}{checks} "
        f"FROM ({query.sql}) GROUP BY {ident(CURRENCY_COLUMN)}, {ident(EXPONENT_COLUMN)} "
        f"ORDER BY {ident(CURRENCY_COLUMN)}, {ident(EXPONENT_COLUMN)}",
        parameters=query.parameters)
    width = 3 + len(figures)
    quoted = frozenset(i for n, i in enumerate(codes)
                       if any(row[width + n] for row in result.result_rows))
    facts = _facts(query, names, types, [row[:width] for row in result.result_rows])
    return dataclasses.replace(facts, quoted_codes=quoted)


def code_text(name: str) -> str:
    return f"ifNull(toString({ident(name)}), '')"


def code_indexes(query: ReportQuery) -> list[int]:
    """Platform-code string columns (not user text)."""
    return [i for i, c in enumerate(query.columns) if c.kind in ("string", "json") and not c.user_text]


def facts_from_rows(query: ReportQuery, names: tuple[str, ...], types: tuple[str, ...],
                    rows: list[tuple]) -> QueryFacts:
    """The same facts computed from rows already fetched whole (small summaries, whose single
    query is then also their totals query). Each row: its figure_row_sql values, then currency
    and exponent."""
    groups: dict[tuple, list] = {}
    for *values, currency, exponent in rows:
        key = (currency or "", int(exponent))
        group = groups.setdefault(key, [currency, exponent, 0] + [0] * len(values))
        group[2] += 1
        for i, value in enumerate(values):
            group[3 + i] += int(value or 0)
    return _facts(query, names, types, [groups[key] for key in sorted(groups)])


def _facts(query: ReportQuery, names, types, by_currency) -> QueryFacts:
    """QueryFacts from (currency, exponent, count, *figure sums) per currency and exponent (a
    currency has one exponent; grouping by both just makes `row_exponents` exact)."""
    figures = [f.name for f in query.figures]
    totals: dict[str, dict[str, int]] = {name: {} for name in figures}
    exponents: dict[str, int] = {}
    row_exponents: set[int] = set()
    row_count = 0
    for currency, exponent, count, *figure_sums in by_currency:
        row_count += int(count)
        row_exponents.add(int(exponent))
        if not currency:
            continue
        exponents[currency] = max(int(exponent), exponents.get(currency, 0))
        for name, total in zip(figures, figure_sums, strict=True):
            totals[name][currency] = totals[name].get(currency, 0) + int(total or 0)
    return QueryFacts(tuple(names), tuple(types), row_count, totals, exponents,
                      frozenset(row_exponents))


def timezone_of(type_name: str) -> str | None:
    """'DateTime64(6, 'Europe/Paris')' -> 'Europe/Paris'; None when the type names no zone."""
    match = re.search(r"'([^']+)'", type_name)
    return match.group(1) if match else None


class Progress:
    """Calls `callback(rows)` at most every PROGRESS_MIN_INTERVAL_SECONDS (or every
    PROGRESS_ROW_STEP rows, whichever comes first) and always once at the end."""

    def __init__(self, callback: Callable[[int], None] | None):
        self.callback = callback
        self.rows = 0
        self._last_time = time.monotonic()
        self._last_rows = 0

    def advance(self, rows: int) -> None:
        self.rows += rows
        if self.callback is None:
            return
        now = time.monotonic()
        if (now - self._last_time >= PROGRESS_MIN_INTERVAL_SECONDS
                or self.rows - self._last_rows >= PROGRESS_ROW_STEP):
            self._last_time, self._last_rows = now, self.rows
            self.callback(self.rows)

    def finish(self, total: int) -> None:
        self.rows = total
        if self.callback is not None:
            self.callback(total)


@contextmanager
def atomic_output(out_path: Path) -> Iterator[Path]:
    """A temp path beside `out_path`, renamed onto it when the block succeeds, removed if not."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    try:
        yield tmp
        os.replace(tmp, out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Digest:
    """Hashes and counts bytes: the manifest's sha256 and byte size, computed as they stream."""

    def __init__(self) -> None:
        self.sha256 = hashlib.sha256()
        self.byte_size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        self.byte_size += len(data)


class HashingFile(Digest):
    """A binary file writer that hashes and counts what it writes (no second read of the file)."""

    def __init__(self, path: Path):
        super().__init__()
        self._fh = open(path, "wb")

    def write(self, data: bytes | memoryview) -> None:
        super().write(data)
        self._fh.write(data)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> HashingFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def file_digest(path: Path) -> tuple[int, str]:
    """(byte size, sha256 hex) of a finished file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return path.stat().st_size, digest.hexdigest()


def build_manifest(query: ReportQuery, fmt: str, out_path: Path, facts: QueryFacts, *,
                   byte_size: int, sha256: str, row_count: int | None = None,
                   compressed: str | None = None, sheets: int | None = None,
                   columns: list[str] | None = None, extra: dict | None = None) -> Manifest:
    return Manifest(
        report_type=query.report_type, format=fmt, file_name=out_path.name,
        row_count=facts.row_count if row_count is None else row_count,
        byte_size=byte_size, sha256=sha256, totals_minor=facts.totals_minor,
        columns=columns if columns is not None else [c.name for c in query.columns],
        compressed=compressed, sheets=sheets, currency_exponents=dict(facts.exponents),
        extra={"timezone": query.timezone, "account_id": query.account_id, **(extra or {})},
    )


def check_row_count(streamed: int, facts: QueryFacts, query: ReportQuery) -> None:
    if streamed != facts.row_count:
        raise RuntimeError(
            f"{query.report_type}: streamed {streamed} rows but the totals query counted "
            f"{facts.row_count}; the warehouse changed during the export, run it again")
