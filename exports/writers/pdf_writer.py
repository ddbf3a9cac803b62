"""PDF: summaries through weasyprint + a jinja2 template, itemized reports through a streaming
reportlab canvas. Both are documents for people: numbers, labels and dates come from
`presentation.Presenter` (Babel, the query's locale), and nothing is ever cut off.

Row limit: a PDF holds at most `settings.pdf_itemized_row_limit` data rows (default 10,000). The
writer counts the rows (count() over the same query) BEFORE rendering anything and raises
`exports.errors.ReportTooLarge` above the limit, suggesting CSV or XLSX, which have no limit. The
same limit applies to summary PDFs, whose HTML layout is far slower per row than the canvas; they
fetch at most limit + 1 rows of their single query and count only when over it.

- Summary (`query.shape == "summary"`), A4 portrait, like a bank statement: a header (title,
  account, period, timezone, data as of, generated), then per currency a key-figures band, the
  chart (`charts`: the balance waterfall, a bucketed time series for daily reports, one bar per
  category otherwise; never a silent cap) and the table, the report's total row last.
  "No activity in this period" when there are no rows. `templates/summary.html.j2` and its
  stylesheet `summary.css.j2`.
- Itemized: reportlab canvas, rows drawn page by page as they stream from ClickHouse (Native row
  blocks). `pdf_layout` fits the selected columns (portrait or landscape, 8 pt down to 6 pt,
  text columns wrapped, ids/amounts/times whole) from their widest values, or refuses the
  selection naming `columns`. Every page repeats the header and says "Page n of N"; the totals
  per currency end the table, each under its column. weasyprint was measured at 62 s / 2 GB for
  10k rows; the canvas stays flat in memory.
"""

from __future__ import annotations

import contextvars
import functools
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from exports import html_pdf, vega
from exports.errors import ReportTooLarge
from exports.reports.query import ACCOUNT_COLUMN, Manifest, ReportQuery
from exports.settings import Settings
from exports.writers import charts
from exports.writers.pdf_layout import (MARGIN, PAD, ItemizedLayout, Text, nominal_widest,
                                        plan_itemized_layout, width_sql, width_table_sql)
from exports.writers.manifest import (Progress, QueryFacts, atomic_output, build_manifest,
                                      check_row_count, facts_from_rows, figure_row_sql,
                                      file_digest, query_columns)
from exports.writers.presentation import Presenter, currency_code, d3_locale, label
from exports.writers.sqlformat import CURRENCY_COLUMN, EXPONENT_COLUMN, format_column, ident

TEMPLATES_DIR = Path(__file__).parent / "templates"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
NUMERIC_KINDS = ("money", "integer")


def _check_row_limit(row_count: int, settings: Settings) -> None:
    limit = settings.pdf_itemized_row_limit
    if row_count > limit:
        raise ReportTooLarge(
            f"This report has {row_count:,} rows; PDF reports are limited to {limit:,} rows. "
            "Request it as CSV or XLSX instead, or narrow the interval or filters.",
            param="format")


def write_itemized_pdf(client: Client, query: ReportQuery, facts: QueryFacts, out_path: Path, *,
                       progress: Progress, settings: Settings) -> Manifest:
    """Itemized PDFs (summaries: write_summary_pdf, which needs no facts beforehand). The
    layout is planned from the widest values of every column (one aggregate over the rows,
    at most the row limit) before anything is drawn; a selection that cannot fit is refused."""
    _check_row_limit(facts.row_count, settings)
    fmt = Presenter(query.locale)
    layout = plan_itemized_layout(query.columns, _widest_values(client, query, facts, fmt))
    with atomic_output(out_path) as tmp:
        with client.query_row_block_stream(itemized_sql(query, facts),
                                           parameters=query.parameters) as blocks:
            rows = render_itemized_rows(query, facts, blocks, tmp, progress, layout=layout)
        check_row_count(rows, facts, query)
    byte_size, sha256 = file_digest(out_path)
    progress.finish(rows)
    return build_manifest(query, "pdf", out_path, facts, byte_size=byte_size, sha256=sha256,
                          row_count=rows, extra={"layout": query.shape, "page": {
                              "orientation": "landscape" if layout.landscape else "portrait",
                              "font_size": layout.font_size}})


def itemized_sql(query: ReportQuery, facts: QueryFacts) -> str:
    """The rows as the renderer draws them, columns `c0..cN`, then `cur`, `e` (the row's currency
    and exponent): money and integers typed (the Presenter formats them for the locale),
    everything else as text by the CSV rules (without the formula guard: nothing here is
    evaluated)."""
    exprs = []
    for i, column in enumerate(query.columns):
        ref = facts.column_sql(i)
        if column.kind in NUMERIC_KINDS:
            exprs.append(f"toInt64({ref}) AS c{i}")
        else:
            exprs.append(f"{format_column(ref, column.kind, guard_formulas=False)} AS c{i}")
    exprs += [f"{ident(CURRENCY_COLUMN)} AS cur", f"toUInt8({ident(EXPONENT_COLUMN)}) AS e"]
    return f"SELECT {', '.join(exprs)} FROM ({query.sql})"


