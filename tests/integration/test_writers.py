"""The report writers against the embedded ClickHouse engine: every format is re-read with an
independent reader (csv module + polars, openpyxl, pdftotext, pyarrow) and must reproduce the
rows exactly and sum, per currency, to the manifest's totals_minor."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import logging
import re
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import polars as pl
import pyarrow.parquet as pq
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from exports.errors import InvalidParameter, ReportTooLarge
from exports.money import format_minor, parse_major
from exports.reports.query import Column, ReportQuery
from exports.settings import Settings
from exports.warehouse import open_warehouse
from exports.writers import write_report
from exports.writers.csv_writer import default_transport, write_csv
from exports.writers.manifest import PROGRESS_ROW_STEP, Progress, inspect_query, shape_cache

pytestmark = pytest.mark.integration

TZ = "America/New_York"
EXPONENTS = {"usd": 2, "jpy": 0, "kwd": 3}
DESCRIPTIONS = ["=HYPERLINK(\"http://x\")", "-rebate", "+1", "@sum", "plain, with comma",
                'say "hi"', "line one\nline two", "Zoë ünïcødé 日本", "tab\tinside", "a&b<c>", None]
N_ROWS = 23


def make_rows() -> list[dict]:
    rows = []
    start = datetime(2024, 3, 9, 23, 30, tzinfo=UTC)
    for i in range(N_ROWS):
        currency = ("usd", "jpy", "kwd")[i % 3]
        rows.append({
            "id": f"txn_{i:03d}",
            "created": start + timedelta(hours=7 * i, seconds=i),
            "day": date(2024, 3, 1) + timedelta(days=i),
            "amount": (i * 7919 - 60000) * (-1 if i % 4 == 0 else 1),
            "fee": None if i % 5 == 0 else -(i * 13 + 1),
            "description": DESCRIPTIONS[i % len(DESCRIPTIONS)],
            "category": ("charge", "refund", "fee")[i % 3],
            "quantity": i - 10,
            "live": i % 2 == 0,
            "currency": currency,
        })
    return rows


ROWS = make_rows()
COLUMNS = (
    Column("id", "string"), Column("created", "timestamp"), Column("day", "date"),
    Column("amount", "money"), Column("fee", "money"), Column("description", "string"),
    Column("category", "string"), Column("quantity", "integer"), Column("live", "boolean"),
    Column("currency", "string"),
)


@pytest.fixture(scope="module")
def client(settings: Settings):
    with open_warehouse(settings, purpose="test_writers", wait_seconds=120) as client:
        client.command("CREATE DATABASE IF NOT EXISTS writers_test")
        client.command("DROP TABLE IF EXISTS writers_test.txns")
        client.command(
            "CREATE TABLE writers_test.txns (id String, created DateTime64(6, 'UTC'), day Date, "
            "amount Int64, fee Nullable(Int64), description Nullable(String), category String, "
            "quantity Int64, live Bool, currency String, currency_exponent UInt8, account_id String) "
            "ENGINE = MergeTree ORDER BY id")
        client.insert("writers_test.txns", [
            [r["id"], r["created"], r["day"], r["amount"], r["fee"], r["description"], r["category"],
             r["quantity"], r["live"], r["currency"], EXPONENTS[r["currency"]], "acct_1"] for r in ROWS],
            column_names=["id", "created", "day", "amount", "fee", "description", "category",
                          "quantity", "live", "currency", "currency_exponent", "account_id"])
        yield client


def itemized_query(**changes) -> ReportQuery:
    base = ReportQuery(
        report_type="test.itemized", title="Test transactions (itemized)", shape="itemized",
        sql=("SELECT id, toTimeZone(created, {tz:String}) AS created, day, amount, fee, description, "
             "category, quantity, live, currency, currency AS _currency, currency_exponent AS _exponent "
             "FROM writers_test.txns WHERE account_id = {account:String} ORDER BY id"),
        parameters={"tz": TZ, "account": "acct_1"}, columns=COLUMNS, account_id="acct_1",
        account_name="Test Co", timezone=TZ,
        interval_start=datetime(2024, 3, 1, tzinfo=UTC), interval_end=datetime(2024, 4, 1, tzinfo=UTC))
    return dataclasses.replace(base, **changes)


def expected_totals(rows=ROWS) -> dict[str, dict[str, int]]:
    totals: dict[str, dict[str, int]] = {"amount": {}, "fee": {}}
    for r in rows:
        for col in ("amount", "fee"):
            totals[col][r["currency"]] = totals[col].get(r["currency"], 0) + (r[col] or 0)
    return totals


def guard(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def expected_csv_row(r: dict) -> list[str]:
    exp = EXPONENTS[r["currency"]]
    return [r["id"], r["created"].astimezone(ZoneInfo(TZ)).strftime("%Y-%m-%d %H:%M:%S"),
            r["day"].isoformat(), format_minor(r["amount"], exp),
            "" if r["fee"] is None else format_minor(r["fee"], exp),
            "" if r["description"] is None else guard(r["description"]), r["category"],
            str(r["quantity"]), "true" if r["live"] else "false", r["currency"]]


def assert_digest(path: Path, manifest) -> None:
    data = path.read_bytes()
    assert manifest.byte_size == len(data)
    assert manifest.sha256 == hashlib.sha256(data).hexdigest()


def sum_major(pairs) -> dict[str, int]:
    totals: dict[str, int] = {}
    for currency, text in pairs:
        if text != "":
            totals[currency] = totals.get(currency, 0) + parse_major(text, EXPONENTS[currency])
        else:
            totals.setdefault(currency, 0)
    return totals


def test_csv_round_trips_exactly(client, tmp_path):
    calls: list[int] = []
    out = tmp_path / "report.csv"
    manifest = write_report(client, itemized_query(), "csv", out, progress=calls.append)
    text = out.read_text(encoding="utf-8")
    assert "\r\n" not in text  # LF line endings, as documented
    records = list(csv.reader(io.StringIO(text, newline="")))
    assert records[0] == [c.name for c in COLUMNS]
    assert records[1:] == [expected_csv_row(r) for r in ROWS]
    assert manifest.row_count == N_ROWS and calls[-1] == N_ROWS
    assert manifest.totals_minor == expected_totals()
    assert manifest.currency_exponents == EXPONENTS  # read from the rows, for formatting totals
    for col in ("amount", "fee"):
        assert sum_major((r[9], r[3 if col == "amount" else 4]) for r in records[1:]) == manifest.totals_minor[col]
    # An independent parser agrees on shape and the money text (no float conversion).
    frame = pl.read_csv(out, infer_schema=False)
    assert frame.height == N_ROWS and frame["amount"].to_list() == [r[3] for r in records[1:]]
    assert_digest(out, manifest)
    assert manifest.format == "csv" and manifest.compressed is None
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("currency", ["usd", "jpy"])
def test_single_currency_csv_prints_typed_money(client, tmp_path, currency):
    """All rows share one exponent: money leaves the engine as typed numbers (bare in the file),
    with the same values a mixed-currency export prints as text."""
    query = itemized_query()
    query = dataclasses.replace(query, sql=query.sql.replace(
        "WHERE account_id", f"WHERE currency = '{currency}' AND account_id"))
    rows = [r for r in ROWS if r["currency"] == currency]
    outputs = []
    for transport in TRANSPORTS:
        out = tmp_path / f"{transport}.csv"
        manifest = export_csv(client, query, out, transport)
        outputs.append(out.read_bytes())
        records = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
        assert records[1:] == [expected_csv_row(r) for r in rows]
        assert manifest.totals_minor == expected_totals(rows)
        assert_digest(out, manifest)
    assert outputs[0] == outputs[1] == outputs[2]
    first = next(r for r in rows if r["fee"] is None)
    line = next(line for line in outputs[0].decode().splitlines() if line.startswith(f'{first["id"]},'))
    exponent = EXPONENTS[currency]
    assert f',{format_minor(first["amount"], exponent)},,' in line  # bare amount, empty NULL fee


def test_csv_gzip_and_minor_units(client, tmp_path):
    plain = tmp_path / "plain.csv"
    write_report(client, itemized_query(), "csv", plain)
    zipped = tmp_path / "report.csv.gz"
    manifest = write_report(client, itemized_query(), "csv", zipped, gzip=True)
    assert gzip.decompress(zipped.read_bytes()) == plain.read_bytes()
    assert manifest.compressed == "gzip"
    assert_digest(zipped, manifest)

    minor = tmp_path / "minor.csv"
    manifest = write_report(client, itemized_query(), "csv", minor, money_format="minor")
    records = list(csv.DictReader(minor.open(newline="", encoding="utf-8")))
    # Integer minor units, and the header says so.
    assert [int(r["amount_minor"]) for r in records] == [r["amount"] for r in ROWS]
    assert "amount" not in records[0] and manifest.columns[3:5] == ["amount_minor", "fee_minor"]


def test_csv_quotes_only_what_needs_quoting_and_every_reader_agrees(client, tmp_path):
    """Stripe's files quote a field only when it holds a comma, quote or line break; the csv
    module, polars and DuckDB must all read back exactly the expected values."""
    import duckdb

    out = tmp_path / "report.csv"
    manifest = write_report(client, itemized_query(), "csv", out)
    text = out.read_text(encoding="utf-8")
    lines = text.split("\n")
    assert lines[0] == ",".join(c.name for c in COLUMNS)  # a bare header, like Stripe's
    # IDs, times, dates and amounts bare; the description quoted only because it holds quotes.
    assert lines[1] == 'txn_000,2024-03-09 18:30:00,2024-03-01,600.00,,"\'=HYPERLINK(""http://x"")",charge,-10,true,usd'
    assert lines[3] == "txn_002,2024-03-10 09:30:02,2024-03-03,-44.162,-0.027,'+1,fee,-8,true,kwd"
    assert '"plain, with comma"' in text and '"say ""hi"""' in text and '"line one\nline two"' in text
    expected = [expected_csv_row(r) for r in ROWS]
    assert list(csv.reader(io.StringIO(text, newline="")))[1:] == expected
    frame = pl.read_csv(out, infer_schema=False)
    assert frame.columns == [c.name for c in COLUMNS]
    assert [[v if v is not None else "" for v in row] for row in frame.rows()] == expected
    rows = duckdb.sql(f"SELECT * FROM read_csv('{out}', header = true, all_varchar = true, "
                      "quote = '\"', escape = '\"', delim = ',', null_padding = false)").fetchall()
    assert [[v if v is not None else "" for v in row] for row in rows] == expected
    # DuckDB sums the money text exactly as the manifest does.
    sums = duckdb.sql(f"SELECT currency, sum(amount::DECIMAL(38, 3)) FROM read_csv('{out}', header = true, "
                      "all_varchar = true) GROUP BY currency").fetchall()
    assert {cur: int(Decimal(total).scaleb(EXPONENTS[cur])) for cur, total in sums} == \
        manifest.totals_minor["amount"]


