"""Human-facing formatting (exports/writers/presentation.py), chart bucketing and the itemized
PDF's column fitting: pure functions, no services."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from exports import vega
from exports.errors import InvalidParameter
from exports.reports.catalog import REPORT_TYPES
from exports.reports.query import Column
from exports.writers import charts
from exports.writers.pdf_layout import (MIN_FONT_SIZE, check_itemized_columns_fit,
                                        plan_itemized_layout)
from exports.writers.presentation import LABELS, Presenter, currency_code, d3_locale, humanize, label
from exports.reports.types.base import REPORTING_CATEGORIES


@pytest.mark.parametrize("locale, minor, exponent, expected", [
    ("en_US", -4350313, 2, "-43,503.13"),
    ("en_US", -46861490, 0, "-46,861,490"),
    ("en_US", 1234567, 3, "1,234.567"),
    ("en_US", -5, 2, "-0.05"),
    ("en_US", 0, 3, "0.000"),
    ("de_DE", -4350313, 2, "-43.503,13"),
    ("de_DE", 1234567, 3, "1.234,567"),
    ("fr_FR", 123456789, 2, "1\u202f234\u202f567,89"),
    ("en_IN", -46861490, 0, "-4,68,61,490"),  # Indian grouping through Babel's own pattern
    ("xx_YY", 123456, 2, "1,234.56"),  # unknown locale: the default one
])
def test_amounts_are_exact_grouped_and_keep_every_decimal(locale, minor, exponent, expected):
    assert Presenter(locale).amount(minor, exponent) == expected


def test_one_currency_code_style():
    fmt = Presenter("en_US")
    assert currency_code("usd") == "USD"
    assert fmt.money(-46861490, 0, "jpy") == "JPY\u00a0-46,861,490"


def test_every_reporting_category_has_a_human_label():
    for category in (*REPORTING_CATEGORIES, "total", "starting_balance", "ending_balance"):
        assert category in LABELS
        assert "_" not in label(category) and label(category)[0].isupper()
    assert label("dispute", context="fee_type") == "Dispute fees"
    assert humanize("automatic_payout_effective_at_utc") == "Automatic payout effective at (UTC)"
    assert label("balance_transaction_id") == "Balance transaction ID"


def test_period_shows_whole_days_as_the_last_day_covered():
    fmt = Presenter("en_US")
    start, end = datetime(2024, 3, 1, 5, tzinfo=UTC), datetime(2024, 4, 1, 4, tzinfo=UTC)
    assert fmt.period(start, end, "America/New_York") == "Mar 1, 2024 – Mar 31, 2024"
    assert fmt.period(None, end, "America/New_York") == "As of Mar 31, 2024"


@pytest.mark.parametrize("first, last, bucket, count", [
    (date(2024, 3, 1), date(2024, 3, 31), "day", 31),
    (date(2024, 2, 1), date(2024, 5, 30), "week", 18),  # 120 days, never capped
    (date(2023, 1, 1), date(2024, 6, 30), "month", 18),
])
def test_time_series_buckets_cover_every_day_of_the_period(first, last, bucket, count):
    series = {date(2024, 3, 5): {"net": 100}, date(2024, 3, 6): {"net": 250}}
    chosen, buckets = charts.bucketed(series, first, last)
    assert chosen == bucket and len(buckets) == count
    assert sum(v.get("net", 0) for _, v in buckets) == 350


def test_default_columns_of_every_itemized_type_fit_a_page():
    for report in REPORT_TYPES.values():
        if report.shape == "itemized":
            check_itemized_columns_fit([report.column(n).column for n in report.default_columns])


def test_a_selection_too_wide_for_any_page_is_refused_naming_columns():
    columns = [Column(f"object_{i}_id", "string", user_text=False) for i in range(14)]
    with pytest.raises(InvalidParameter) as refused:
        check_itemized_columns_fit(columns)
    assert refused.value.param == "columns"
    assert "CSV or XLSX" in refused.value.message and f"{MIN_FONT_SIZE:g} pt" in refused.value.message


def test_layout_keeps_ids_whole_and_wraps_text():
    columns = [Column("balance_transaction_id", "string", user_text=False), Column("amount", "money"),
               Column("description", "string")]
    widest = ["txn_1NirD82eZvKYlo2CIvbtLWuY", "-43,503.13", "word " * 20]
    layout = plan_itemized_layout(columns, widest)
    assert not layout.landscape and layout.font_size == 8.0  # three columns: portrait, 8 pt
    # A very long text: the size giving its row the fewest points of height (landscape).
    long_text = plan_itemized_layout(columns, [*widest[:2], "word " * 400])
    assert long_text.landscape
    assert layout.wrap == (False, False, True)
    from reportlab.pdfbase.pdfmetrics import stringWidth
    for i in (0, 1):
        assert layout.widths[i] >= stringWidth(widest[i], layout.font, layout.font_size)
    assert abs(sum(layout.widths) - (layout.page_size[0] - 48)) < 0.01  # spans the page


def test_chart_time_axis_speaks_the_documents_locale():
    days = {date(2024, 10, d): {"net": 1000 * d} for d in range(1, 32)}
    for locale, month in (("de_DE", "Okt"), ("en_US", "Oct")):
        chart = charts.time_series("Net", days, {"net": "Net"}, date(2024, 10, 1), date(2024, 10, 31),
                                   2, "usd", Presenter(locale))
        assert month in vega.to_svg(chart.spec, d3_locale(locale))