def _widest_values(client: Client, query: ReportQuery, facts: QueryFacts, fmt: Presenter) -> list[str]:
    """Per column, the widest text it will print: the widest value (measured in ClickHouse with
    the font's glyph widths), or for numbers the widest of its extremes and of the totals
    printed under it, each formatted with its own currency's exponent."""
    parts = []
    for i, column in enumerate(query.columns):
        if column.kind in NUMERIC_KINDS:
            parts += [f"min(c{i})", f"max(c{i})"]
        else:
            parts.append(f"argMax(c{i}, {width_sql(f'c{i}')})")
    groups = client.query(f"{width_table_sql(Text())} SELECT e, {', '.join(parts)} "
                          f"FROM ({itemized_sql(query, facts)}) GROUP BY e",
                          parameters=query.parameters).result_rows
    candidates: list[list[str]] = [[] for _ in query.columns]
    for exponent, *values in groups:
        position = 0
        for i, column in enumerate(query.columns):
            if column.kind in NUMERIC_KINDS:
                for value in values[position:position + 2]:
                    candidates[i].append(fmt.amount(int(value or 0), int(exponent))
                                         if column.kind == "money" else fmt.integer(int(value or 0)))
                position += 2
            else:
                candidates[i].append(str(values[position] or ""))
                position += 1
    for i, column in enumerate(query.columns):
        for currency, total in facts.totals_minor.get(column.name, {}).items():
            candidates[i].append(fmt.amount(total, facts.exponents.get(currency, 0)))
    glyphs = Text()
    return [max(texts, key=lambda t: glyphs.width(t, glyphs.regular, 10), default="")
            for texts in candidates]


# ---------------------------------------------------------------- summary (weasyprint)

@dataclass(frozen=True)
class SummaryRows:
    """What a summary PDF reads from the warehouse: its query's rows (summary_pdf_sql: the
    report's columns, currency, exponent, then what the row adds to each figure), at most the
    row limit + 1, and each companion's rows (the report's columns, currency, exponent) by role."""
    rows: list[tuple]
    companions: dict[str, list[tuple]]


def summary_pdf_sql(query: ReportQuery, names: Sequence[str], *, limit: int,
                    batch: ReportQuery | None = None) -> str:
    """The summary PDF's one query of its report. `batch`: the same report over many accounts
    (QueryContext.account_ids), each row's account last, at most `limit` + 1 rows per account."""
    selected = [ident(n) for n in (*names, CURRENCY_COLUMN, EXPONENT_COLUMN)] + figure_row_sql(query, names)
    if batch is None:
        return f"SELECT {', '.join(selected)} FROM ({query.sql}) LIMIT {int(limit) + 1}"
    return (f"SELECT {', '.join(selected)}, {ident(ACCOUNT_COLUMN)} FROM ({batch.sql}) "
            f"LIMIT {int(limit) + 1} BY {ident(ACCOUNT_COLUMN)}")


def _companion_sql(companion: ReportQuery, names: Sequence[str], batch: ReportQuery | None = None) -> str:
    selected = [ident(n) for n in (*names, CURRENCY_COLUMN, EXPONENT_COLUMN)]
    if batch is not None:
        selected.append(ident(ACCOUNT_COLUMN))
    return f"SELECT {', '.join(selected)} FROM ({(batch or companion).sql})"


def _summary_rows(client: Client, query: ReportQuery, names: Sequence[str], *, limit: int) -> SummaryRows:
    rows = client.query(summary_pdf_sql(query, names, limit=limit), parameters=query.parameters).result_rows
    companions = {}
    for role, companion in query.companions.items():
        companion_names, _ = query_columns(client, companion)
        companions[role] = client.query(_companion_sql(companion, companion_names),
                                        parameters=companion.parameters).result_rows
    return SummaryRows(rows, companions)


def summary_rows_by_account(client: Client, query: ReportQuery, batch: ReportQuery, *,
                            limit: int) -> dict[str, SummaryRows]:
    """One query for the report and one per companion, for the summary PDF of every account of
    `batch` (`query`: one of them, for the columns): account -> the SummaryRows
    write_summary_pdf would have fetched for it (every account of the batch, rows or none)."""
    def by_account(sql: str, parameters: dict) -> dict[str, list[tuple]]:
        grouped: dict[str, list[tuple]] = {account: [] for account in batch.parameters["account_ids"]}
        for row in client.query(sql, parameters=parameters).result_rows:
            grouped[row[-1]].append(tuple(row[:-1]))
        return grouped

    names, _ = query_columns(client, query)
    rows = by_account(summary_pdf_sql(query, names, limit=limit, batch=batch), batch.parameters)
    companions = {}
    for role, companion in query.companions.items():
        companion_names, _ = query_columns(client, companion)
        companions[role] = by_account(_companion_sql(companion, companion_names, batch.companions[role]),
                                      batch.companions[role].parameters)
    return {account: SummaryRows(rows[account], {role: found[account] for role, found in companions.items()})
            for account in rows}