def test_csv_quotes_a_code_column_only_when_its_values_need_it(client, tmp_path):
    """Platform codes (IDs, categories) skip the per-cell quoting work after the totals query
    found no value needing quotes; one that does is quoted like any text."""
    codes = tuple(dataclasses.replace(c, user_text=False) if c.name in ("id", "category") else c
                  for c in COLUMNS)
    plain = itemized_query(columns=codes)
    facts = inspect_query(client, plain)
    assert facts.quoted_codes == frozenset()
    odd = itemized_query(columns=codes, sql=plain.sql.replace("category,", "concat(category, ', \"x\"') AS category,"))
    facts = inspect_query(client, odd)
    assert facts.quoted_codes == frozenset({6})
    out = tmp_path / "odd.csv"
    write_report(client, odd, "csv", out)
    records = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    assert [r[6] for r in records[1:]] == [f'{r["category"]}, "x"' for r in ROWS]
    assert [r[0] for r in records[1:]] == [r["id"] for r in ROWS]


def test_csv_bom_is_opt_in_and_adds_only_the_bom(client, tmp_path):
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    write_report(client, itemized_query(), "csv", plain)
    manifest = write_report(client, itemized_query(), "csv", bom, csv_bom=True)
    assert not plain.read_bytes().startswith(b"\xef\xbb\xbf")  # the default bytes are unchanged
    assert bom.read_bytes() == b"\xef\xbb\xbf" + plain.read_bytes()
    assert_digest(bom, manifest)
    assert manifest.extra["bom"] is True
    # Readers that know the BOM read the same table; "Zoë" stays "Zoë".
    records = list(csv.reader(io.StringIO(bom.read_text(encoding="utf-8-sig"), newline="")))
    assert records[0][0] == "id" and any("Zoë ünïcødé 日本" in r for r in records)
    assert pl.read_csv(bom, infer_schema=False).columns[0] == "id"
    gz = tmp_path / "bom.csv.gz"
    write_report(client, itemized_query(), "csv", gz, csv_bom=True, gzip=True)
    assert gzip.decompress(gz.read_bytes()) == bom.read_bytes()
    with pytest.raises(InvalidParameter) as info:
        write_report(client, itemized_query(), "xlsx", tmp_path / "r.xlsx", csv_bom=True)
    assert info.value.param == "csv_bom"


