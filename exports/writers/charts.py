"""Charts for human-facing documents: Vega-Lite specs (plain dicts a browser can also render with
vega-embed, so the web app can reuse them) rendered to SVG by vl-convert (Vega in an embedded
engine, no browser, no network).

Why vl-convert: measured for a 120-bar chart in a fresh process (2 shared cores):
  vl-convert  import 0.03 s, first chart 0.48 s (engine start), next charts 0.07 s
  matplotlib  import 0.78 s, first chart 0.08 s, next 0.07 s
  pygal       not installed; SVG-only with its own CSS, weaker time axes
vl-convert's engine start is done on a background thread while the report query runs
(exports.vega.warm_up), so a summary PDF pays ~0.07 s per chart; it gives real temporal axes, d3
locale number formats and a declarative spec the web app can render as is. The SVG is drawn
where the PDF is rendered (exports.vega, exports.html_pdf): in a statements run, the PDF workers.

Every chart shows ALL of its data: long daily series are bucketed (weekly, then monthly) and the
bucketing is stated in the caption, never cut off. Amounts enter the spec as floats of major
units for plotting only; every printed figure (bar labels) is pre-formatted text from the
Presenter, so the chart never shows a rounded or re-formatted amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from exports.writers.presentation import Presenter

# Charts are laid out with DejaVu Sans (a system font vl-convert finds itself) and drawn with
# the PDF's @font-face family of the same glyphs (exports.vega.PDF_FONT).
MEASURE_FONT = "DejaVu Sans"
DAILY_MAX_DAYS = 62  # up to two months: one bar per day
WEEKLY_MAX_DAYS = 400  # up to ~13 months: one bar per ISO week; beyond: per month
POSITIVE, NEGATIVE, BALANCE = "#2e6fba", "#c0392b", "#5b6770"
WIDTH = 560  # px of the plot area; the chart is scaled to the A4 portrait text width


@dataclass
class Chart:
    title: str
    caption: str
    spec: dict
    points: int  # data points drawn (bars/steps), for the caption and tests
    # Where the document's <img> finds it (exports.html_pdf.Document.charts), set by the PDF
    # writer. An image, not inline SVG: inline, WeasyPrint's HTML parser and style cascade walk
    # its elements, which cost ~10% of a statement summary PDF's layout (docs/capacity.md).
    url: str = ""


def _config() -> dict:
    return {
        "font": MEASURE_FONT, "view": {"stroke": None},
        "axis": {"labelFontSize": 11, "titleFontSize": 11, "labelColor": "#333", "titleColor": "#333",
                 "gridColor": "#e5e5e5", "domainColor": "#888", "tickColor": "#888"},
        "text": {"fontSize": 10.5},
        "background": None,
    }


def _major(minor: int, exponent: int) -> float:
    return minor / 10 ** exponent  # plotting position only; printed figures come from Presenter


# ---------------------------------------------------------------- waterfall

def waterfall(title: str, steps: Sequence[tuple[str, int, str]], exponent: int, currency: str,
              fmt: Presenter) -> Chart:
    """steps: (label, minor, kind) with kind 'total' (a balance drawn from zero) or 'delta' (a
    movement from the running balance). Horizontal, top to bottom in order."""
    values, running = [], 0
    for order, (text, minor, kind) in enumerate(steps):
        if kind == "total":
            start, end, running = 0, minor, minor
            color = BALANCE
        else:
            start, end = running, running + minor
            running = end
            color = POSITIVE if minor >= 0 else NEGATIVE
        values.append({"order": order, "step": text, "start": _major(start, exponent),
                       "end": _major(end, exponent), "color": color,
                       "amount": fmt.amount(minor, exponent)})
    height = 26 * len(values)
    y = {"field": "step", "type": "nominal", "sort": {"field": "order"}, "title": None,
         "axis": {"labelLimit": 200, "ticks": False, "domain": False}}
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": WIDTH, "height": height, "config": _config(),
        "data": {"values": values},
        "layer": [
            {"mark": {"type": "bar", "height": 17},
             "encoding": {"y": y,
                          "x": {"field": "start", "type": "quantitative", "title": currency.upper(),
                                "axis": {"format": ",~r", "tickCount": 6}},
                          "x2": {"field": "end"},
                          "color": {"field": "color", "type": "nominal", "scale": None}}},
            {"mark": {"type": "text", "align": "left", "dx": 4, "color": "#111"},
             "encoding": {"y": y, "x": {"field": "xmax", "type": "quantitative"},
                          "text": {"field": "amount"}},
             "transform": [{"calculate": "max(datum.start, datum.end)", "as": "xmax"}]},
        ],
    }
    return Chart(title, "", spec, len(values))


# ---------------------------------------------------------------- categories

def category_bars(title: str, items: Sequence[tuple[str, int]], exponent: int, currency: str,
                  fmt: Presenter) -> Chart:
    """One horizontal bar per category, in the given order, every category shown."""
    values = [{"order": i, "category": text, "value": _major(minor, exponent),
               "color": POSITIVE if minor >= 0 else NEGATIVE, "amount": fmt.amount(minor, exponent)}
              for i, (text, minor) in enumerate(items)]
    y = {"field": "category", "type": "nominal", "sort": {"field": "order"}, "title": None,
         "axis": {"labelLimit": 200, "ticks": False, "domain": False}}
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": WIDTH, "height": 26 * max(len(values), 1), "config": _config(),
        "data": {"values": values},
        "layer": [
            {"mark": {"type": "bar", "height": 17},
             "encoding": {"y": y, "x": {"field": "value", "type": "quantitative",
                                        "title": currency.upper() if currency else None,
                                        "axis": {"format": ",~r", "tickCount": 6}},
                          "color": {"field": "color", "type": "nominal", "scale": None}}},
            {"mark": {"type": "text", "align": "left", "dx": 4, "color": "#111"},
             "encoding": {"y": y, "x": {"field": "xpos", "type": "quantitative"},
                          "text": {"field": "amount"}},
             "transform": [{"calculate": "max(datum.value, 0)", "as": "xpos"}]},
        ],
    }
    return Chart(title, "", spec, len(values))


# ---------------------------------------------------------------- time series

def bucket_of(days: int) -> str:
    if days <= DAILY_MAX_DAYS:
        return "day"
    return "week" if days <= WEEKLY_MAX_DAYS else "month"


def bucket_start(day: date, bucket: str) -> date:
    if bucket == "week":
        return day - timedelta(days=day.weekday())  # ISO week, Monday first
    if bucket == "month":
        return day.replace(day=1)
    return day


def bucketed(series: dict[date, dict[str, int]], first: date, last: date
             ) -> tuple[str, list[tuple[date, dict[str, int]]]]:
    """Sum {day: {series: minor}} into the bucket the span calls for, every bucket from `first`
    to `last` present (empty ones as zero): a gap in the data is a gap in the chart, not a
    shorter axis."""
    bucket = bucket_of((last - first).days + 1)
    out: dict[date, dict[str, int]] = {}
    cursor = bucket_start(first, bucket)
    while cursor <= last:
        out[cursor] = {}
        if bucket == "day":
            cursor += timedelta(days=1)
        elif bucket == "week":
            cursor += timedelta(days=7)
        else:
            cursor = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
    for day, by_series in series.items():
        target = out.setdefault(bucket_start(day, bucket), {})
        for name, minor in by_series.items():
            target[name] = target.get(name, 0) + minor
    return bucket, sorted(out.items())


BUCKET_WORDS = {"day": ("Daily", "days"), "week": ("Weekly", "weeks"), "month": ("Monthly", "months")}


def time_series(title: str, series: dict[date, dict[str, int]], series_labels: dict[str, str],
                first: date, last: date, exponent: int, currency: str, fmt: Presenter) -> Chart:
    """Bars per day/week/month, stacked when there are several series (in `series_labels`
    order), on a real time axis."""
    bucket, buckets = bucketed(series, first, last)
    names = list(series_labels)
    values = []
    for start, by_series in buckets:
        for order, name in enumerate(names):
            minor = by_series.get(name, 0)
            values.append({"bucket": start.isoformat(), "series": series_labels[name],
                           "order": order, "value": _major(minor, exponent)})
    unit = {"day": "yearmonthdate", "week": "yearmonthdate", "month": "yearmonth"}[bucket]
    x_format = "%b %Y" if bucket == "month" else "%d %b"
    encoding = {
        "x": {"field": "bucket", "type": "temporal", "timeUnit": unit, "title": None,
              "axis": {"format": x_format, "labelAngle": 0, "tickCount": min(len(buckets), 12)}},
        "y": {"field": "value", "type": "quantitative", "aggregate": "sum",
              "title": currency.upper() if currency else None,
              # SI prefixes, but billions as B (d3 says G)
              "axis": {"labelExpr": "replace(format(datum.value, '~s'), 'G', 'B')", "tickCount": 5}},
    }
    if len(names) > 1:
        encoding["color"] = {"field": "series", "type": "nominal", "title": None,
                             "sort": [series_labels[n] for n in names],
                             "scale": {"range": [POSITIVE, "#e39b2d", NEGATIVE, "#6aa84f", BALANCE]},
                             "legend": {"orient": "top", "labelFontSize": 11}}
        encoding["order"] = {"field": "order"}
    else:
        encoding["color"] = {"condition": {"test": "datum.value < 0", "value": NEGATIVE},
                             "value": POSITIVE}
    # Bars as wide as the bucket leaves room for: 120 daily bars still all show.
    bar = {"type": "bar", "width": {"band": 0.8} if bucket == "month" else max(
        1.0, min(18.0, WIDTH / max(len(buckets), 1) * 0.75))}
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "width": WIDTH, "height": 190, "config": _config(), "data": {"values": values},
        "mark": bar, "encoding": encoding,
    }
    adjective, plural = BUCKET_WORDS[bucket]
    caption = (f"{adjective} totals: {len(buckets)} {plural if len(buckets) != 1 else plural[:-1]}, "
               f"{fmt.date(first)} – {fmt.date(last)}"
               + (" (weeks start on Monday)" if bucket == "week" else ""))
    return Chart(title, caption, spec, len(buckets))