def write_summary_pdf(client: Client, query: ReportQuery, out_path: Path, *, progress: Progress,
                      settings: Settings, prefetched: SummaryRows | None = None) -> Manifest:
    """A summary PDF from ONE run of the report query: a summary is small (at most the row
    limit), so its typed rows are fetched whole and the manifest's facts are summed from them
    instead of by a separate totals query (which on a summary over millions of rows costs as
    much as the report itself). Companion queries (the balance summary's activity by category)
    are small aggregates of their own. `prefetched`: those rows, fetched already for many
    accounts at once (exports.reports.batches)."""
    # The chart engine's start (~0.5 s, once per process) overlaps the queries, where the
    # charts are drawn in this process (not by the PDF workers of html_to_pdf).
    warming = None
    if html_to_pdf.get() is None:
        warming = threading.Thread(target=_warm_up_charts, name="warm-up-charts", daemon=True)
        warming.start()
    names, types = query_columns(client, query)
    limit = settings.pdf_itemized_row_limit
    found = prefetched or _summary_rows(client, query, names, limit=limit)
    # Rows: the report's columns, currency, exponent (what the document shows); then what each
    # row adds to each of the manifest's figures.
    fetched = [tuple(r[:len(names) + 2]) for r in found.rows]
    if len(fetched) > limit:
        total = client.query(f"SELECT count() FROM ({query.sql})", parameters=query.parameters)
        _check_row_limit(int(total.result_rows[0][0]), settings)
    facts = facts_from_rows(query, names, types,
                            [tuple(r[len(names) + 2:]) + tuple(r[len(names):len(names) + 2])
                             for r in found.rows])
    companions = {role: _typed(companion, found.companions[role])
                  for role, companion in query.companions.items()}
    if warming is not None:
        warming.join()
    with atomic_output(out_path) as tmp:
        rows = _render_summary(query, fetched, companions, tmp, settings)
    byte_size, sha256 = file_digest(out_path)
    progress.finish(rows)
    return build_manifest(query, "pdf", out_path, facts, byte_size=byte_size, sha256=sha256,
                          row_count=rows, extra={"layout": query.shape})


def _warm_up_charts() -> None:
    try:
        vega.warm_up()
    except Exception:  # noqa: BLE001 - rendering the chart reports the real error
        pass


def _typed(query: ReportQuery, rows: list[tuple]) -> list[dict]:
    keys = [c.name for c in query.columns] + [CURRENCY_COLUMN, EXPONENT_COLUMN]
    return [dict(zip(keys, row)) for row in rows]


def _render_summary(query: ReportQuery, fetched: list[tuple], companions: dict[str, list[dict]],
                    tmp: Path, settings: Settings) -> int:
    """`fetched`: typed report columns, then currency and exponent."""
    document = summary_document(query, fetched, companions)
    specs = {}
    for section in document["sections"]:
        for chart in section["charts"]:
            chart.url = html_pdf.chart_url(len(specs))
            specs[chart.url] = (chart.spec, d3_locale(query.locale))
    html = _templates().get_template("summary.html.j2").render(**document)
    stylesheet = _templates().get_template("summary.css.j2").render(
        font_family=SUMMARY_FONT_FAMILY, font_faces=summary_font_faces(settings))
    (html_to_pdf.get() or html_pdf.write_pdf)(html_pdf.Document(html, stylesheet, str(TEMPLATES_DIR), specs),
                                              tmp)
    return len(fetched)


# A run rendering many summary PDFs may set this to hand the HTML -> PDF step (WeasyPrint and
# the charts: most of a summary PDF's CPU) to worker processes, as fn(document, path): plain
# data in, the file out; the queries stay in this process (exports/statements/render_pool.py).
html_to_pdf: contextvars.ContextVar[Callable[[html_pdf.Document, Path], None] | None] = \
    contextvars.ContextVar("html_to_pdf", default=None)


@functools.cache
def _templates():
    """Compiled once per process (~40 ms a template). The stylesheet (.css.j2) is not HTML:
    not escaped."""
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                              autoescape=jinja2.select_autoescape(["html", "html.j2"]))


def _header(query: ReportQuery, fmt: Presenter, currencies: list[str]) -> dict:
    generated = datetime.now(UTC)
    as_of = query.data_as_of
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=UTC)
    return {
        "title": query.title, "account_name": query.account_name or query.account_id,
        "account_id": query.account_id if query.account_name else "",
        "period": fmt.period(query.interval_start, query.interval_end, query.timezone),
        "timezone": query.timezone,
        "currencies": ", ".join(currency_code(c) for c in currencies),
        "data_as_of": fmt.datetime(as_of, query.timezone) if as_of else "",
        "generated_at": fmt.datetime(generated, query.timezone),
    }


def summary_document(query: ReportQuery, fetched: list[tuple],
                     companions: dict[str, list[dict]] | None = None) -> dict:
    """Everything the summary template shows, from the typed rows: a header, then per currency
    a key-figures band, the chart(s) and the table. Pure (no engine, no renderer): charts are
    Vega-Lite specs, rendered afterwards."""
    fmt = Presenter(query.locale)
    width = len(query.columns)
    by_currency: dict[str, list[tuple]] = {}
    for row in fetched:
        by_currency.setdefault(row[width] or "", []).append(row)
    sections = [_section(query, currency, rows, companions or {}, fmt)
                for currency, rows in by_currency.items()]
    return {**_header(query, fmt, [c for c in by_currency if c]), "sections": sections,
            "empty_message": EMPTY_MESSAGE if not fetched else ""}


EMPTY_MESSAGE = "No activity in this period"