def test_csv_iso8601_timestamps_carry_their_offset(client, tmp_path):
    out = tmp_path / "iso.csv"
    manifest = write_report(client, itemized_query(), "csv", out, timestamp_format="iso8601")
    records = list(csv.DictReader(out.open(newline="", encoding="utf-8")))
    got = [datetime.fromisoformat(r["created"]) for r in records]
    assert got == [r["created"] for r in ROWS]  # the same instants, offsets included
    assert {g.utcoffset() for g in got} == {timedelta(hours=-5), timedelta(hours=-4)}  # across DST
    assert records[0]["created"] == ROWS[0]["created"].astimezone(ZoneInfo(TZ)).isoformat()
    assert manifest.extra["timestamp_format"] == "iso8601"
    with pytest.raises(InvalidParameter) as info:
        write_report(client, itemized_query(), "csv", out, timestamp_format="rfc2822")
    assert info.value.param == "timestamp_format"


def test_xlsx_typed_cells_and_sheet_split(client, tmp_path):
    out = tmp_path / "report.xlsx"
    calls: list[int] = []
    manifest = write_report(client, itemized_query(), "xlsx", out, progress=calls.append,
                            xlsx_rows_per_sheet=10)
    assert manifest.sheets == 3 and manifest.row_count == N_ROWS and calls[-1] == N_ROWS
    assert_digest(out, manifest)
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["Report", "Report (2)", "Report (3)"]
    data = []
    for sheet in book.worksheets:
        rows = list(sheet.iter_rows())
        assert [c.value for c in rows[0]] == [c.name for c in COLUMNS]
        assert all(c.font.b for c in rows[0])
        assert sheet.freeze_panes == "A2"
        assert sheet.auto_filter.ref == f"A1:J{len(rows)}"
        data.extend(rows[1:])
    assert [len(s["A"]) - 1 for s in book.worksheets] == [10, 10, 3]
    totals: dict[str, dict[str, int]] = {"amount": {}, "fee": {}}
    for cells, r in zip(data, ROWS, strict=True):
        values = [c.value for c in cells]
        exp = EXPONENTS[r["currency"]]
        assert values[0] == r["id"]
        assert values[1] == r["created"].astimezone(ZoneInfo(TZ)).replace(tzinfo=None)
        assert cells[1].number_format == "yyyy-mm-dd hh:mm:ss" and cells[2].number_format == "yyyy-mm-dd"
        assert values[2] == datetime.combine(r["day"], datetime.min.time())
        # The currency shows in every amount, whether or not its column is selected.
        assert cells[3].number_format == {0: '#,##0 "JPY"', 2: '#,##0.00 "USD"', 3: '#,##0.000 "KWD"'}[exp]
        assert isinstance(values[3], int | float)
        assert values[5] == r["description"] and values[7] == r["quantity"] and values[8] is r["live"]
        for index, col in ((3, "amount"), (4, "fee")):
            minor = None if values[index] is None else int(Decimal(str(values[index])).scaleb(exp))
            assert minor == r[col]
            totals[col][r["currency"]] = totals[col].get(r["currency"], 0) + (minor or 0)
    assert totals == manifest.totals_minor == expected_totals()


