"""The ClickHouse formatting expressions, evaluated by the embedded engine (in-process chdb on
this session's private data dir) and compared with exports.money's Python formatting."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from exports.money import format_minor
from exports.warehouse import open_warehouse
from exports.reports.query import Column
from exports.writers.sqlformat import (CSV_FIELD_SETTINGS, CSV_OUTPUT_FORMAT, csv_field, format_column, money_major,
                                       xml_escape)


@pytest.fixture(scope="module")
def client(settings):
    with open_warehouse(settings, purpose="test_sqlformat", wait_seconds=120) as client:
        yield client


def evaluate(client, expression: str, **values) -> str:
    """Evaluate one expression over a single row whose columns are bound server-side."""
    columns = ", ".join(f"{{{name}:{kind}}} AS {name}" for name, (kind, _) in values.items())
    params = {name: value for name, (_, value) in values.items()}
    return client.query(f"SELECT {expression} FROM (SELECT {columns})", parameters=params).result_rows[0][0]


@pytest.mark.parametrize("minor, exponent, expected", [
    (1234, 0, "1234"), (1000, 2, "10.00"), (1234, 3, "1.234"), (-5, 2, "-0.05"), (0, 2, "0.00"),
    (-1234, 0, "-1234"), (5, 3, "0.005"), (-100000, 3, "-100.000"), (123456789012345678, 2, "1234567890123456.78"),
    (-9223372036854775807, 2, "-92233720368547758.07"),
])
def test_money_major_is_exact(client, minor, exponent, expected):
    got = evaluate(client, money_major("m", "e"), m=("Int64", minor), e=("UInt8", exponent))
    assert got == expected == format_minor(minor, exponent)


@pytest.mark.parametrize("text, expected", [
    ("=SUM(A1:A9)", "'=SUM(A1:A9)"), ("+1", "'+1"), ("-2", "'-2"), ("@cmd", "'@cmd"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("a=b", "a=b"), ("", ""), ("Zoë, \"q\"", "Zoë, \"q\""),
])
def test_formula_guard_on_strings(client, text, expected):
    assert evaluate(client, format_column("s", "string", guard_formulas=True), s=("String", text)) == expected
    assert evaluate(client, format_column("s", "json", guard_formulas=True), s=("String", text)) == expected
    assert evaluate(client, format_column("s", "string", guard_formulas=False), s=("String", text)) == text


def test_money_and_numbers_are_never_guarded(client):
    money = format_column("m", "money", guard_formulas=True, exponent_sql="e")
    assert evaluate(client, money, m=("Int64", -500), e=("UInt8", 2)) == "-5.00"
    assert evaluate(client, format_column("n", "integer", guard_formulas=True), n=("Int64", -7)) == "-7"


def test_nulls_become_empty_for_every_kind(client):
    for kind, ch_type in [("string", "String"), ("integer", "Int64"), ("timestamp", "DateTime64(6, 'UTC')"),
                          ("date", "Date"), ("boolean", "Bool"), ("json", "String")]:
        expr = format_column("v", kind, guard_formulas=True)
        assert evaluate(client, expr, v=(f"Nullable({ch_type})", None)) == "", kind
    money = format_column("v", "money", guard_formulas=True, exponent_sql="e")
    assert evaluate(client, money, v=("Nullable(Int64)", None), e=("UInt8", 2)) == ""


def test_timestamps_dates_booleans(client):
    ts = format_column("t", "timestamp", guard_formulas=True)
    # Formatted in the column's own zone (the catalog converts to the report timezone).
    got = client.query(f"SELECT {ts} FROM (SELECT toDateTime64('2024-03-01 15:04:05.123456', 6, 'UTC') AS u, "
                       "toTimeZone(u, 'America/New_York') AS t)").result_rows[0][0]
    assert got == "2024-03-01 10:04:05"
    assert evaluate(client, format_column("d", "date", guard_formulas=True), d=("Date", "2024-02-29")) == "2024-02-29"
    assert evaluate(client, format_column("b", "boolean", guard_formulas=True), b=("Bool", True)) == "true"
    assert evaluate(client, format_column("b", "boolean", guard_formulas=True), b=("Bool", False)) == "false"


def test_xml_escape_leaves_nothing_for_tsv_to_escape(client):
    text = "a<b>&'c\"\\d\te\nf\rg\x01h é"
    stream = client.raw_stream(f"SELECT {xml_escape('s')} FROM (SELECT {{s:String}} AS s)",
                               parameters={"s": text}, fmt="TabSeparated")
    try:
        line = stream.read()
    finally:
        stream.close()
    assert line == "a&lt;b&gt;&amp;&apos;c\"&#92;d&#9;e&#10;f&#13;gh é\n".encode()


MONEY_CASES = [(1234, 0), (1000, 2), (1234, 3), (-5, 2), (0, 2), (-1234, 0), (5, 3), (-100000, 3),
               (123456789012345678, 2), (-9223372036854775807, 2), (9223372036854775807, 4), (-1, 18)]


@pytest.mark.parametrize("minor, exponent", MONEY_CASES)
@pytest.mark.parametrize("known", [[0, 2, 3], [2], [4, 18], []], ids=["all", "other", "exact", "none"])
def test_money_major_with_known_exponents_is_exact_whatever_the_row_has(client, minor, exponent, known):
    """Known exponents take the Decimal64 branches; an exponent outside the set (a stale set)
    still formats exactly through the general fallback."""
    got = evaluate(client, money_major("m", "e", exponents=known), m=("Int64", minor), e=("UInt8", exponent))
    assert got == format_minor(minor, exponent)


def test_money_with_known_exponents_keeps_nulls_empty(client):
    money = format_column("v", "money", guard_formulas=True, exponent_sql="e", exponents=[2])
    assert evaluate(client, money, v=("Nullable(Int64)", None), e=("UInt8", 2)) == ""
    assert evaluate(client, money, v=("Nullable(Int64)", -7), e=("UInt8", 2)) == "-0.07"


def csv_text(client, expression: str, where: str = "1", **values) -> str:
    """The CSV line ClickHouse prints for one field, under the settings the CSV writer uses."""
    columns = ", ".join(f"{{{name}:{kind}}} AS {name}" for name, (kind, _) in values.items())
    params = {name: value for name, (_, value) in values.items()}
    stream = client.raw_stream(f"SELECT {expression} FROM (SELECT {columns}) WHERE {where} "
                               f"SETTINGS {CSV_FIELD_SETTINGS}", parameters=params, fmt=CSV_OUTPUT_FORMAT)
    try:
        return stream.read().decode().rstrip("\n")
    finally:
        stream.close()


@pytest.mark.parametrize("minor, exponent", MONEY_CASES)
def test_csv_typed_money_prints_the_exact_major_units_bare(client, minor, exponent):
    field = csv_field("m", Column("amount", "money"), "Int64", row_exponents=[exponent], exponent_sql="e")
    assert "reinterpret" in field or exponent == 0  # the typed path, not the text one
    assert csv_text(client, field, m=("Int64", minor), e=("UInt8", exponent)) == format_minor(minor, exponent)


def test_csv_typed_money_nulls_and_a_changed_exponent(client):
    field = csv_field("m", Column("amount", "money"), "Nullable(Int64)", row_exponents=[2], exponent_sql="e")
    assert csv_text(client, field, m=("Nullable(Int64)", None), e=("UInt8", 2)) == ""
    assert csv_text(client, field, m=("Nullable(Int64)", -7), e=("UInt8", 2)) == "-0.07"
    # A row whose exponent the totals query did not see fails the export, never misprints...
    with pytest.raises(Exception, match="currency exponents changed"):
        csv_text(client, field, m=("Nullable(Int64)", 1000), e=("UInt8", 0))
    # ...but rows the report's own WHERE excludes are never checked.
    assert csv_text(client, field, "e = 2", m=("Nullable(Int64)", 1000), e=("UInt8", 0)) == ""
    unchecked = csv_field("m", Column("fee", "money"), "Int64", row_exponents=[2], exponent_sql="e",
                          check_exponent=False)
    assert "throwIf" not in unchecked


def test_csv_mixed_exponents_and_other_kinds(client):
    mixed = csv_field("m", Column("amount", "money"), "Int64", row_exponents=[0, 3], exponent_sql="e")
    assert csv_text(client, mixed, m=("Int64", -1234), e=("UInt8", 3)) == '-1.234'
    assert csv_text(client, mixed, m=("Int64", -1234), e=("UInt8", 0)) == '-1234'
    minor = csv_field("m", Column("amount", "money"), "Int64", money_format="minor", row_exponents=[2])
    assert csv_text(client, minor, m=("Int64", -1234)) == "-1234"
    integer = csv_field("n", Column("count", "integer"), "Nullable(Int64)")
    assert csv_text(client, integer, n=("Nullable(Int64)", -7)) == "-7"
    assert csv_text(client, integer, n=("Nullable(Int64)", None)) == ""


@pytest.mark.parametrize("type_name", ["String", "Nullable(String)"])
def test_csv_guards_formulas_in_user_text_only(client, type_name):
    user = csv_field("s", Column("description", "string"), type_name)
    code = csv_field("s", Column("source_id", "string", user_text=False), type_name)
    assert csv_text(client, user, s=(type_name, "=1+2")) == "'=1+2"
    assert csv_text(client, code, s=(type_name, "=1+2")) == "=1+2"
    assert csv_text(client, user, s=(type_name, "plain")) == "plain"
    if type_name.startswith("Nullable"):
        assert csv_text(client, user, s=(type_name, None)) == ""


@pytest.mark.parametrize("type_name", ["String", "Nullable(String)"])
@pytest.mark.parametrize("text, field", [
    ("plain", "plain"), ("a,b", '"a,b"'), ('say "hi"', '"say ""hi"""'), ("x\ny", '"x\ny"'),
    ("cr\rhere", '"cr\rhere"'), ("Chloé 日本", "Chloé 日本"), (" padded ", " padded "), ("", ""),
    ("-rebate, ok", '"\'-rebate, ok"'),
])
def test_csv_quotes_only_what_needs_quoting(client, type_name, text, field):
    """As Stripe's files and Python's csv.QUOTE_MINIMAL: quotes only around a comma, quote or
    line break; what csv.reader reads back is the value (formula-guarded for user text)."""
    user = csv_field("s", Column("description", "string"), type_name)
    line = csv_text(client, user, s=(type_name, text))
    assert line == field
    assert next(csv.reader(io.StringIO(line + ",next\n"))) == [("'" + text) if text[:1] == "-" else text, "next"]