def _section(query: ReportQuery, currency: str, rows: list[tuple], companions: dict[str, list[dict]],
             fmt: Presenter) -> dict:
    section = _section_content(query, currency, rows, companions, fmt)
    # As many key figures side by side as their longest value leaves room for (A4 portrait).
    longest = max((len(f["value"]) + len(f["currency"]) for f in section["figures"]), default=0)
    per_row = 4 if longest <= 14 else 3 if longest <= 20 else 2
    count = len(section["figures"])
    if count > per_row and count <= 2 * per_row:  # balanced rows: 5 -> 3 + 2, 6 -> 3 + 3
        per_row = (count + 1) // 2
    section["figures_per_row"] = max(per_row, 1)
    return section


def _section_content(query: ReportQuery, currency: str, rows: list[tuple],
                     companions: dict[str, list[dict]], fmt: Presenter) -> dict:
    width = len(query.columns)
    exponent = int(rows[0][width + 1]) if rows else 0
    names = [c.name for c in query.columns]
    label_index = names.index(query.chart_label_column) if query.chart_label_column in names else None
    value_index = names.index(query.chart_value_column) if query.chart_value_column in names else None
    date_index = next((i for i, c in enumerate(query.columns) if c.kind == "date"), None)
    section = {"currency": currency_code(currency) if currency else "", "figures": [],
               "charts": [], "tables": [], "note": ""}
    if query.identity and label_index is not None and value_index is not None:
        _balance_section(query, section, currency, exponent, rows, label_index, value_index,
                         companions.get("activity_by_category", []), fmt,
                         payout_rows=companions.get("payouts_by_category", []))
        return section
    total_rows = [r for r in rows if label_index is not None and r[label_index] == TOTAL_LABEL]
    body_rows = [r for r in rows if r not in total_rows]
    figure_cols = [i for i, c in enumerate(query.columns)
                   if c.kind == "money" or (c.kind == "integer" and (c.summable or total_rows))]
    if total_rows:  # the report's own total row is its key figures
        section["figures"] = [_figure(query.columns[i].name, total_rows[0][i],
                                      query.columns[i].kind, exponent, currency, fmt)
                              for i in figure_cols]
    elif query.totals_are_additive:
        section["figures"] = [_figure(query.columns[i].name, sum(int(r[i] or 0) for r in rows),
                                      query.columns[i].kind, exponent, currency, fmt)
                              for i in figure_cols]
    if value_index is not None and query.columns[value_index].kind == "money":
        if date_index is not None and query.interval_start and query.interval_end:
            section["charts"].append(_time_series(query, body_rows, date_index, label_index,
                                                  value_index, exponent, currency, fmt))
        elif label_index is not None and body_rows:
            value_name = query.columns[value_index].name
            section["charts"].append(charts.category_bars(
                f"{label(value_name)} by {label(query.chart_label_column).lower()}",
                [(_value_label(query, label_index, r[label_index]), int(r[value_index] or 0))
                 for r in body_rows], exponent, currency, fmt))
    pivot = (_daily_statement(query, body_rows, date_index, label_index, value_index, exponent, fmt)
             if query.totals_are_additive and not total_rows else None)
    if pivot is not None:
        section["tables"].append(pivot)
        return section
    table = _table(query, rows, exponent, label_index, fmt)
    if query.totals_are_additive and not total_rows and rows:
        table["total"] = _total_row(query, table["columns"], rows, exponent, fmt)
    section["tables"].append(table)
    return section


# A day-by-category summary (fees.summary: one row per day and fee type) reads as a statement
# with one row per day and a column per category, up to this many categories (an A4 page fits
# them with the date, a count and the total); more fall back to one row per day and category.
MAX_STATEMENT_CATEGORIES = 6


def _daily_statement(query: ReportQuery, rows: list[tuple], date_index: int | None,
                     label_index: int | None, value_index: int | None, exponent: int,
                     fmt: Presenter) -> dict | None:
    """Date | summable counts | one column per category | Total, one row per day, a total row
    under every column. None when the report is not a day-by-category money summary."""
    if (date_index is None or label_index is None or value_index is None or not rows
            or label_index == date_index or query.columns[value_index].kind != "money"):
        return None
    label_name = query.columns[label_index].name
    per_category: dict[str, int] = {}
    for row in rows:
        key = str(row[label_index])
        per_category[key] = per_category.get(key, 0) + int(row[value_index] or 0)
    if len(per_category) > MAX_STATEMENT_CATEGORIES:
        return None
    categories = _largest_first(per_category)  # the chart's legend order
    counts = [i for i, c in enumerate(query.columns) if c.kind == "integer" and c.summable]
    days: dict = {}
    for row in rows:
        day = days.setdefault(row[date_index], {"counts": [0] * len(counts), "values": {}})
        for position, i in enumerate(counts):
            day["counts"][position] += int(row[i] or 0)
        key = str(row[label_index])
        day["values"][key] = day["values"].get(key, 0) + int(row[value_index] or 0)
    value_label = label(query.columns[value_index].name)
    columns = ([{"name": label(query.columns[date_index].name), "numeric": False}]
               + [{"name": label(query.columns[i].name), "numeric": True} for i in counts]
               + [{"name": label(c, context=label_name), "numeric": True} for c in categories]
               + [{"name": f"Total {value_label.lower()}" if value_label != "Total" else "Total",
                   "numeric": True}])
    body = []
    for day in sorted(days):
        entry = days[day]
        body.append({"total": False, "cells": [
            fmt.date(day), *[fmt.integer(n) for n in entry["counts"]],
            *[fmt.amount(entry["values"][c], exponent) if c in entry["values"] else NO_VALUE
              for c in categories],
            fmt.amount(sum(entry["values"].values()), exponent)]})
    total = ["Total", *[fmt.integer(sum(d["counts"][p] for d in days.values()))
                        for p in range(len(counts))],
             *[fmt.amount(per_category[c], exponent) for c in categories],
             fmt.amount(sum(per_category.values()), exponent)]
    return {"caption": "", "columns": columns, "rows": body, "total": total}