def long_id_query() -> ReportQuery:
    """IDs as long as Stripe's (30 characters), beside a 3-letter currency."""
    query = itemized_query()
    return dataclasses.replace(query, sql=query.sql.replace(
        "SELECT id,", "SELECT concat(id, '_', repeat('x', 22)) AS id,"))


def test_xlsx_widths_from_content_and_print_setup(client, tmp_path):
    out = tmp_path / "report.xlsx"
    write_report(client, long_id_query(), "xlsx", out)
    sheet = openpyxl.load_workbook(out).worksheets[0]
    width = {c.name: sheet.column_dimensions[chr(65 + i)].width for i, c in enumerate(COLUMNS)}
    assert width["id"] >= 30 + 1  # the whole ID shows (it was clipped to the kind's 22)
    assert width["currency"] < 15 < width["id"]  # a 3-letter code is not as wide as an ID
    assert width["description"] >= len("plain, with comma") and width["created"] >= 19
    assert width["amount"] >= len("-44,162.000 KWD") - 4  # the widest amount, separators included
    assert sheet.freeze_panes == "A2"
    setup = sheet.page_setup
    assert setup.orientation == "landscape" and setup.fitToWidth == 1 and setup.fitToHeight == 0
    assert sheet.sheet_properties.pageSetUpPr.fitToPage
    assert sheet.print_title_rows == "$1:$1"  # the header repeats on every printed page
    assert "Page &P of &N" in sheet.oddFooter.right.text

    minor = tmp_path / "minor.xlsx"
    manifest = write_report(client, itemized_query(), "xlsx", minor, money_format="minor")
    header = [c.value for c in next(openpyxl.load_workbook(minor).worksheets[0].iter_rows())]
    assert header[3:5] == ["amount_minor", "fee_minor"] == manifest.columns[3:5]


def soffice(*args: str, cwd: Path) -> None:
    """LibreOffice headless with a private profile (tests run beside each other)."""
    assert shutil.which("soffice"), "LibreOffice (soffice) is required"
    profile = cwd / "lo-profile"
    subprocess.run(["soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless", *args],
                   cwd=cwd, check=True, capture_output=True, timeout=120)


def test_xlsx_round_trips_through_libreoffice(client, tmp_path):
    """LibreOffice opens the workbook and saves it again with every value and format intact;
    its CSV export of the raw values sums to the manifest's totals."""
    out = tmp_path / "report.xlsx"
    manifest = write_report(client, long_id_query(), "xlsx", out)
    converted = tmp_path / "lo"
    converted.mkdir()
    soffice("--convert-to", "xlsx", "--outdir", str(converted), str(out), cwd=tmp_path)
    again = openpyxl.load_workbook(converted / "report.xlsx").worksheets[0]
    original = openpyxl.load_workbook(out).worksheets[0]
    # LibreOffice writes booleans as TRUE()/FALSE() formulas (cached value kept): same value.
    as_value = {"=TRUE()": True, "=FALSE()": False}
    assert [[as_value.get(c.value, c.value) if isinstance(c.value, str) else c.value for c in row]
            for row in again.iter_rows()] == [[c.value for c in row] for row in original.iter_rows()]
    def shown(fmt: str) -> str:  # LibreOffice re-escapes the same format: yyyy\-mm, " USD"
        return re.sub(r'[\\"\s]', "", fmt)

    assert [shown(c.number_format) for c in next(again.iter_rows(min_row=2))][1:4] == \
        ["yyyy-mm-ddhh:mm:ss", "yyyy-mm-dd", "#,##0.00USD"]
    # Raw values (not "as shown"): token 9 of the CSV filter options.
    soffice("--convert-to", 'csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false',
            "--outdir", str(converted), str(out), cwd=tmp_path)
    records = list(csv.DictReader((converted / "report.csv").open(newline="", encoding="utf-8")))
    assert [r["id"] for r in records] == [f"{r['id']}_{'x' * 22}" for r in ROWS]
    totals: dict[str, int] = {}
    for r in records:
        totals[r["currency"]] = totals.get(r["currency"], 0) + parse_major(r["amount"], EXPONENTS[r["currency"]])
    assert totals == manifest.totals_minor["amount"]


def test_xlsx_exactly_full_sheet_makes_no_empty_sheet(client, tmp_path):
    manifest = write_report(client, itemized_query(), "xlsx", tmp_path / "r.xlsx",
                            xlsx_rows_per_sheet=N_ROWS)
    assert manifest.sheets == 1
    assert openpyxl.load_workbook(tmp_path / "r.xlsx").worksheets[0].max_row == N_ROWS + 1


