"""ClickHouse expressions that format one typed report column as text: the ClickHouse rendering
of the rules in `exports.writers.formatting` (the one table of them).

Formatting inside the engine keeps the CSV path at engine speed (per-row Python formatting was
measured 8-10x slower). Every function takes the SQL of a column reference and returns SQL text;
nothing user-supplied is ever formatted into it (column references are quoted identifiers).

- money: Int64 minor units + the row's `_exponent` -> major units, exact integer arithmetic
  (never floats): JPY '1234', USD '10.00', KWD '1.234', '-0.05'; no '+', no thousands separator.
- timestamp: a TIMESTAMP_STYLES pattern in the column's own timezone (the catalog converted it).
- date, boolean, integer: as the rule table says.  NULL -> empty string.
- string/json (CSV only, columns marked `user_text`): a cell beginning with = + - @ TAB or CR
  gets a leading apostrophe so a spreadsheet does not evaluate it as a formula (OWASP CSV
  injection). Money and numbers are never touched, so '-5.00' stays '-5.00'; platform-generated
  codes and IDs are left byte-exact.
The CSV writer prints integers and single-exponent money as typed numbers instead (`csv_field`):
the same text, without building a string column per cell; it quotes only fields that need it.
"""

from __future__ import annotations

from collections.abc import Iterable

from clickhouse_connect.driver.binding import quote_identifier

from exports.reports.query import Column, ColumnKind
from exports.writers.formatting import (BOOLEAN_TEXT, CSV_SPECIAL_CHARS, DATE_PATTERN,
                                        DEFAULT_TIMESTAMP_STYLE, FORMULA_START_CHARS,
                                        TIMESTAMP_STYLES)

EXPONENT_COLUMN = "_exponent"
CURRENCY_COLUMN = "_currency"
# Decimal64 holds 18 digits: the largest scale a reinterpreted Int64 can have.
MAX_DECIMAL64_SCALE = 18


def ident(name: str) -> str:
    return quote_identifier(name)


