"""ClickHouse expressions that format one typed report column as text.

Formatting inside the engine keeps the CSV path at engine speed (per-row Python formatting was
measured 8-10x slower). Every function takes the SQL of a column reference and returns SQL text;
nothing user-supplied is ever formatted into it (column references are quoted identifiers).

Rules (shared by CSV and the PDF tables):
- money: Int64 minor units + the row's `_exponent` -> major units, exact integer arithmetic
  (never floats): JPY '1234', USD '10.00', KWD '1.234', '-0.05'; no '+', no thousands separator.
- timestamp: 'YYYY-MM-DD HH:MM:SS' in the column's own timezone (the catalog already converted it).
- date: 'YYYY-MM-DD'.  boolean: 'true' / 'false'.  integer: decimal digits.
- NULL -> empty string.
- string/json (CSV only): a cell beginning with = + - @ TAB or CR gets a leading apostrophe so a
  spreadsheet does not evaluate it as a formula (OWASP CSV injection). Money and numbers are never
  touched, so '-5.00' stays '-5.00'.
"""

from __future__ import annotations

from collections.abc import Iterable

from clickhouse_connect.driver.binding import quote_identifier

from exports.reports.query import ColumnKind

EXPONENT_COLUMN = "_exponent"
CURRENCY_COLUMN = "_currency"

# A leading character a spreadsheet would treat as the start of a formula.
FORMULA_START_CHARS = "=+-@\t\r"
# Decimal64 holds 18 digits: the largest scale a reinterpreted Int64 can have.
MAX_DECIMAL64_SCALE = 18


def ident(name: str) -> str:
    return quote_identifier(name)


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


def timestamp_text(sql: str) -> str:
    return f"formatDateTime({sql}, '%Y-%m-%d %H:%i:%S')"


def date_text(sql: str) -> str:
    return f"formatDateTime({sql}, '%Y-%m-%d')"


def boolean_text(sql: str) -> str:
    return f"if({sql}, 'true', 'false')"


def formula_guard(text_sql: str) -> str:
    # The first byte (0 for ''), looked up in a constant set: cheaper than an anchored regex.
    first_bytes = ", ".join(str(ord(c)) for c in FORMULA_START_CHARS)
    return (f"if(has([{first_bytes}], reinterpretAsUInt8({text_sql})), "
            f"concat('''', {text_sql}), {text_sql})")


def format_column(column_sql: str, kind: ColumnKind, *, guard_formulas: bool,
                  exponent_sql: str = ident(EXPONENT_COLUMN),
                  exponents: Iterable[int] | None = None) -> str:
    """A String expression formatting one column of the given kind (NULL -> '');
    `exponents` as for money_major."""
    if kind == "money":
        text = money_major(column_sql, exponent_sql, exponents)
    elif kind == "integer":
        text = f"toString({column_sql})"
    elif kind == "timestamp":
        text = timestamp_text(column_sql)
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
    # isNull on the column, not on the result: if(NULL, 'true', 'false') would say 'false'.
    return f"if(isNull({column_sql}), '', assumeNotNull({text}))"


def xml_escape(text_sql: str) -> str:
    """XML-escape a String for element content AND leave nothing TSV output would escape, so a
    TabSeparated stream of such values is the XML itself. Characters XML 1.0 forbids are dropped."""
    escaped = text_sql
    for raw, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\\'", "&apos;"),
                        ("\\\\", "&#92;"), ("\\t", "&#9;"), ("\\n", "&#10;"), ("\\r", "&#13;")):
        escaped = f"replaceAll({escaped}, '{raw}', '{entity}')"
    return f"replaceRegexpAll({escaped}, '[\\\\x00-\\\\x08\\\\x0B\\\\x0C\\\\x0E-\\\\x1F]', '')"