def currency_query(currency: str | None) -> ReportQuery:
    """The test query over one currency's rows, every row (None) or none ("none")."""
    if currency is None:
        return itemized_query()
    return itemized_query(sql=itemized_query().sql.replace("WHERE", "WHERE currency = {cur:String} AND"),
                          parameters={"tz": TZ, "account": "acct_1", "cur": currency})


def test_parquet_types_and_money_rule(client, tmp_path):
    out = tmp_path / "multi.parquet"
    manifest = write_report(client, itemized_query(), "parquet", out)
    assert_digest(out, manifest)
    table = pq.read_table(out)
    schema = table.schema
    assert str(schema.field("created").type) == f"timestamp[us, tz={TZ}]"
    assert str(schema.field("day").type) == "date32[day]"
    assert str(schema.field("amount").type) == "decimal128(38, 4)"
    assert str(schema.field("quantity").type) == "int64"
    assert str(schema.field("currency_exponent").type) == "int8"
    rows = table.to_pylist()
    assert [r["created"] for r in rows] == [r["created"] for r in ROWS]
    assert [r["description"] for r in rows] == [r["description"] for r in ROWS]
    totals: dict[str, dict[str, int]] = {"amount": {}, "fee": {}}
    for r in rows:
        assert r["currency_exponent"] == EXPONENTS[r["currency"]]
        for col in ("amount", "fee"):
            minor = 0 if r[col] is None else int(r[col].scaleb(r["currency_exponent"]))
            assert r[col] is None or minor == r[col].scaleb(r["currency_exponent"])  # exact
            totals[col][r["currency"]] = totals[col].get(r["currency"], 0) + minor
    assert totals == manifest.totals_minor == expected_totals()

    minor = tmp_path / "minor.parquet"
    write_report(client, itemized_query(), "parquet", minor, money_format="minor")
    table = pq.read_table(minor)
    assert str(table.schema.field("amount_minor").type) == "int64" and "amount" not in table.schema.names
    assert table.column("amount_minor").to_pylist() == [r["amount"] for r in ROWS]


@pytest.mark.parametrize("money_format", ["major", "minor"])
def test_parquet_schema_is_the_same_for_every_currency_mix_and_an_empty_file(client, tmp_path, money_format):
    """A nightly load must not break on a quiet day: usd, jpy, kwd, all of them and zero rows
    give one schema (money used to switch from decimal128 to *_minor int64 for several currencies
    or none)."""
    schemas = {}
    for case in ("usd", "jpy", "kwd", None, "none"):
        out = tmp_path / f"{case}.parquet"
        manifest = write_report(client, currency_query(case), "parquet", out, money_format=money_format)
        table = pq.read_table(out)
        schemas[case] = table.schema
        rows = [r for r in ROWS if case in (None, r["currency"])]
        assert table.num_rows == manifest.row_count == len(rows)
        column = "amount" if money_format == "major" else "amount_minor"
        got = [int(v.scaleb(e)) if money_format == "major" else v
               for v, e in zip(table.column(column).to_pylist(), table.column("currency_exponent").to_pylist())]
        assert got == [r["amount"] for r in rows]
    first = schemas["usd"]
    for case, schema in schemas.items():
        assert schema.equals(first), case


def pdf_text(path: Path) -> str:
    assert shutil.which("pdftotext"), "pdftotext (poppler-utils) is required"
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def pdf_query() -> ReportQuery:
    columns = (Column("id", "string"), Column("currency", "string"), Column("amount", "money"),
               Column("description", "string"))
    return itemized_query(
        columns=columns,
        sql=("SELECT id, currency, amount, description, currency AS _currency, "
             "currency_exponent AS _exponent FROM writers_test.txns ORDER BY id"),
        parameters={})


def test_itemized_pdf_rows_and_totals(client, tmp_path):
    out = tmp_path / "report.pdf"
    calls: list[int] = []
    manifest = write_report(client, pdf_query(), "pdf", out, progress=calls.append)
    assert_digest(out, manifest)
    text = pdf_text(out)
    # People's document: uppercase currency codes, thousands separators (en_US by default).
    found = re.findall(r"^\s*(txn_\d{3})\s+(USD|JPY|KWD)\s+(-?[\d,]+(?:\.\d+)?)", text, re.M)
    assert [f[0] for f in found] == [r["id"] for r in ROWS]
    assert sum_major((cur.lower(), amount.replace(",", "")) for _, cur, amount in found) == \
        manifest.totals_minor["amount"]
    for currency, total in manifest.totals_minor["amount"].items():
        whole, frac = divmod(abs(total), 10 ** EXPONENTS[currency])
        amount = ("-" if total < 0 else "") + f"{whole:,}" + (
            f".{frac:0{EXPONENTS[currency]}d}" if EXPONENTS[currency] else "")
        assert re.search(rf"Total {currency.upper()}\s+{re.escape(amount)}\s*$", text, re.M)
    assert "Test transactions (itemized)" in text and "Page 1 of 1" in text and calls[-1] == N_ROWS


def summary_query() -> ReportQuery:
    return itemized_query(
        shape="summary", title="Test summary", chart_label_column="category",
        chart_value_column="amount",
        columns=(Column("category", "string"), Column("amount", "money"), Column("currency", "string")),
        sql=("SELECT category, sum(amount) AS amount, currency, currency AS _currency, "
             "any(currency_exponent) AS _exponent FROM writers_test.txns "
             "GROUP BY category, currency ORDER BY currency, category"),
        parameters={})


