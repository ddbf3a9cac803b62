"""PDFs as people read them, on a platform with Stripe-length ids, long descriptions and account
names, USD / JPY (0 decimals) / KWD (3 decimals) / multi-currency / empty accounts
(tests/integration/pdf_platform.py). Text is extracted with pdftotext and compared with values
computed here independently from the platform's rows: no value may be cut, every page numbered
"n of N" under a repeated header, summaries with thousands separators, human labels, one
uppercase currency style, every bucket of a long chart, and a message for an empty period."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from exports.errors import InvalidParameter
from exports.reports.catalog import REPORT_TYPES
from exports.reports.engine import build_report_query, validate_report_request
from exports.warehouse import open_warehouse
from exports.writers import write_report
from tests.integration import pdf_platform as platform

pytestmark = pytest.mark.integration

MARTS = "pdf_documents_marts"
SUMMARY_TYPES = [t for t, r in REPORT_TYPES.items() if r.shape == "summary"]
ID = re.compile(r"^(txn|ch|cus|po|pi|re|dp|ba)_[A-Za-z0-9]+$")


@pytest.fixture(scope="module")
def pdf_settings(postgres):
    # postgres: the dbt launcher that builds the summaries' pre-aggregates reads the app database.
    return postgres.model_copy(update={"warehouse_marts_database": MARTS})


@pytest.fixture(scope="module")
def rows(pdf_settings):
    with open_warehouse(pdf_settings, purpose="test_pdf_documents setup") as client:
        written = platform.write_marts(client, MARTS)
    platform.build_rollups(MARTS, pdf_settings)
    return written


@pytest.fixture
def client(pdf_settings, rows):
    with open_warehouse(pdf_settings, purpose="test_pdf_documents") as opened:
        yield opened


def pdf_text(path: Path, page: int | None = None, *, layout: bool = True) -> str:
    """The page(s) as laid out (tables), or in reading order (`layout=False`: header fields
    beside each other in the PDF would interleave)."""
    assert shutil.which("pdftotext"), "pdftotext (poppler-utils) is required"
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", *(["-layout"] if layout else []), *pages, str(path), "-"],
                          check=True, capture_output=True, text=True).stdout


def page_count(path: Path) -> int:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))


def grouped(minor: int, exponent: int, group: str = ",", decimal: str = ".") -> str:
    """Independent of the Presenter: '-46,861,490', '1,234.567'."""
    whole, frac = divmod(abs(minor), 10 ** exponent)
    text = f"{whole:,}".replace(",", group) + (decimal + f"{frac:0{exponent}d}" if exponent else "")
    return ("-" if minor < 0 else "") + text


def whole_token(value: str) -> re.Pattern:
    # Not a piece of a longer number or id, and not followed by an ellipsis.
    return re.compile(rf"(?<![\w.,-]){re.escape(value)}(?![\w…]|[.,]\d)")


def render(client, pdf_settings, tmp_path, report_type, kind, parameters):
    out = tmp_path / f"{report_type}-{kind}.pdf"
    query, manifest = platform.render(client, pdf_settings, report_type, platform.account(kind),
                                      parameters, out)
    return out, query, manifest


# ------------------------------------------------------------------ itemized

def source_rows(client, query) -> list[dict]:
    result = client.query(query.sql, parameters=query.parameters)
    names = [c.name for c in query.columns] + ["_currency", "_exponent"]
    return [dict(zip(names, r)) for r in result.result_rows]


@pytest.mark.parametrize("report_type, kind", [
    ("payments.itemized", "Usd"), ("payments.itemized", "Mix"),
    ("balance_change_from_activity.itemized", "Jpy"), ("balance_change_from_activity.itemized", "Kwd"),
    ("payouts.itemized", "Mix"),
])
def test_itemized_pdf_prints_every_id_time_and_amount_whole(client, pdf_settings, tmp_path,
                                                            report_type, kind):
    """The widest default columns (Stripe-length ids, local times, amounts in the millions)
    must come out whole: each value of every source row is found as a complete token."""
    out, query, manifest = render(client, pdf_settings, tmp_path, report_type, kind,
                                  {"interval_start": "2024-03-01", "interval_end": "2024-03-15"})
    text = pdf_text(out)
    assert "…" not in text
    source = source_rows(client, query)
    assert len(source) == manifest.row_count > 5
    checked = {"id": 0, "timestamp": 0, "money": 0}
    for row in source:
        for column in query.columns:
            value = row[column.name]
            if value is None or value == "":
                continue
            if column.kind == "money":
                expected = grouped(int(value), int(row["_exponent"]))
                checked["money"] += 1
            elif column.kind == "timestamp":
                expected = value.strftime("%Y-%m-%d %H:%M:%S")
                checked["timestamp"] += 1
            elif column.kind == "string" and ID.match(str(value)):
                expected = str(value)
                checked["id"] += 1
            else:
                continue
            assert whole_token(expected).search(text), f"{column.name} {expected!r} is not whole"
    assert all(checked.values()), checked
    # Totals under their columns, per currency.
    for column, by_currency in manifest.totals_minor.items():
        for currency, total in by_currency.items():
            assert whole_token(grouped(total, manifest.currency_exponents[currency])).search(text)
        assert all(f"Total {c.upper()}" in text for c in by_currency)


def test_itemized_pdf_repeats_its_header_and_numbers_pages_n_of_n(client, pdf_settings, tmp_path):
    out, query, _ = render(client, pdf_settings, tmp_path, "balance_change_from_activity.itemized",
                           "Mix", {"interval_start": "2024-03-01", "interval_end": "2024-04-01"})
    pages = page_count(out)
    assert pages >= 3
    account_name = next(a[1] for a in platform.ACCOUNTS if a[0] == query.account_id)
    for page in range(1, pages + 1):
        text = pdf_text(out, page)
        assert query.title in text and account_name in text
        assert re.search(r"Balance transaction ID\s+Created", text), page  # the column header
        assert re.search(rf"Page {page} of {pages}\b", text), page


def test_long_account_name_and_generated_time_stay_on_the_page(client, pdf_settings, tmp_path):
    out, query, _ = render(client, pdf_settings, tmp_path, "payments.itemized", "Usd",
                           {"interval_start": "2024-03-01", "interval_end": "2024-03-03"})
    text = " ".join(pdf_text(out, 1, layout=False).split())
    account_name = next(a[1] for a in platform.ACCOUNTS if a[0] == query.account_id)
    assert " ".join(account_name.split()) in text
    assert "Generated" in text and "Timezone America/New_York" in text


def test_too_wide_column_selection_is_refused_naming_columns(client, pdf_settings, tmp_path):
    every = [c.name for c in REPORT_TYPES["balance_change_from_activity.itemized"].columns]
    params = {"interval_start": "2024-03-01", "interval_end": "2024-03-02", "columns": every}
    with pytest.raises(InvalidParameter) as refused:  # at request time: the API's 400
        validate_report_request(platform.account("Usd"), "balance_change_from_activity.itemized",
                                params, "pdf", now=platform.NOW, settings=pdf_settings,
                                data_available_end=platform.NOW)
    assert refused.value.param == "columns"
    assert "CSV" in refused.value.message and "XLSX" in refused.value.message
    assert "columns do not fit" in refused.value.message
    # The writer refuses it too (e.g. a request validated before this rule), leaving no file.
    validated = validate_report_request(platform.account("Usd"), "balance_change_from_activity.itemized",
                                        params, "csv", now=platform.NOW, settings=pdf_settings,
                                        data_available_end=platform.NOW)
    query = build_report_query(client, validated, settings=pdf_settings)
    with pytest.raises(InvalidParameter) as info:
        write_report(client, query, "pdf", tmp_path / "wide.pdf", settings=pdf_settings)
    assert info.value.param == "columns"
    assert not list(tmp_path.iterdir())
    # Every type's default columns always fit.
    for report in REPORT_TYPES.values():
        if report.shape == "itemized":
            interval = {"interval_end": "2024-03-02"}
            if report.interval != "end_only":
                interval["interval_start"] = "2024-03-01"
            validate_report_request(platform.account("Usd"), report.id, interval, "pdf",
                                    now=platform.NOW, settings=pdf_settings,
                                    data_available_end=platform.NOW)


# ------------------------------------------------------------------ summaries

def expected_balances(rows, account_id: str, tz: str, start: str, end: str) -> dict[str, dict]:
    """Independently from the platform rows: per currency starting/ending balance."""
    zone = ZoneInfo(tz)
    lo = datetime.fromisoformat(start).replace(tzinfo=zone)
    hi = datetime.fromisoformat(end).replace(tzinfo=zone)
    out: dict[str, dict] = {}
    for t in rows["fct_balance_transactions"]:
        if t["account_id"] != account_id or t["created_at"] >= hi:
            continue
        figures = out.setdefault(t["currency"], {"starting": 0, "ending": 0, "payouts": 0})
        figures["ending"] += t["net_minor"]
        if t["created_at"] < lo:
            figures["starting"] += t["net_minor"]
        elif t["reporting_category"] == "payout":
            figures["payouts"] += t["net_minor"]
    return out


@pytest.mark.parametrize("kind", ["Usd", "Jpy", "Kwd", "Mix"])
@pytest.mark.parametrize("report_type", SUMMARY_TYPES)
def test_summary_pdf_reads_like_a_statement(client, pdf_settings, tmp_path, rows, report_type, kind):
    params = dict(platform.INTERVAL_120)
    if REPORT_TYPES[report_type].interval == "end_only":
        params.pop("interval_start")
    out, query, manifest = render(client, pdf_settings, tmp_path, report_type, kind, params)
    text = pdf_text(out)
    flat = " ".join(pdf_text(out, layout=False).split())
    account_id, name, tz, currencies, _ = next(a for a in platform.ACCOUNTS if a[0] == query.account_id)
    assert " ".join(name.split()) in flat and account_id in flat
    # (The header's labels and values are side by side; pdftotext reads them label-first.)
    assert all(key in flat for key in ("Period", "Timezone", "Data as of", "Generated", tz))
    assert "2024" in flat.split("Generated", 1)[1][:200]
    assert re.search(r"Page 1 of \d+", text)
    # One currency style: uppercase ISO codes, never the lowercase ones.
    for currency in currencies:
        assert currency.upper() in text
        assert not re.search(rf"\b{currency}\b", text), currency
    # Human labels: no snake_case code anywhere (ids have digits after their underscore).
    assert not re.findall(r"\b[a-z]+(?:_[a-z]+)+\b", text)
    # Thousands separators: the biggest amount of the report appears grouped.
    result = client.query(f"SELECT * FROM ({query.sql})", parameters=query.parameters).result_rows
    money = [i for i, c in enumerate(query.columns) if c.kind == "money"]
    width = len(query.columns)
    biggest = max(((abs(int(r[i])) / 10 ** int(r[width + 1]), int(r[i]), int(r[width + 1]))
                   for r in result for i in money))
    assert biggest[0] >= 1000  # so it has a separator
    assert whole_token(grouped(biggest[1], biggest[2])).search(text), grouped(biggest[1], biggest[2])
    if report_type == "balance.summary":
        for currency, figures in expected_balances(rows, account_id, tz, params["interval_start"],
                                                   params["interval_end"]).items():
            exponent = platform.EXPONENTS[currency]
            for key in ("starting", "ending", "payouts"):
                assert whole_token(grouped(figures[key], exponent)).search(text), (currency, key)
        assert "Starting balance" in text and "Ending balance" in text and "Charges" in text


def test_summary_pdf_formats_numbers_for_its_locale(client, pdf_settings, tmp_path, rows):
    validated = validate_report_request(platform.account("Kwd"), "balance.summary", platform.INTERVAL_120,
                                        "pdf", now=platform.NOW, settings=pdf_settings,
                                        account_timezone="Asia/Kuwait", data_available_end=platform.NOW)
    query = dataclasses.replace(build_report_query(client, validated, settings=pdf_settings),
                                locale="de_DE")
    out = tmp_path / "de.pdf"
    write_report(client, query, "pdf", out, settings=pdf_settings)
    text = pdf_text(out)
    figures = expected_balances(rows, query.account_id, "Asia/Kuwait", "2024-02-01", "2024-05-31")["kwd"]
    assert whole_token(grouped(figures["ending"], 3, ".", ",")).search(text)
    assert not whole_token(grouped(figures["ending"], 3)).search(text)


def weeks_between(first: date, last: date) -> int:
    monday = first - timedelta(days=first.weekday())
    return (last - monday).days // 7 + 1


def test_a_120_day_chart_shows_every_week(client, pdf_settings, tmp_path, rows):
    """Four months of daily revenue: weekly bars, all of them (no cap at 40), and the chart's
    points add up to the period's net."""
    from exports.writers.pdf_writer import summary_document

    out, query, _ = render(client, pdf_settings, tmp_path, "revenue.summary", "Usd",
                           platform.INTERVAL_120)
    weeks = weeks_between(date(2024, 2, 1), date(2024, 5, 30))
    assert weeks == 18
    assert f"Weekly totals: {weeks} weeks" in pdf_text(out)
    fetched = client.query(f"SELECT * FROM ({query.sql})", parameters=query.parameters).result_rows
    [section] = summary_document(query, [tuple(r) for r in fetched])["sections"]
    [chart] = section["charts"]
    assert chart.points == weeks
    values = chart.spec["data"]["values"]
    assert len({v["bucket"] for v in values}) == weeks
    net = sum(t["net_minor"] for t in rows["fct_balance_transactions"]
              if t["account_id"] == query.account_id
              and t["reporting_category"] in ("charge", "refund", "dispute", "fee")
              and query.interval_start <= t["created_at"] < query.interval_end)
    assert round(sum(v["value"] for v in values) * 100) == net
    # A month stays daily: one bar per day.
    out, query, _ = render(client, pdf_settings, tmp_path, "fees.summary", "Usd", platform.MONTH)
    assert "Daily totals: 31 days" in pdf_text(out)


