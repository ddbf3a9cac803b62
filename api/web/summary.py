"""The figures of a finished summary report, read back from its stored file, and its charts.

A summary is a few dozen rows, so the page reads the file the user would download (the same
bytes, through the storage backend) rather than asking the warehouse again: the web app, like
the API, never needs the warehouse. CSV (plain or gzip), XLSX and Parquet files are read; a
PDF already carries its own chart, and the page says so.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from api.web.charts import bar_chart
from exports.reports.catalog import get_report_type
from exports.settings import Settings
from exports.storage import get_storage
from exports.writers.presentation import currency_code, label as human_label

MAX_ROWS = 500
# Columns holding codes a person reads by their label ("other_adjustment" -> "Other adjustments").
LABELLED_COLUMNS = frozenset({"reporting_category", "category", "fee_type"})


@dataclass
class SummaryFigures:
    columns: list[str]
    rows: list[list[str]]
    money_columns: set[str] = field(default_factory=set)
    charts: list[str] = field(default_factory=list)  # inline SVG, one per currency
    truncated: bool = False

    @property
    def headers(self) -> list[str]:
        """Column headers as the PDF prints them (exports.writers.presentation)."""
        return [human_label(c) for c in self.columns]

    @property
    def display_rows(self) -> list[list[str]]:
        """Rows as the PDF shows them: money with thousands separators, category codes as their
        labels, currencies as uppercase ISO codes (the file keeps its own format)."""
        money = [i for i, c in enumerate(self.columns) if c in self.money_columns]
        codes = [i for i, c in enumerate(self.columns) if c in LABELLED_COLUMNS]
        currency = self.columns.index("currency") if "currency" in self.columns else None
        out = []
        for row in self.rows:
            shown = list(row)
            for i in money:
                amount = _decimal(row[i]) if i < len(row) else None
                if amount is not None:
                    shown[i] = format_amount(amount)
            for i in codes:
                if i < len(row) and row[i]:
                    shown[i] = human_label(row[i], self.columns[i])
            if currency is not None and currency < len(row):
                shown[currency] = currency_code(row[currency])
            out.append(shown)
        return out


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _read_rows(data: bytes, key: str) -> tuple[list[str], list[list[str]]]:
    if key.endswith(".gz"):
        data = gzip.decompress(data)
        key = key[:-3]
    if key.endswith(".csv"):
        reader = csv.reader(io.StringIO(data.decode("utf-8")))
        header = next(reader, [])
        return header, [row for _, row in zip(range(MAX_ROWS + 1), reader)]
    if key.endswith(".xlsx"):
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [_text(v) for v in next(rows, ())]
        out = []
        for row in rows:
            if len(out) > MAX_ROWS or not any(v is not None for v in row):
                break
            out.append([_text(v) for v in row[:len(header)]])
        return header, out
    if key.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data)).slice(0, MAX_ROWS + 1)
        return table.column_names, [[_text(v) for v in row.values()] for row in table.to_pylist()]
    raise ValueError(f"no reader for {key}")


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "")) if text not in ("", None) else None
    except InvalidOperation:
        return None


def format_amount(value: Decimal) -> str:
    exponent = max(0, -value.as_tuple().exponent) if isinstance(value.as_tuple().exponent, int) else 2
    return f"{value:,.{exponent}f}"


def load_figures(row: dict, settings: Settings) -> SummaryFigures | None:
    """None when the report is not a finished summary in a readable format."""
    report = get_report_type(row["report_type"])
    key = row.get("file_key")
    if report.shape != "summary" or row["status"] != "completed" or not key or key.endswith(".pdf"):
        return None
    with get_storage(settings).open(key) as fh:
        data = fh.read()
    header, rows = _read_rows(data, key)
    money = {c.name for c in report.columns if c.kind == "money"} & set(header)
    figures = SummaryFigures(columns=header, rows=rows[:MAX_ROWS], money_columns=money,
                             truncated=len(rows) > MAX_ROWS)
    label, value = report.chart_label_column, report.chart_value_column
    if label in header and value in header:
        li, vi = header.index(label), header.index(value)
        ci = header.index("currency") if "currency" in header else None
        by_currency: dict[str, list[tuple[str, Decimal, str]]] = {}
        for r in figures.rows:
            amount = _decimal(r[vi])
            if amount is None:
                continue
            if r[li] == "total":  # the categories' sum, not a category: the table shows it
                continue
            currency = currency_code(r[ci]) if ci is not None else ""
            by_currency.setdefault(currency, []).append(
                (human_label(r[li], label), amount, format_amount(amount)))
        for currency, bars in sorted(by_currency.items()):
            title = (f"{human_label(value)} by {human_label(label).lower()}"
                     + (f", {currency}" if currency else ""))
            figures.charts.append(bar_chart(title, bars))
    return figures