def test_itemized_pdf_renderer_has_reportlab_c_accelerator():
    # reportlab[accel]: without it reportlab silently falls back to pure-Python string widths and
    # number formatting, and a 10,000-row itemized PDF takes ~2x as long (measured 4.7 vs 2.0 s).
    from reportlab.lib import rl_accel

    assert {"fp_str", "instanceStringWidthTTF", "escapePDF"} <= set(rl_accel._c_funcs)


def test_summary_pdf_fonts_are_subset_by_harfbuzz(client, tmp_path, caplog):
    # WeasyPrint subsets every embedded font with HarfBuzz's hb-subset (libharfbuzz-subset0: the
    # Dockerfile and ./run install it) and without it falls back to fontTools, with a warning: a
    # statement's summary PDF then took ~1.6x as long to lay out (median 215 -> 341 ms).
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        write_report(client, summary_query(), "pdf", tmp_path / "summary.pdf")
    assert not [r.getMessage() for r in caplog.records if "HarfBuzz" in r.getMessage()]


def test_summary_pdf(client, tmp_path):
    query = summary_query()
    out = tmp_path / "summary.pdf"
    manifest = write_report(client, query, "pdf", out)
    text = pdf_text(out)
    assert "Test summary" in text and "Test Co" in text and "acct_1" in text and TZ in text
    assert "Amount by category" in text and "Charges" in text
    for currency, total in manifest.totals_minor["amount"].items():
        assert total == expected_totals()["amount"][currency]
        whole, frac = divmod(abs(total), 10 ** EXPONENTS[currency])
        amount = ("-" if total < 0 else "") + f"{whole:,}" + (
            f".{frac:0{EXPONENTS[currency]}d}" if EXPONENTS[currency] else "")
        assert amount in text and currency.upper() in text


def test_summary_pdf_embeds_only_the_lean_font_copies(client, settings, tmp_path):
    """Every text (margin boxes and SVG charts included) uses the cached DejaVu copies without
    layout/math tables, which WeasyPrint subsets ~2x faster."""
    from fontTools.ttLib import TTFont

    from exports.writers.pdf_writer import FONT_DIR, UNUSED_FONT_TABLES

    if not (FONT_DIR / "DejaVuSans.ttf").exists():
        pytest.skip("DejaVu fonts not installed")
    out = tmp_path / "summary.pdf"
    write_report(client, summary_query(), "pdf", out, settings=settings)
    fonts = subprocess.run(["pdffonts", str(out)], capture_output=True, text=True, check=True).stdout
    embedded = [line.split()[0].split("+")[-1] for line in fonts.splitlines()[2:]]
    assert sorted(embedded) == ["Payreports-Sans", "Payreports-Sans-Bold"]
    copies = sorted((settings.state_dir / "fonts").glob("*.ttf"))
    assert len(copies) == 2
    for copy in copies:
        font = TTFont(copy)
        assert not set(UNUSED_FONT_TABLES) & set(font.keys())
        original = TTFont(FONT_DIR / (copy.name.split("-lean")[0] + ".ttf"))
        assert font.getBestCmap() == original.getBestCmap()  # every character still there


def test_pdf_row_limit_fails_before_rendering(client, settings, tmp_path):
    small = settings.model_copy(update={"pdf_itemized_row_limit": N_ROWS - 1})
    out = tmp_path / "too-big.pdf"
    with pytest.raises(ReportTooLarge) as info:
        write_report(client, pdf_query(), "pdf", out, settings=small)
    assert "CSV" in info.value.message and "XLSX" in info.value.message
    assert not out.exists() and not list(tmp_path.iterdir())
    write_report(client, pdf_query(), "pdf", out, settings=settings.model_copy(
        update={"pdf_itemized_row_limit": N_ROWS}))
    assert out.exists()


def test_summary_pdf_row_limit_and_facts_from_its_single_query(client, settings, tmp_path):
    """A summary PDF sums its own fetched rows for the manifest: they must equal the totals
    query's facts, and above the row limit it fails with the exact count like itemized PDFs."""
    query = summary_query()
    facts = inspect_query(client, query)
    out = tmp_path / "summary.pdf"
    manifest = write_report(client, query, "pdf", out, settings=settings)
    assert (manifest.row_count, manifest.totals_minor, manifest.currency_exponents) == (
        facts.row_count, facts.totals_minor, facts.exponents)
    small = settings.model_copy(update={"pdf_itemized_row_limit": facts.row_count - 1})
    with pytest.raises(ReportTooLarge) as info:
        write_report(client, query, "pdf", tmp_path / "too-big.pdf", settings=small)
    assert f"This report has {facts.row_count:,} rows" in info.value.message
    assert not (tmp_path / "too-big.pdf").exists()


def test_failure_mid_stream_leaves_no_file(client, tmp_path):
    failing = itemized_query(sql=itemized_query().sql.replace(
        "SELECT id,", "SELECT if(throwIf(quantity = 5, 'boom') = 0, id, id) AS id,"))
    for fmt in ("csv", "xlsx", "parquet"):
        out = tmp_path / f"r.{fmt}"
        with pytest.raises(Exception, match="boom"):
            write_report(client, failing, fmt, out)
        assert not list(tmp_path.iterdir()), fmt
    # The client is still usable afterwards (the stream released the engine).
    assert client.query("SELECT 1").result_rows == [(1,)]