def _largest_first(totals: dict[str, int]) -> list[str]:
    """Categories by the size of their total over the period (so the same fee type leads in
    every currency's chart and table), ties by name."""
    return sorted(totals, key=lambda name: (-abs(totals[name]), name))


NO_VALUE = "–"  # a category with no transactions that day (not a zero amount)


TOTAL_LABEL = "total"
PAYOUT_CATEGORIES = ("payout", "payout_reversal")


def _value_label(query: ReportQuery, index: int | None, value) -> str:
    if index is None or query.columns[index].kind not in ("string",):
        return str(value)
    return label(str(value), context=query.columns[index].name)


def _figure(name: str, value, kind: str, exponent: int, currency: str, fmt: Presenter) -> dict:
    value = int(value or 0)
    money = kind == "money"
    return {"label": label(name),
            "value": fmt.amount(value, exponent) if money else fmt.integer(value),
            "currency": currency_code(currency) if money and currency else "",
            "negative": value < 0}


def _cell(column, value, exponent: int, fmt: Presenter, *, human_codes: bool) -> str:
    if value is None:
        return ""
    if column.kind == "money":
        return fmt.amount(int(value), exponent)
    if column.kind == "integer":
        return fmt.integer(int(value))
    if column.kind == "date":
        return fmt.date(value)
    if column.kind == "timestamp":
        return value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value)
    if column.kind == "boolean":
        return "Yes" if value else "No"
    return label(str(value), context=column.name) if human_codes else str(value)


def _table(query: ReportQuery, rows: list[tuple], exponent: int, label_index: int | None,
           fmt: Presenter) -> dict:
    width = len(query.columns)
    # The currency column repeats the section's heading: dropped (whatever it is called).
    shown = [i for i in range(width)
             if not (query.columns[i].kind == "string" and rows
                     and all((r[i] or "") == (r[width] or "") for r in rows))]
    columns = [{"index": i, "name": label(query.columns[i].name),
                "numeric": query.columns[i].kind in NUMERIC_KINDS} for i in shown]
    body = []
    for row in rows:
        is_total = label_index is not None and row[label_index] == TOTAL_LABEL
        body.append({"total": is_total, "cells": [
            _cell(query.columns[i], row[i], exponent, fmt, human_codes=i == label_index)
            for i in shown]})
    return {"caption": "", "columns": columns, "rows": body, "total": None}


def _total_row(query: ReportQuery, columns: list[dict], rows: list[tuple], exponent: int,
               fmt: Presenter) -> list[str]:
    cells = []
    for position, column in enumerate(columns):
        spec = query.columns[column["index"]]
        if spec.kind == "money" or (spec.kind == "integer" and spec.summable):
            total = sum(int(r[column["index"]] or 0) for r in rows)
            cells.append(fmt.amount(total, exponent) if spec.kind == "money" else fmt.integer(total))
        else:
            cells.append("Total" if position == 0 else "")
    return cells


def _time_series(query: ReportQuery, rows: list[tuple], date_index: int, label_index: int | None,
                 value_index: int, exponent: int, currency: str, fmt: Presenter) -> charts.Chart:
    zone = ZoneInfo(query.timezone)
    first = query.interval_start.astimezone(zone).date()
    last = (query.interval_end - timedelta(microseconds=1)).astimezone(zone).date()
    split = label_index is not None and label_index != date_index
    series: dict = {}
    series_labels: dict[str, str] = {}
    for row in rows:
        name = str(row[label_index]) if split else query.columns[value_index].name
        series_labels.setdefault(name, _value_label(query, label_index, name) if split
                                 else label(name))
        day = series.setdefault(row[date_index], {})
        day[name] = day.get(name, 0) + int(row[value_index] or 0)
    if not series_labels:
        name = query.columns[value_index].name
        series_labels[name] = label(name)
    if split:  # the legend (and the statement table's columns) largest first
        totals: dict[str, int] = {}
        for day in series.values():
            for name, value in day.items():
                totals[name] = totals.get(name, 0) + value
        series_labels = {name: series_labels[name] for name in _largest_first(totals)}
    bucket = charts.bucket_of((last - first).days + 1)
    title = f"{label(query.columns[value_index].name)} per {bucket}"
    if split:
        title += f" by {label(query.columns[label_index].name).lower()}"
    return charts.time_series(title, series, series_labels, first, last, exponent, currency, fmt)