def test_category_chart_leaves_the_total_row_out(client, pdf_settings, tmp_path):
    from exports.writers.pdf_writer import summary_document

    out, query, _ = render(client, pdf_settings, tmp_path, "balance_change_from_activity.summary",
                           "Usd", platform.MONTH)
    fetched = client.query(f"SELECT * FROM ({query.sql})", parameters=query.parameters).result_rows
    [section] = summary_document(query, [tuple(r) for r in fetched])["sections"]
    bars = [v["category"] for v in section["charts"][0].spec["data"]["values"]]
    assert "Total" not in bars and "total" not in bars and "Charges" in bars
    assert len(bars) == len(fetched) - 1  # every category, only the total row left out


@pytest.mark.parametrize("report_type", [*SUMMARY_TYPES, "payments.itemized"])
def test_empty_period_says_no_activity(client, pdf_settings, tmp_path, report_type):
    params = dict(platform.MONTH)
    if REPORT_TYPES[report_type].interval == "end_only":
        params.pop("interval_start")
    out, _, manifest = render(client, pdf_settings, tmp_path, report_type, "Nil", params)
    assert manifest.row_count == 0
    text = pdf_text(out)
    assert "No activity in this period" in text and "Page 1 of 1" in text


def test_quiet_period_of_an_active_account_shows_its_balance_and_no_activity(
        client, pdf_settings, tmp_path, rows):
    params = {"interval_start": "2024-06-10", "interval_end": "2024-06-20"}  # after the history
    out, query, _ = render(client, pdf_settings, tmp_path, "balance.summary", "Jpy", params)
    text = pdf_text(out)
    figures = expected_balances(rows, query.account_id, "Asia/Tokyo", **{
        "start": params["interval_start"], "end": params["interval_end"]})["jpy"]
    assert figures["starting"] == figures["ending"] != 0
    assert "No activity in this period" in text
    assert whole_token(grouped(figures["ending"], 0)).search(text)


