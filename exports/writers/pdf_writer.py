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
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from exports.errors import ReportTooLarge
from exports.money import format_minor
from exports.reports.query import Manifest, ReportQuery
from exports.settings import Settings
from exports.writers.manifest import (Progress, QueryFacts, atomic_output, build_manifest,
                                      check_row_count, facts_from_rows, figure_row_sql,
                                      file_digest, query_columns)
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

def _charts(query: ReportQuery, rows: list[tuple], chart_values: list, currencies: list,
            exponents: list) -> list[dict]:
    names = [c.name for c in query.columns]
    if not (query.chart_label_column in names and query.chart_value_column in names):
        return []
    label_index = names.index(query.chart_label_column)
    value_kind = query.columns[names.index(query.chart_value_column)].kind
    groups: dict[str, dict[str, int]] = {}
    group_exponent: dict[str, int] = {}
    for row, value, currency, exponent in zip(rows, chart_values, currencies, exponents):
        if value is None:
            continue
        key = currency if value_kind == "money" else ""
        labels = groups.setdefault(key, {})
        labels[row[label_index]] = labels.get(row[label_index], 0) + int(value)
        group_exponent[key] = int(exponent)
    charts = []
    for key, labels in sorted(groups.items()):
        # The query's own order (dates stay chronological, categories in Stripe's order).
        top = list(labels.items())[:CHART_MAX_BARS]
        exponent = group_exponent[key] if value_kind == "money" else 0
        largest = max((abs(v) for _, v in top), default=0) or 1
        label_width, value_room, bar_room, bar_height = 180, 90, 420, 14
        axis_x = label_width + (bar_room if any(v < 0 for _, v in top) else 0) / 2
        scale = (bar_room / 2 if any(v < 0 for _, v in top) else bar_room) / largest
        bars = []
        for i, (label, value) in enumerate(top):
            width = abs(value) * scale
            negative = value < 0
            x = axis_x - width if negative else axis_x
            bars.append({"label": label[:40], "y": i * bar_height, "x": round(x, 2),
                         "width": round(width, 2), "negative": negative,
                         "value": format_minor(value, exponent),
                         # Right of the axis for negative bars too: left of the bar is the labels.
                         "value_x": round(axis_x + 3 if negative else x + width + 3, 2)})
        caption = f"{query.chart_value_column} by {query.chart_label_column}"
        if key:
            caption += f" ({key.upper()})"
        charts.append({"caption": caption, "bars": bars, "label_width": label_width,
                       "axis_x": axis_x, "bar_height": bar_height,
                       "width": label_width + bar_room + value_room,
                       "height": max(len(bars), 1) * bar_height})
    return charts


def _identity_checks(query: ReportQuery, rows: list[tuple], values: list, currencies: list,
                     exponents: list) -> list[dict]:
    """Per currency, does `result = sum(addends)` hold over the chart value column?"""
    if query.identity is None or query.chart_label_column is None:
        return []
    result_label, addend_labels = query.identity
    label_index = [c.name for c in query.columns].index(query.chart_label_column)
    by_currency: dict[str, dict[str, int]] = {}
    exponent_of: dict[str, int] = {}
    for row, value, currency, exponent in zip(rows, values, currencies, exponents):
        if value is not None:
            by_currency.setdefault(currency, {})[row[label_index]] = int(value)
            exponent_of[currency] = int(exponent)
    checks = []
    for currency, values_by_label in sorted(by_currency.items()):
        exponent = exponent_of[currency]
        result = values_by_label.get(result_label, 0)
        addends = [(label, values_by_label.get(label, 0)) for label in addend_labels]
        text = f"{result_label} {format_minor(result, exponent)} = " + " + ".join(
            f"{label} {format_minor(value, exponent)}" for label, value in addends)
        checks.append({"currency": currency.upper(), "text": text,
                       "holds": result == sum(v for _, v in addends)})
    return checks


def write_summary_pdf(client: Client, query: ReportQuery, out_path: Path, *, progress: Progress,
                      settings: Settings) -> Manifest:
    """A summary PDF from ONE run of the report query: a summary is small (at most the row
    limit), so its rows are fetched whole, formatted and with their money in minor units, and
    the manifest's facts are summed from them instead of by a separate totals query (which on a
    summary over millions of rows costs as much as the report itself)."""
    names, types = query_columns(client, query)
    facts = QueryFacts(names, types, 0, {}, {})  # only column_sql() is used until the rows come
    labels = [c.name for c in query.columns]
    value_ref = (facts.column_sql(labels.index(query.chart_value_column))
                 if query.chart_value_column in labels else "NULL")
    figures = figure_row_sql(query, names)
    typed = figures + [ident(CURRENCY_COLUMN), ident(EXPONENT_COLUMN), f"toInt64({value_ref})"]
    limit = settings.pdf_itemized_row_limit
    result = client.query(f"{_formatted_sql(query, facts, typed)} LIMIT {limit + 1}",
                          parameters=query.parameters)
    if len(result.result_rows) > limit:
        total = client.query(f"SELECT count() FROM ({query.sql})", parameters=query.parameters)
        _check_row_limit(int(total.result_rows[0][0]), settings)
    width = len(query.columns)
    facts = facts_from_rows(query, names, types,
                            [tuple(r[width:width + len(figures) + 2]) for r in result.result_rows])
    with atomic_output(out_path) as tmp:
        rows = _render_summary(query, facts, result.result_rows, tmp, settings)
    byte_size, sha256 = file_digest(out_path)
    progress.finish(rows)
    return build_manifest(query, "pdf", out_path, facts, byte_size=byte_size, sha256=sha256,
                          row_count=rows, extra={"layout": query.shape})


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


def _render_summary(query: ReportQuery, facts: QueryFacts, fetched: list[tuple], tmp: Path,
                    settings: Settings) -> int:
    """`fetched`: formatted columns, money in minor units, currency, exponent, chart value."""
    import jinja2
    import weasyprint

    width = len(query.columns)
    rows = [tuple(r[:width]) for r in fetched]
    chart_values = [r[-1] for r in fetched]
    currencies = [r[-3] for r in fetched]
    exponents = [r[-2] for r in fetched]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                             autoescape=jinja2.select_autoescape(["html", "j2"]))
    html = env.get_template("summary.html.j2").render(
        title=query.title, account=_account(query), period=_period(query),
        timezone=query.timezone,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        totals=_totals_lines(facts) if query.totals_are_additive else None,
        checks=_identity_checks(query, rows, chart_values, currencies, exponents),
        charts=_charts(query, rows, chart_values, currencies, exponents),
        table_caption=f"{len(rows):,} rows",
        columns=[{"name": c.name, "numeric": c.kind in NUMERIC_KINDS} for c in query.columns],
        rows=rows, font_family=SUMMARY_FONT_FAMILY, font_faces=summary_font_faces(settings))
    weasyprint.HTML(string=html, base_url=str(TEMPLATES_DIR)).write_pdf(tmp)
    return len(rows)


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