def _balance_section(query: ReportQuery, section: dict, currency: str, exponent: int,
                     rows: list[tuple], label_index: int, value_index: int,
                     activity_rows: list[dict], fmt: Presenter, *,
                     payout_rows: list[dict] = ()) -> None:
    """ending = starting + activity + payouts, drawn as a waterfall with the activity broken
    down by reporting category when the companion query's categories add up to it exactly, and
    the payouts into payouts and payout reversals when there are reversals (same rule)."""
    result_label, addend_labels = query.identity
    value_of = {r[label_index]: int(r[value_index] or 0) for r in rows}
    width = len(query.columns)
    # The rows' own wording ("Starting balance (2024-02-01)"): a text column that is neither the
    # category nor the currency.
    description_index = next((i for i, c in enumerate(query.columns)
                              if c.kind == "string" and i != label_index
                              and not all((r[i] or "") == (r[width] or "") for r in rows)), None)
    description_of = {r[label_index]: r[description_index] for r in rows} if description_index is not None else {}
    start_label, activity_label, payouts_label = addend_labels
    # The companion is balance_change_from_activity.summary: reporting_category, ..., net. Its
    # categories are the activity's breakdown when they add up to it exactly (with or without
    # payout categories, whichever definition the activity summary follows).
    listed = [(r["reporting_category"], int(r["net"] or 0)) for r in activity_rows
              if r.get(CURRENCY_COLUMN) == currency and "net" in r
              and r.get("reporting_category") not in (None, TOTAL_LABEL)]
    activity = value_of.get(activity_label, 0)
    categories = next((option for option in (
        listed, [(c, v) for c, v in listed if c not in PAYOUT_CATEGORIES])
        if sum(v for _, v in option) == activity), [(activity_label, activity)])
    payouts = value_of.get(payouts_label, 0)
    payout_parts = [(r["reporting_category"], int(r["net"] or 0)) for r in payout_rows
                    if r.get(CURRENCY_COLUMN) == currency and "net" in r
                    and r.get("reporting_category") in PAYOUT_CATEGORIES]
    if not any(c != "payout" and v for c, v in payout_parts) \
            or sum(v for _, v in payout_parts) != payouts:
        payout_parts = [(payouts_label, payouts)]  # no reversals (or no exact breakdown): one line
    section["figures"] = [
        _figure(name, value_of.get(name, 0), "money", exponent, currency, fmt)
        for name in (start_label, activity_label, payouts_label, result_label)]
    steps = [(label(start_label), value_of.get(start_label, 0), "total"),
             *[(label(c), v, "delta") for c, v in categories],
             *[(label(c), v, "delta") for c, v in payout_parts],
             (label(result_label), value_of.get(result_label, 0), "total")]
    no_activity = value_of.get(activity_label, 0) == 0 and value_of.get(payouts_label, 0) == 0 \
        and not [c for c in activity_rows if c.get(CURRENCY_COLUMN) == currency]
    if no_activity:
        section["note"] = EMPTY_MESSAGE
    else:
        section["charts"].append(charts.waterfall("Balance change", steps, exponent, currency, fmt))
    holds = value_of.get(result_label, 0) == sum(value_of.get(a, 0) for a in addend_labels)
    statement = [{"cells": [description_of.get(start_label) or label(start_label),
                            fmt.amount(value_of.get(start_label, 0), exponent)], "total": True}]
    statement += [{"cells": [label(c), fmt.amount(v, exponent)], "indent": True}
                  for c, v in categories if (c, v) != (activity_label, value_of.get(activity_label, 0))]
    statement.append({"cells": [description_of.get(activity_label) or label(activity_label),
                                fmt.amount(value_of.get(activity_label, 0), exponent)]})
    statement += [{"cells": [label(c), fmt.amount(v, exponent)], "indent": True}
                  for c, v in payout_parts if c != payouts_label]
    statement.append({"cells": [description_of.get(payouts_label) or label(payouts_label),
                                fmt.amount(value_of.get(payouts_label, 0), exponent)]})
    statement.append({"cells": [description_of.get(result_label) or label(result_label),
                                fmt.amount(value_of.get(result_label, 0), exponent)], "total": True})
    section["tables"].append({
        "caption": ("Ending balance = starting balance + activity + payouts"
                    + ("" if holds else " — DOES NOT HOLD for these figures")),
        "columns": [{"name": "", "numeric": False},
                    {"name": f"Amount ({currency_code(currency)})", "numeric": True}],
        "rows": statement, "total": None, "check_failed": not holds})


# The summary PDFs' font: DejaVu Sans without its OpenType layout and math tables (GSUB/GPOS/GDEF:
# ligatures and kerning; MATH: formula layout; none of which these tables of numbers use).
# WeasyPrint subsets every embedded font with fontTools, which parses those tables even when it
# drops them: measured 0.17 -> 0.07 s per face, of a ~0.6 s render. Copies are made once per
# state dir; bump the version when the list changes.
SUMMARY_FONT_FAMILY = "Payreports Sans"
SUMMARY_FONT_FACES = (("normal", "DejaVuSans.ttf"), ("bold", "DejaVuSans-Bold.ttf"))
UNUSED_FONT_TABLES = ("GSUB", "GPOS", "GDEF", "MATH")
FONT_COPY_VERSION = 2