def test_bad_format_names_the_parameter(client, tmp_path):
    with pytest.raises(InvalidParameter) as info:
        write_report(client, itemized_query(), "docx", tmp_path / "r.docx")
    assert info.value.param == "format"


# ------------------------------------------------------------------ CSV transports
# On chdb the CSV writer lets ClickHouse append to the file itself ("file", followed by a hashing
# thread) or, for gzip, write into a named pipe ("pipe"); a ClickHouse server is read with
# raw_stream ("stream"). All must write the same file and fail the same way.
TRANSPORTS = ["file", "pipe", "stream"]

def export_csv(client, query: ReportQuery, out: Path, transport: str, *, progress=None,
               gzip: bool = False):
    return write_csv(client, query, inspect_query(client, query), out, progress=Progress(progress),
                     gzip=gzip, money_format="major", transport=transport)


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """Where the writer's FIFO dirs go (the project's scratch root under this temp dir, see
    exports/tempdirs.py), so a test can see that none are left behind."""
    from exports.tempdirs import temp_root

    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return temp_root()


def pipe_readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name in ("csv-pipe-reader", "csv-file-follower")]


def test_csv_transports_write_identical_files(client, tmp_path, private_tmp):
    # So every CSV test above runs the file path, and their gzip cases the pipe.
    assert default_transport(client) == "file" and default_transport(client, gzip=True) == "pipe"
    outputs = {}
    for transport in TRANSPORTS:
        out = tmp_path / f"{transport}.csv"
        manifest = export_csv(client, itemized_query(), out, transport)
        assert_digest(out, manifest)
        outputs[transport] = (out.read_bytes(), dataclasses.replace(manifest, file_name=""))
        if transport == "file":
            with pytest.raises(ValueError, match="gzip"):
                export_csv(client, itemized_query(), tmp_path / "f.csv.gz", transport, gzip=True)
            continue
        zipped = tmp_path / f"{transport}.csv.gz"
        zipped_manifest = export_csv(client, itemized_query(), zipped, transport, gzip=True)
        assert_digest(zipped, zipped_manifest)
        assert gzip.decompress(zipped.read_bytes()) == out.read_bytes()
    assert outputs["file"] == outputs["pipe"] == outputs["stream"]
    file_bytes = outputs["file"][0]
    quoted_newlines = sum("\n" in (r["description"] or "") for r in ROWS)
    assert quoted_newlines and file_bytes.count(b"\n") == 1 + N_ROWS + quoted_newlines
    assert not list(private_tmp.iterdir()) and not pipe_readers()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize("failure, message", [
    ("if(throwIf(quantity = 5, 'boom') = 0, id, id)", "boom"),  # fails while rows are produced
    ("no_such_column", "no_such_column"),  # fails before ClickHouse opens the output
])
def test_csv_query_failure_leaves_nothing(client, tmp_path, private_tmp, transport, failure, message):
    query = itemized_query()
    failing = dataclasses.replace(query, sql=query.sql.replace("SELECT id,", f"SELECT {failure} AS id,"))
    facts = inspect_query(client, query)  # the shape check passes; the export query fails
    out = tmp_path / "r.csv"
    with pytest.raises(DatabaseError, match=message):
        write_csv(client, failing, facts, out, progress=Progress(None), gzip=False,
                  money_format="major", transport=transport)
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]
    assert not list(private_tmp.iterdir()) and not pipe_readers()
    assert client.query("SELECT 1").result_rows == [(1,)]


class ExportCancelled(Exception):
    pass