def test_csv_a_single_column_never_prints_an_empty_line(client):
    only = csv_field("s", Column("description", "string"), "Nullable(String)", only_field=True)
    assert csv_text(client, only, s=("Nullable(String)", None)) == '""'
    assert csv_text(client, only, s=("Nullable(String)", "a,b")) == '"a,b"'
    money = csv_field("m", Column("fee", "money"), "Nullable(Int64)", row_exponents=[2], exponent_sql="e",
                      only_field=True)
    assert csv_text(client, money, m=("Nullable(Int64)", None), e=("UInt8", 2)) == '""'
    assert csv_text(client, money, m=("Nullable(Int64)", 5), e=("UInt8", 2)) == "0.05"


def test_iso8601_timestamps_tell_the_repeated_dst_hour_apart(client):
    """2024-11-03 01:30 happens twice in New York; Stripe's style prints both the same, the
    opt-in ISO 8601 style with their offsets."""
    column = Column("created", "timestamp")
    kind = "DateTime64(0, 'America/New_York')"
    first, second = 1730611800, 1730615400  # 05:30 and 06:30 UTC
    stripe = [csv_text(client, csv_field("t", column, kind), t=(kind, v)) for v in (first, second)]
    assert stripe == ["2024-11-03 01:30:00", "2024-11-03 01:30:00"]
    iso = [csv_text(client, csv_field("t", column, kind, timestamp_style="iso8601"), t=(kind, v))
           for v in (first, second)]
    assert iso == ["2024-11-03T01:30:00-04:00", "2024-11-03T01:30:00-05:00"]
    assert [datetime.fromisoformat(v).timestamp() for v in iso] == [first, second]
    utc = "DateTime64(0, 'UTC')"
    assert csv_text(client, csv_field("t", column, utc, timestamp_style="iso8601"), t=(utc, first)) == \
        "2024-11-03T05:30:00+00:00"