def summary_font_faces(settings: Settings) -> list[dict[str, str]]:
    """[{weight, url}] of the lean copies, made on first use; [] when DejaVu is not
    installed (the template then falls back to the system's sans-serif)."""
    from fontTools.ttLib import TTFont

    cache = settings.state_dir / "fonts"
    faces = []
    for weight, name in SUMMARY_FONT_FACES:
        source = FONT_DIR / name
        if not source.exists():
            return []
        copy = cache / name.replace(".ttf", f"-lean{FONT_COPY_VERSION}.ttf")
        if not copy.exists():
            cache.mkdir(parents=True, exist_ok=True)
            font = TTFont(source)
            for tag in UNUSED_FONT_TABLES:
                if tag in font:
                    del font[tag]
            # Per process and thread: a statements run's pack threads may both make it first.
            partial = copy.with_name(f".{copy.name}.{os.getpid()}.{threading.get_ident()}.partial")
            font.save(partial)
            os.replace(partial, copy)  # atomic: concurrent runs never see half a font
        faces.append({"weight": weight, "url": copy.resolve().as_uri()})
    return faces


# ---------------------------------------------------------------- itemized (reportlab)

MAX_GLYPH_EM = 0.62  # no glyph of DejaVu Sans Condensed is wider than this: a cheap fit test


def _break_characters(text: str, room: float, width) -> list[str]:
    """Lines of `text`, broken between characters where it must (after an '@', '.', '/', '-',
    '_' or '+' when the line has one: emails and URLs break where they read naturally).
    Nothing is ever dropped. `width(text)` measures in points."""
    lines, current = [], ""
    for char in text:
        if current and width(current + char) > room:
            cut = max(current.rfind(c) for c in BREAK_AFTER) + 1
            if 0 < cut < len(current) and width(current[cut:] + char) <= room:
                lines.append(current[:cut])
                current = current[cut:] + char
            else:
                lines.append(current)
                current = char
        else:
            current += char
    return lines + [current]


BREAK_AFTER = "@./-_+"


def _wrap_words(text: str, room: float, width) -> list[str]:
    """Lines at word boundaries (and at the text's own newlines); a word wider than the column
    is broken between characters."""
    lines = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if width(candidate) <= room:
                current = candidate
                continue
            if current:
                lines.append(current)
            if width(word) <= room:
                current = word
            else:
                *full, current = _break_characters(word, room, width)
                lines += full
        lines.append(current)
    return lines