def sql_string(text: str) -> str:
    """A ClickHouse string literal (for the project's own constants and paths, never for
    request values, which are bound parameters)."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    for char, escape in (("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\0", "\\0")):
        escaped = escaped.replace(char, escape)
    return "'" + escaped + "'"


def money_major(minor_sql: str, exponent_sql: str = ident(EXPONENT_COLUMN),
                exponents: Iterable[int] | None = None) -> str:
    """Exact major-unit text of an Int64 minor amount.

    `exponents`: the currency exponents the rows can have, when known (writers know them from
    the totals query that precedes every export). Each then gets a branch with a constant scale,
    where the minor units *are* a Decimal64(e) (reinterpreted, not divided) printed with e
    digits: ~2x cheaper per cell than the general integer arithmetic, which stays as the
    fallback for any other exponent, so a stale set can only cost speed, never correctness.
    """
    absolute = f"abs(toInt128({minor_sql}))"
    scale = f"toInt128(intExp10({exponent_sql}))"
    general = (
        f"if(({exponent_sql}) = 0, toString({minor_sql}), concat("
        f"if(({minor_sql}) < 0, '-', ''), toString(intDiv({absolute}, {scale})), '.', "
        f"leftPad(toString(modulo({absolute}, {scale})), toUInt64({exponent_sql}), '0')))"
    )
    known = sorted({int(e) for e in exponents or ()})
    if not known or any(not 0 <= e <= MAX_DECIMAL64_SCALE for e in known):
        return general
    minor = f"toInt64(assumeNotNull({minor_sql}))"  # NULL is handled by format_column
    branches = []
    for exponent in known:
        text = (f"toString({minor})" if exponent == 0 else
                f"toDecimalString(reinterpret({minor}, 'Decimal64({exponent})'), {exponent})")
        branches += [f"({exponent_sql}) = {exponent}", text]
    return f"multiIf({', '.join(branches)}, {general})"


def money_typed(minor_sql: str, exponent: int, *, check_sql: str | None = None) -> str:
    """Int64 minor units as a typed number ClickHouse prints as the major-unit text itself: the
    minor units reinterpreted as Decimal64(exponent) (printed with `exponent` digits under
    `output_format_decimal_trailing_zeros = 1`), or the Int64 for exponent 0. No string column is
    built: ~2x cheaper per cell than `money_major`. NULL stays NULL (an empty field).

    Only valid when every row has this exponent. With `check_sql` (the row's exponent column) a
    row that has another one (the data changed since the totals query saw one exponent) fails
    the query rather than print the amount with the wrong number of decimals. It belongs in the
    SELECT list, never in a WHERE: ClickHouse may push a WHERE below the report's own filters
    and evaluate it on rows the report excludes."""
    if not 0 <= exponent <= MAX_DECIMAL64_SCALE:
        raise ValueError(f"exponent {exponent} does not fit a Decimal64")

    def typed(int64_sql: str) -> str:
        return int64_sql if exponent == 0 else f"reinterpret({int64_sql}, 'Decimal64({exponent})')"

    if check_sql is None:
        return typed(minor_sql)
    failure = (f"toInt64(throwIf(({check_sql}) != {exponent}, "
               f"'currency exponents changed during the export, run it again'))")
    # if() evaluates each branch only for its own rows, so the check costs one comparison.
    return f"if(({check_sql}) = {exponent}, {typed(minor_sql)}, {typed(failure)})"


def timestamp_text(sql: str, style: str = DEFAULT_TIMESTAMP_STYLE) -> str:
    rule = TIMESTAMP_STYLES[style]
    wall = f"formatDateTime({sql}, {sql_string(rule.clickhouse_pattern)})"
    if not rule.with_offset:
        return wall
    offset = f"formatDateTime({sql}, '%z')"  # +HHMM in the value's own zone
    return f"concat({wall}, substring({offset}, 1, 3), ':', substring({offset}, 4, 2))"


def date_text(sql: str) -> str:
    return f"formatDateTime({sql}, {sql_string(DATE_PATTERN)})"


def boolean_text(sql: str) -> str:
    true, false = BOOLEAN_TEXT
    return f"if({sql}, {sql_string(true)}, {sql_string(false)})"


def needs_csv_quotes(text_sql: str) -> str:
    """SQL: the String holds a character that makes its CSV field need quotes."""
    return f"multiSearchAny({text_sql}, [{', '.join(sql_string(c) for c in CSV_SPECIAL_CHARS)}])"


def csv_quote(text_sql: str) -> str:
    """The CSV field of a String: as is, or double-quoted with quotes doubled when it holds a
    delimiter, quote or line break (RFC 4180 minimal quoting, as Stripe's files and Python's
    csv.QUOTE_MINIMAL)."""
    return (f"if({needs_csv_quotes(text_sql)}, "
            f"concat('\"', replaceAll({text_sql}, '\"', '\"\"'), '\"'), {text_sql})")


def formula_guard(text_sql: str) -> str:
    # The first byte (0 for ''), looked up in a constant set: cheaper than an anchored regex.
    first_bytes = ", ".join(str(ord(c)) for c in FORMULA_START_CHARS)
    return (f"if(has([{first_bytes}], reinterpretAsUInt8({text_sql})), "
            f"concat('''', {text_sql}), {text_sql})")


def format_column(column_sql: str, kind: ColumnKind, *, guard_formulas: bool,
                  exponent_sql: str = ident(EXPONENT_COLUMN),
                  exponents: Iterable[int] | None = None, nullable: bool = True,
                  timestamp_style: str = DEFAULT_TIMESTAMP_STYLE) -> str:
    """A String expression formatting one column of the given kind (NULL -> '');
    `exponents` as for money_major. `nullable=False` (the column's type is not Nullable) drops
    the NULL handling, which costs a pass over the column."""
    if kind == "money":
        text = money_major(column_sql, exponent_sql, exponents)
    elif kind == "integer":
        text = f"toString({column_sql})"
    elif kind == "timestamp":
        text = timestamp_text(column_sql, timestamp_style)
    elif kind == "date":
        text = date_text(column_sql)
    elif kind == "boolean":
        text = boolean_text(column_sql)
    elif kind in ("string", "json"):
        text = f"toString({column_sql})"
        if guard_formulas:
            text = formula_guard(text)
    else:
        raise ValueError(f"unknown column kind {kind!r}")
    if not nullable:
        return text
    # isNull on the column, not on the result: if(NULL, 'true', 'false') would say 'false'.
    return f"if(isNull({column_sql}), '', assumeNotNull({text}))"


# How the CSV fields below leave the engine: CustomSeparated with the Raw escaping rule prints
# each field's text as is (csv_field has already quoted what needs quoting), comma-separated, LF
# line ends; NULL prints as an empty field. Written into the SELECT itself (a call carrying
# per-query settings would be buffered whole by clickhouse-connect on chdb).
CSV_OUTPUT_FORMAT = "CustomSeparated"
CSV_FIELD_SETTINGS = (
    "output_format_decimal_trailing_zeros = 1, format_tsv_null_representation = '', "
    "format_custom_escaping_rule = 'Raw', format_custom_field_delimiter = ',', "
    "format_custom_row_after_delimiter = '\\n'")


def single_exponent(row_exponents: Iterable[int]) -> int | None:
    """The exponent every row has, if there is exactly one and money_typed can print it."""
    exponents = {int(e) for e in row_exponents}
    if len(exponents) == 1 and 0 <= (exponent := exponents.pop()) <= MAX_DECIMAL64_SCALE:
        return exponent
    return None


def csv_field(column_sql: str, column: Column, type_name: str, *, money_format: str = "major",
              row_exponents: Iterable[int] = (), exponent_sql: str = ident(EXPONENT_COLUMN),
              check_exponent: bool = True, timestamp_style: str = DEFAULT_TIMESTAMP_STYLE,
              only_field: bool = False, quote: bool | None = None) -> str:
    """One CSV field under CSV_FIELD_SETTINGS, its final text: typed where ClickHouse's own
    text for the type already is our format (integers; money when every row has one exponent),
    formatted text otherwise, strings quoted only when they need it. Formula guard only on
    `user_text` columns. NULL prints as an empty field.

    `type_name`: the column's ClickHouse type; `row_exponents`: QueryFacts.row_exponents;
    `check_exponent`: typed money verifies the row's exponent (see money_typed). The check is per
    row, so one typed money column per row is enough to carry it. `only_field`: the report has
    this one column, so an empty value must be written `""` (an empty line is no row at all).
    `quote`: whether a string field may need quotes; by default user text may and platform codes
    (IDs, currencies, statuses: fixed alphabets) may not. The CSV writer passes what the totals
    query found for codes (QueryFacts.quoted_codes), so the quoting work, which runs after the
    report's ORDER BY on one thread, is spent only on columns that can need it."""
    nullable = "Nullable(" in type_name
    exponents = sorted({int(e) for e in row_exponents})
    if quote is None:
        quote = column.user_text
    if only_field:
        text = format_column(column_sql, column.kind, guard_formulas=column.user_text,
                             exponent_sql=exponent_sql, exponents=exponents, nullable=nullable,
                             timestamp_style=timestamp_style)
        if column.kind == "money" and money_format == "minor":
            text = f"ifNull(toString({column_sql}), '')"
        quoted = csv_quote(text) if column.kind in ("string", "json") and quote else text
        return f"if({text} = '', '\"\"', {quoted})"
    if column.kind == "integer" or (column.kind == "money" and money_format == "minor"):
        return column_sql
    if column.kind == "money" and (exponent := single_exponent(exponents)) is not None:
        return money_typed(column_sql, exponent, check_sql=exponent_sql if check_exponent else None)
    if column.kind in ("string", "json") and type_name in ("String", "LowCardinality(String)"):
        text = formula_guard(column_sql) if column.user_text else column_sql
        return csv_quote(text) if quote else text
    text = format_column(column_sql, column.kind, guard_formulas=column.user_text,
                         exponent_sql=exponent_sql, exponents=exponents, nullable=nullable,
                         timestamp_style=timestamp_style)
    return csv_quote(text) if column.kind in ("string", "json") and quote else text


def xml_escape(text_sql: str) -> str:
    """XML-escape a String for element content AND leave nothing TSV output would escape, so a
    TabSeparated stream of such values is the XML itself. Characters XML 1.0 forbids are dropped."""
    escaped = text_sql
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\\'", "&apos;"),
                        ("\\\\", "&#92;"), ("\\t", "&#9;"), ("\\n", "&#10;"), ("\\r", "&#13;")):
        escaped = f"replaceAll({escaped}, '{raw}', '{entity}')"
    return f"replaceRegexpAll({escaped}, '[\\\\x00-\\\\x08\\\\x0B\\\\x0C\\\\x0E-\\\\x1F]', '')"