@pytest.mark.parametrize("kind", ["Usd", "Kwd", "Mix"])
def test_fees_summary_pdf_has_a_row_per_day_and_a_column_per_fee_type(client, pdf_settings,
                                                                       tmp_path, kind):
    """A statement, not a long-form list: each day once, its fee types side by side with the
    day's total, a total row under every column; every figure equal to the report's rows."""
    out, query, _ = render(client, pdf_settings, tmp_path, "fees.summary", kind, platform.INTERVAL_120)
    text = pdf_text(out)
    rows = source_rows(client, query)
    zone_days: dict[tuple[str, date], dict[str, int]] = {}
    for r in rows:
        zone_days.setdefault((r["_currency"], r["date"]), {})[r["fee_type"]] = r["fee_amount"]
    assert "Processing fees" in text and "Total fees" in text
    lines = text.splitlines()
    for (currency, day), per_type in zone_days.items():
        exponent = platform.EXPONENTS[currency]
        shown = f"{day:%b} {day.day}, {day.year}"
        day_lines = [line for line in lines if re.match(rf"\s*{shown}\s+\d", line)]
        # One line per day in each currency's table (several currencies: one per section).
        assert len(day_lines) == len({c for c, d in zone_days if d == day}), (shown, day_lines)
        line_text = " ".join(day_lines)
        for amount in [*per_type.values(), sum(per_type.values())]:
            assert whole_token(grouped(amount, exponent)).search(line_text), (shown, amount)
    for currency in {c for c, _ in zone_days}:
        exponent = platform.EXPONENTS[currency]
        grand = sum(r["fee_amount"] for r in rows if r["_currency"] == currency)
        totals = [line for line in lines if line.strip().startswith("Total ")]
        assert any(whole_token(grouped(grand, exponent)).search(line) for line in totals), currency