def render_itemized_rows(query: ReportQuery, facts: QueryFacts,
                         blocks: Iterable[Sequence[Sequence]], tmp: Path,
                         progress: Progress, *, layout: ItemizedLayout | None = None) -> int:
    """Draw the rows (blocks of `itemized_sql` rows) page by page onto a reportlab canvas;
    returns the row count. Every page repeats the title, account, period and the column header;
    every page says "Page n of N" (N is a form drawn once at the end); the totals per currency
    come last, each under its column. Apart from the engine: the benchmark measures it alone,
    as it runs beside a ClickHouse server. Without `layout`, it is planned from nominal widths
    (values wider than planned are broken over lines, never cut)."""
    from reportlab.pdfgen import canvas

    if layout is None:
        layout = plan_itemized_layout(query.columns, [nominal_widest(c) for c in query.columns])
    fmt = Presenter(query.locale)
    glyphs = Text()
    font, bold, size = layout.font, layout.bold, layout.font_size

    def measure(text: str) -> float:
        return glyphs.width(text, font, size)
    line_height = layout.line_height
    page_width, page_height = layout.page_size
    margin = MARGIN
    usable = page_width - 2 * margin
    widths, lefts, numeric, wrap = layout.widths, layout.lefts, layout.numeric, layout.wrap
    rooms = [w - 2 * PAD for w in widths]
    kinds = [c.kind for c in query.columns]
    width = len(query.columns)
    currency_index, exponent_index = width, width + 1
    # Codes equal to the row's currency are currency columns (whatever they are called): shown
    # in the one currency style of human documents, uppercase ISO.
    currency_like = [c.kind == "string" for c in query.columns]
    fast_room = [room / (size * MAX_GLYPH_EM) for room in rooms]  # characters that always fit

    pdf = canvas.Canvas(str(tmp), pagesize=(page_width, page_height), pageCompression=1)
    pdf.setTitle(query.title)
    pdf.setAuthor("payreports")
    account_lines = _wrap_words(query.account_name or query.account_id, usable,
                                lambda t: glyphs.width(t, bold, 9))
    meta = [f"Account {query.account_id}" if query.account_name else "",
            f"Period {fmt.period(query.interval_start, query.interval_end, query.timezone)}",
            f"Timezone {query.timezone}"]
    if query.data_as_of is not None:
        as_of = query.data_as_of if query.data_as_of.tzinfo else query.data_as_of.replace(tzinfo=UTC)
        meta.append(f"Data as of {fmt.datetime(as_of, query.timezone)}")
    meta.append(f"Generated {fmt.datetime(datetime.now(UTC), query.timezone)}")
    meta_lines = _wrap_words("   ·   ".join(m for m in meta if m), usable,
                             lambda t: glyphs.width(t, font, 7))
    header_rows = layout.header_lines
    page = 0
    y = 0.0

    def new_page() -> None:
        nonlocal page, y
        if page:
            pdf.showPage()
        page += 1
        y = page_height - margin - 11
        pdf.setFont(bold, 12)
        pdf.drawString(margin, y, query.title)
        y -= 12
        pdf.setFont(bold, 9)
        for line in account_lines:
            glyphs.draw(pdf, margin, y, line, bold, 9)
            y -= 10.5
        pdf.setFont(font, 7)
        for line in meta_lines:
            glyphs.draw(pdf, margin, y, line, font, 7)
            y -= 9
        footer = margin - 12
        pdf.drawString(margin, footer, f"{query.title} · {query.account_id}")
        text = f"Page {page} of "
        pdf.drawRightString(page_width - margin - 14, footer, text)
        pdf.doForm("page_count")
        y -= 6
        pdf.setFont(bold, size)
        for i, lines in enumerate(layout.headers):
            line_y = y
            for line in lines:
                if numeric[i]:
                    pdf.drawRightString(lefts[i] + widths[i] - PAD, line_y, line)
                else:
                    pdf.drawString(lefts[i] + PAD, line_y, line)
                line_y -= line_height
        y -= (header_rows - 1) * line_height
        pdf.setLineWidth(0.6)
        pdf.line(margin, y - 2.5, page_width - margin, y - 2.5)
        y -= line_height + 1
        pdf.setFont(font, size)
        pdf.setLineWidth(0.25)
        pdf.setStrokeGray(0.82)

    def cell_lines(i: int, text: str) -> list[str]:
        if "\n" not in text and (len(text) <= fast_room[i] or measure(text) <= rooms[i]):
            return [text]
        if wrap[i]:
            return _wrap_words(text, rooms[i], measure)
        return _break_characters(text.replace("\n", " "), rooms[i], measure)

    def draw_row(cells: list[list[str]]) -> None:
        nonlocal y
        lines = max(len(c) for c in cells)
        if y - (lines - 1) * line_height < margin and page_height - 2 * margin > lines * line_height * 1.5:
            new_page()
        for k in range(lines):
            if y < margin:  # a row taller than a page continues on the next one
                new_page()
            for i, column_lines in enumerate(cells):
                if k < len(column_lines) and column_lines[k]:
                    text = column_lines[k]
                    if numeric[i]:
                        pdf.drawRightString(lefts[i] + widths[i] - PAD, y, text)
                    elif text.isascii():
                        pdf.drawString(lefts[i] + PAD, y, text)
                    else:
                        glyphs.draw(pdf, lefts[i] + PAD, y, text, font, size)
            y -= line_height
        pdf.line(margin, y + line_height - 2.2, page_width - margin, y + line_height - 2.2)

    new_page()
    rows = 0
    for block in blocks:
        for row in block:
            exponent = int(row[exponent_index] or 0)
            currency = row[currency_index] or ""
            cells = []
            for i in range(width):
                value = row[i]
                if value is None or value == "":
                    cells.append([""])
                    continue
                if kinds[i] == "money":
                    text = fmt.amount(value, exponent)
                elif kinds[i] == "integer":
                    text = fmt.integer(value)
                else:
                    text = value
                    if currency_like[i] and text == currency:
                        text = currency_code(text)
                cells.append(cell_lines(i, text))
            draw_row(cells)
        rows += len(block)
        progress.advance(len(block))
    _draw_totals(pdf, query, facts, layout, fmt, rows, y, new_page, lambda: y)
    pdf.beginForm("page_count")
    pdf.setFont(font, 7)
    pdf.drawString(page_width - margin - 14, margin - 12, f"{page}")
    pdf.endForm()
    pdf.save()
    return rows


def _draw_totals(pdf, query: ReportQuery, facts: QueryFacts, layout: ItemizedLayout,
                 fmt: Presenter, rows: int, y: float, new_page, current_y) -> None:
    """'Total USD' rows, one per currency, each amount under its own column; then the row count."""
    money = [i for i, c in enumerate(query.columns) if c.kind == "money"]
    currencies = sorted({c for i in money for c in facts.totals_minor.get(query.columns[i].name, {})})
    line_height, size = layout.line_height, layout.font_size
    needed = (len(currencies) + 2) * line_height + 4
    if y - needed < MARGIN:
        new_page()
        y = current_y()
    y -= 3
    pdf.setStrokeGray(0)
    pdf.setLineWidth(0.6)
    pdf.line(MARGIN, y + line_height - 1.5, layout.page_size[0] - MARGIN, y + line_height - 1.5)
    label_right = layout.lefts[money[0]] if money else layout.page_size[0] - MARGIN
    for currency in currencies:
        exponent = facts.exponents.get(currency, 0)
        pdf.setFont(layout.bold, size)
        text = f"Total {currency_code(currency)}"
        pdf.drawString(MARGIN + PAD, y, text)
        if MARGIN + PAD + 30 + len(text) * size * MAX_GLYPH_EM > label_right:
            y -= line_height  # no room left of the first money column: amounts on the next line
        # Regular weight: the column widths were planned for regular digits (bold is wider).
        pdf.setFont(layout.font, size)
        for i in money:
            total = facts.totals_minor.get(query.columns[i].name, {}).get(currency)
            if total is not None:
                pdf.drawRightString(layout.lefts[i] + layout.widths[i] - PAD, y,
                                    fmt.amount(total, exponent))
        y -= line_height
    pdf.setFont(layout.font, size)
    summary = f"{fmt.integer(rows)} row{'' if rows == 1 else 's'}" if rows else EMPTY_MESSAGE
    pdf.drawString(MARGIN + PAD, y - 2, summary)
