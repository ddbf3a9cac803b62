"""PDF: summaries through weasyprint + a jinja2 template, itemized reports through a streaming
reportlab canvas.

Row limit: a PDF holds at most `settings.pdf_itemized_row_limit` data rows (default 10,000). The
writer counts the rows (count() over the same query) BEFORE rendering anything and raises
`exports.errors.ReportTooLarge` above the limit, suggesting CSV or XLSX, which have no limit. The
same limit applies to summary PDFs, whose HTML layout is far slower per row than the canvas; they
fetch at most limit + 1 rows of their single query and count only when over it.

- Summary (`query.shape == "summary"`): title, account, period and timezone, generation time,
  totals per currency, one inline SVG bar chart per currency of `chart_value_column` by
  `chart_label_column`, then the table. Rendered by weasyprint (`templates/summary.html.j2`).
- Itemized: reportlab canvas, A4 landscape, rows drawn page by page as they stream from
  ClickHouse (Native row blocks), the column header repeated on every page, "Page n" footers,
  totals per money column and currency at the end. weasyprint was measured at 62 s / 2 GB for 10k
  rows; the canvas stays flat in memory.
Values are formatted in ClickHouse with the CSV rules (sqlformat), without the formula guard.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from exports.errors import ReportTooLarge
from exports.money import format_minor
from exports.reports.query import Manifest, ReportQuery
from exports.settings import Settings
from exports.writers import charts
from exports.writers.manifest import (Progress, QueryFacts, atomic_output, build_manifest,
                                      check_row_count, facts_from_rows, file_digest,
                                      money_indexes, query_columns)
from exports.writers.presentation import Presenter, currency_code, label
from exports.writers.sqlformat import CURRENCY_COLUMN, EXPONENT_COLUMN, format_column, ident

TEMPLATES_DIR = Path(__file__).parent / "templates"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
CHART_MAX_BARS = 40  # a month of days fits
NUMERIC_KINDS = ("money", "integer")


def _check_row_limit(row_count: int, settings: Settings) -> None:
    limit = settings.pdf_itemized_row_limit
    if row_count > limit:
        raise ReportTooLarge(
            f"This report has {row_count:,} rows; PDF reports are limited to {limit:,} rows. "
            "Request it as CSV or XLSX instead, or narrow the interval or filters.",
            param="format")


def _formatted_sql(query: ReportQuery, facts: QueryFacts, extra: list[str] | None = None) -> str:
    exprs = [format_column(facts.column_sql(i), c.kind, guard_formulas=False,
                           exponents=facts.exponents.values())
             for i, c in enumerate(query.columns)]
    return f"SELECT {', '.join(exprs + (extra or []))} FROM ({query.sql})"


def _period(query: ReportQuery) -> str:
    if query.interval_start is None or query.interval_end is None:
        return "all time"
    zone = ZoneInfo(query.timezone)
    start = query.interval_start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    end = query.interval_end.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    return f"{start} to {end} (end exclusive)"


def _totals_lines(facts: QueryFacts) -> list[dict[str, str]]:
    return [{"column": column, "currency": currency.upper(),
             "amount": format_minor(total, facts.exponents.get(currency, 0))}
            for column, by_currency in facts.totals_minor.items()
            for currency, total in by_currency.items()]


def _account(query: ReportQuery) -> str:
    return f"{query.account_name} ({query.account_id})" if query.account_name else query.account_id


def write_itemized_pdf(client: Client, query: ReportQuery, facts: QueryFacts, out_path: Path, *,
                       progress: Progress, settings: Settings) -> Manifest:
    """Itemized PDFs (summaries: write_summary_pdf, which needs no facts beforehand)."""
    _check_row_limit(facts.row_count, settings)
    with atomic_output(out_path) as tmp:
        rows = _render_itemized(client, query, facts, tmp, progress)
        check_row_count(rows, facts, query)
    byte_size, sha256 = file_digest(out_path)
    progress.finish(rows)
    return build_manifest(query, "pdf", out_path, facts, byte_size=byte_size, sha256=sha256,
                          row_count=rows, extra={"layout": query.shape})


# ---------------------------------------------------------------- summary (weasyprint)

def write_summary_pdf(client: Client, query: ReportQuery, out_path: Path, *, progress: Progress,
                      settings: Settings) -> Manifest:
    """A summary PDF from ONE run of the report query: a summary is small (at most the row
    limit), so its typed rows are fetched whole and the manifest's facts are summed from them
    instead of by a separate totals query (which on a summary over millions of rows costs as
    much as the report itself). Companion queries (the balance summary's activity by category)
    are small aggregates of their own."""
    names, types = query_columns(client, query)
    money = money_indexes(query)
    limit = settings.pdf_itemized_row_limit
    selected = ", ".join(ident(n) for n in (*names, CURRENCY_COLUMN, EXPONENT_COLUMN))
    result = client.query(f"SELECT {selected} FROM ({query.sql}) LIMIT {limit + 1}",
                          parameters=query.parameters)
    fetched = [tuple(r) for r in result.result_rows]
    if len(fetched) > limit:
        total = client.query(f"SELECT count() FROM ({query.sql})", parameters=query.parameters)
        _check_row_limit(int(total.result_rows[0][0]), settings)
    width = len(query.columns)
    facts = facts_from_rows(query, names, types,
                            [tuple(r[i] for i in money) + (r[width], r[width + 1]) for r in fetched])
    companions = {role: _fetch_typed(client, companion)
                  for role, companion in query.companions.items()}
    with atomic_output(out_path) as tmp:
        rows = _render_summary(query, fetched, companions, tmp, settings)
    byte_size, sha256 = file_digest(out_path)
    progress.finish(rows)
    return build_manifest(query, "pdf", out_path, facts, byte_size=byte_size, sha256=sha256,
                          row_count=rows, extra={"layout": query.shape})


def _fetch_typed(client: Client, query: ReportQuery) -> list[dict]:
    names, _ = query_columns(client, query)
    selected = ", ".join(ident(n) for n in (*names, CURRENCY_COLUMN, EXPONENT_COLUMN))
    result = client.query(f"SELECT {selected} FROM ({query.sql})", parameters=query.parameters)
    keys = [c.name for c in query.columns] + [CURRENCY_COLUMN, EXPONENT_COLUMN]
    return [dict(zip(keys, row)) for row in result.result_rows]


def _render_summary(query: ReportQuery, fetched: list[tuple], companions: dict[str, list[dict]],
                    tmp: Path, settings: Settings) -> int:
    """`fetched`: typed report columns, then currency and exponent."""
    import jinja2
    import weasyprint

    document = summary_document(query, fetched, companions)
    for section in document["sections"]:
        for chart in section["charts"]:
            charts.render(chart, query.locale)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = env.get_template("summary.html.j2").render(
        **document, font_family=SUMMARY_FONT_FAMILY, font_faces=summary_font_faces(settings))
    weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf(tmp)
    return len(fetched)


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
            "empty_message": EMPTY_MESSAGE if not fetched else "",
            "row_count": len(fetched)}


EMPTY_MESSAGE = "No activity in this period"


def _section(query: ReportQuery, currency: str, rows: list[tuple], companions: dict[str, list[dict]],
             fmt: Presenter) -> dict:
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
                         companions.get("activity_by_category", []), fmt)
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
    table = _table(query, rows, currency, exponent, label_index, fmt)
    if query.totals_are_additive and not total_rows and rows:
        table["total"] = _total_row(query, table["columns"], rows, exponent, fmt)
    section["tables"].append(table)
    return section


TOTAL_LABEL = "total"


def _value_label(query: ReportQuery, index: int | None, value) -> str:
    if index is None or query.columns[index].kind not in ("string",):
        return str(value)
    return label(str(value), context=query.columns[index].name)


def _figure(name: str, value, kind: str, exponent: int, currency: str, fmt: Presenter,
            title: str | None = None) -> dict:
    value = int(value or 0)
    money = kind == "money"
    return {"label": title or label(name),
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


def _table(query: ReportQuery, rows: list[tuple], currency: str, exponent: int,
           label_index: int | None, fmt: Presenter) -> dict:
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
    bucket = charts.bucket_of((last - first).days + 1)
    title = f"{label(query.columns[value_index].name)} per {bucket}"
    if split:
        title += f" by {label(query.columns[label_index].name).lower()}"
    return charts.time_series(title, series, series_labels, first, last, exponent, currency, fmt)


def _balance_section(query: ReportQuery, section: dict, currency: str, exponent: int,
                     rows: list[tuple], label_index: int, value_index: int,
                     activity_rows: list[dict], fmt: Presenter) -> None:
    """ending = starting + activity + payouts, drawn as a waterfall with the activity broken
    down by reporting category when the companion query's categories add up to it exactly."""
    result_label, addend_labels = query.identity
    value_of = {r[label_index]: int(r[value_index] or 0) for r in rows}
    description_index = next((i for i, c in enumerate(query.columns)
                              if c.kind == "string" and i != label_index
                              and c.name != "currency" and not c.user_text), None)
    description_of = {r[label_index]: r[description_index] for r in rows} if description_index is not None else {}
    start_label, activity_label, payouts_label = addend_labels
    categories = [(r["reporting_category"], int(r["net"])) for r in activity_rows
                  if r.get(CURRENCY_COLUMN) == currency
                  and r.get("reporting_category") not in (TOTAL_LABEL, "payout")]
    if sum(v for _, v in categories) != value_of.get(activity_label, 0):
        categories = [(activity_label, value_of.get(activity_label, 0))]  # no exact breakdown
    section["figures"] = [
        _figure(name, value_of.get(name, 0), "money", exponent, currency, fmt)
        for name in (start_label, activity_label, payouts_label, result_label)]
    steps = [(label(start_label), value_of.get(start_label, 0), "total"),
             *[(label(c), v, "delta") for c, v in categories],
             (label(payouts_label), value_of.get(payouts_label, 0), "delta"),
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
            partial = copy.with_name(f".{copy.name}.{os.getpid()}.partial")
            font.save(partial)
            os.replace(partial, copy)  # atomic: concurrent runs never see half a font
        faces.append({"weight": weight, "url": copy.resolve().as_uri()})
    return faces


# ---------------------------------------------------------------- itemized (reportlab)

_COLUMN_WEIGHTS = {"money": 1.0, "integer": 0.7, "timestamp": 1.35, "date": 0.85,
                   "boolean": 0.5, "string": 1.6, "json": 2.0}


def _fonts() -> tuple[str, str]:
    """DejaVu Sans Condensed (full Unicode) when installed, else Helvetica (Latin-1 only)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    regular, bold = FONT_DIR / "DejaVuSansCondensed.ttf", FONT_DIR / "DejaVuSansCondensed-Bold.ttf"
    if not (regular.exists() and bold.exists()):
        return "Helvetica", "Helvetica-Bold"
    if "PayreportsSans" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("PayreportsSans", str(regular)))
        pdfmetrics.registerFont(TTFont("PayreportsSans-Bold", str(bold)))
    return "PayreportsSans", "PayreportsSans-Bold"


def _render_itemized(client: Client, query: ReportQuery, facts: QueryFacts, tmp: Path,
                     progress: Progress) -> int:
    with client.query_row_block_stream(_formatted_sql(query, facts),
                                       parameters=query.parameters) as blocks:
        return render_itemized_rows(query, facts, blocks, tmp, progress)


def render_itemized_rows(query: ReportQuery, facts: QueryFacts,
                         blocks: Iterable[Sequence[Sequence[str]]], tmp: Path,
                         progress: Progress) -> int:
    """Draw the rows (blocks of formatted text cells, as `_formatted_sql` prints them) page by
    page onto a reportlab canvas; returns the row count. Apart from the engine: the benchmark
    measures it alone, as it runs beside a ClickHouse server."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen import canvas

    font, bold = _fonts()
    size, row_height, margin = 6.5, 9.5, 24.0
    page_width, page_height = landscape(A4)
    usable = page_width - 2 * margin
    weights = [_COLUMN_WEIGHTS[c.kind] for c in query.columns]
    widths = [usable * w / sum(weights) for w in weights]
    lefts = [margin + sum(widths[:i]) for i in range(len(widths))]
    numeric = [c.kind in NUMERIC_KINDS for c in query.columns]
    pad = 2.0

    def fit(text: str, width: float, face: str = font) -> str:
        room = width - 2 * pad
        if len(text) * size * 0.62 <= room:  # no glyph in the font is wider than 0.62 em here
            return text
        if stringWidth(text, face, size) <= room:
            return text
        while text and stringWidth(text + "…", face, size) > room:
            text = text[:-1]
        return text + "…"

    pdf = canvas.Canvas(str(tmp), pagesize=(page_width, page_height), pageCompression=1)
    pdf.setTitle(query.title)
    pdf.setAuthor("payreports")
    page = 0
    y = 0.0
    subtitle = (f"Account {_account(query)}   ·   {_period(query)}   ·   timezone {query.timezone}"
                f"   ·   generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC")

    def new_page() -> None:
        nonlocal page, y
        if page:
            pdf.showPage()
        page += 1
        top = page_height - margin
        pdf.setFont(bold, 11)
        pdf.drawString(margin, top - 10, query.title)
        pdf.setFont(font, 7)
        pdf.drawString(margin, top - 21, subtitle)
        pdf.drawRightString(page_width - margin, margin - 12, f"Page {page}")
        y = top - 36
        pdf.setFont(bold, size)
        for i, column in enumerate(query.columns):
            label = fit(column.name, widths[i], bold)
            if numeric[i]:
                pdf.drawRightString(lefts[i] + widths[i] - pad, y, label)
            else:
                pdf.drawString(lefts[i] + pad, y, label)
        pdf.setLineWidth(0.5)
        pdf.line(margin, y - 2.5, page_width - margin, y - 2.5)
        y -= row_height
        pdf.setFont(font, size)

    new_page()
    rows = 0
    for block in blocks:
        for row in block:
            if y < margin:
                new_page()
            for i, value in enumerate(row):
                text = fit(value.replace("\n", " "), widths[i])
                if numeric[i]:
                    pdf.drawRightString(lefts[i] + widths[i] - pad, y, text)
                else:
                    pdf.drawString(lefts[i] + pad, y, text)
            y -= row_height
        rows += len(block)
        progress.advance(len(block))
    totals = _totals_lines(facts)
    needed = (len(totals) + 2) * row_height
    if y - needed < margin:
        new_page()
    y -= row_height
    pdf.setFont(bold, 8)
    pdf.drawString(margin, y, f"Totals ({rows:,} rows)")
    pdf.setFont(font, 8)
    for line in totals:
        y -= row_height + 1
        if y < margin:
            new_page()
            pdf.setFont(font, 8)
        pdf.drawString(margin, y, line["column"])
        pdf.drawString(margin + 160, y, line["currency"])
        pdf.drawRightString(margin + 320, y, line["amount"])
    pdf.save()
    return rows