@pytest.mark.timeout(120)
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_csv_progress_callback_error_aborts_export(client, tmp_path, private_tmp, transport):
    # More rows than PROGRESS_ROW_STEP, so the callback runs while rows are still streaming.
    rows = PROGRESS_ROW_STEP * 4
    query = itemized_query(
        columns=(Column("id", "string"), Column("amount", "money"), Column("currency", "string")),
        sql=("SELECT toString(number) AS id, toInt64(number) AS amount, 'usd' AS currency, "
             "'usd' AS _currency, toUInt8(2) AS _exponent FROM numbers({n:UInt64})"),
        parameters={"n": rows})
    seen: list[int] = []

    def cancel(written: int) -> None:
        seen.append(written)
        raise ExportCancelled(f"cancelled at {written}")

    out = tmp_path / "r.csv"
    with pytest.raises(ExportCancelled):
        export_csv(client, query, out, transport, progress=cancel)
    assert len(seen) == 1 and 0 < seen[0] < rows
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]
    assert not list(private_tmp.iterdir()) and not pipe_readers()
    # The engine finished (or dropped) the query: the client serves the next one.
    manifest = export_csv(client, query, out, transport, progress=seen.append)
    assert manifest.row_count == rows and seen[-1] == rows
    assert manifest.totals_minor == {"amount": {"usd": rows * (rows - 1) // 2}}
    assert out.read_bytes().count(b"\n") == rows + 1


@pytest.mark.timeout(120)
@pytest.mark.parametrize("transport", ["file", "pipe"])
def test_cancelling_an_embedded_export_kills_its_query(client, tmp_path, private_tmp, transport):
    """On the embedded engine ClickHouse writes the file itself; a cancel must stop the query,
    not wait for it to write every remaining row. Each row here costs ~30 µs of hashing (2,000
    cityHash64 calls) and the totals query never computes it, so the export alone would take
    minutes; killed, it ends within seconds of the first progress callback."""
    rows = 4_000_000
    query = itemized_query(
        columns=(Column("id", "string"), Column("amount", "money"), Column("currency", "string")),
        sql=("SELECT toString(arraySum(arrayMap(i -> cityHash64(i, number) % 7, range(2000)))) AS id, "
             "toInt64(number) AS amount, 'usd' AS currency, 'usd' AS _currency, "
             "toUInt8(2) AS _exponent FROM numbers({n:UInt64})"),
        parameters={"n": rows})

    def cancel(written: int) -> None:
        raise ExportCancelled(f"cancelled at {written}")

    started = time.monotonic()
    with pytest.raises(ExportCancelled):
        export_csv(client, query, tmp_path / "r.csv", transport, progress=cancel)
    assert time.monotonic() - started < 30
    assert not client.query("SELECT count() FROM system.processes "
                            "WHERE startsWith(Settings['log_comment'], 'payreports-export')").result_rows[0][0]
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]
    assert not list(private_tmp.iterdir()) and not pipe_readers()
    assert client.query("SELECT 1").result_rows == [(1,)]


class CountingClient:
    """A client that counts the queries it is asked to run (each costs ~20 ms of planning on
    the embedded engine, whatever it reads)."""

    def __init__(self, client):
        self._client, self.calls = client, 0

    def query(self, *args, **kwargs):
        self.calls += 1
        return self._client.query(*args, **kwargs)

    def command(self, *args, **kwargs):
        self.calls += 1
        return self._client.command(*args, **kwargs)

    def raw_stream(self, *args, **kwargs):  # the CSV transport for a client that is not chdb's
        self.calls += 1
        return self._client.raw_stream(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


SMALL_CSV_CASES = {
    "mixed currencies": ({}, {}),
    "one currency (typed money when streamed)": (
        {"sql": itemized_query().sql.replace("WHERE account_id", "WHERE currency = 'usd' AND account_id")}, {}),
    "minor units": ({}, {"money_format": "minor"}),
    "iso8601 timestamps and a BOM": ({}, {"timestamp_format": "iso8601", "csv_bom": True}),
    "gzip": ({}, {"gzip": True}),
    "code columns, one needing quotes": (
        {"columns": tuple(dataclasses.replace(c, user_text=False) if c.name in ("id", "category") else c
                          for c in COLUMNS),
         "sql": itemized_query().sql.replace("category,", "concat(category, ', \"x\"') AS category,")}, {}),
    "a single column": (
        {"columns": (Column("description", "string"),),
         "sql": "SELECT description, currency AS _currency, currency_exponent AS _exponent "
                "FROM writers_test.txns WHERE account_id = {account:String} ORDER BY id",
         "parameters": {"account": "acct_1"}}, {}),
}


@pytest.mark.parametrize("case", SMALL_CSV_CASES)
def test_small_csv_in_one_query_is_the_streamed_file(client, tmp_path, case):
    """A report known to be small is written from one query that returns its finished lines and
    its totals: the same bytes and manifest as the streamed export, in 1 query instead of 3."""
    changes, options = SMALL_CSV_CASES[case]
    streamed_query = itemized_query(**changes)
    small_query = dataclasses.replace(streamed_query, rows_bound=N_ROWS)
    suffix = ".csv.gz" if options.get("gzip") else ".csv"
    streamed, small = tmp_path / f"streamed{suffix}", tmp_path / f"small{suffix}"
    counting = CountingClient(client)
    streamed_manifest = write_report(counting, streamed_query, "csv", streamed, **options)
    assert counting.calls == 3  # shape, totals, export
    counting.calls = 0
    calls: list[int] = []
    small_manifest = write_report(counting, small_query, "csv", small, progress=calls.append, **options)
    assert counting.calls == 2  # shape (once per run with a shape cache), rows with their totals
    read = gzip.decompress if options.get("gzip") else (lambda data: data)
    assert read(small.read_bytes()) == read(streamed.read_bytes())
    assert dataclasses.replace(small_manifest, file_name="") == \
        dataclasses.replace(streamed_manifest, file_name="")
    assert calls[-1] == small_manifest.row_count == streamed_manifest.row_count > 0
    assert_digest(small, small_manifest)


def test_a_small_csv_guess_that_is_wrong_streams_the_file(client, tmp_path, monkeypatch):
    import exports.writers as writers

    monkeypatch.setattr(writers, "SMALL_CSV_ROWS", N_ROWS - 1)
    streamed, guessed = tmp_path / "streamed.csv", tmp_path / "guessed.csv"
    write_report(client, itemized_query(), "csv", streamed)
    counting = CountingClient(client)
    with shape_cache():
        manifest = write_report(counting, itemized_query(rows_bound=N_ROWS - 1), "csv", guessed)
    # The one-query attempt stops at SMALL_CSV_ROWS + 1 rows; then totals and export (the shape
    # read once).
    assert counting.calls == 4
    assert guessed.read_bytes() == streamed.read_bytes() and manifest.row_count == N_ROWS
    assert not list(tmp_path.glob(".*partial"))
