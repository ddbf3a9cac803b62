"""XLSX: sheet XML generated inside ClickHouse, zipped with static workbook parts.

Why: Python XLSX libraries build every cell as a Python object (xlsxwriter constant_memory: 41 s
for 1M rows, openpyxl write_only: 67 s). Here ClickHouse turns each row into one line of
SpreadsheetML — `<row><c s=".."><v>10.00</v></c><c t="inlineStr">…</c>…</row>` — with strings
XML-escaped such that TabSeparated output has nothing left to escape (see sqlformat.xml_escape),
and we stream those lines via `raw_stream(fmt="TabSeparated")` straight into the zip entry of
the current sheet. Python only counts newlines to split sheets; memory stays constant.

Workbook layout (formats from exports.writers.formatting, the one rule table):
- typed cells: integers and money are numbers (money in major units, written as the exact
  decimal text, with a number format by the row's currency that shows its code and exponent:
  '#,##0.00 "USD"', '#,##0 "JPY"', '#,##0.000 "KWD"'), timestamps/dates are Excel serial dates
  with 'yyyy-mm-dd hh:mm:ss' / 'yyyy-mm-dd' formats, booleans are booleans, strings are inline
  strings, NULL is an empty cell. money_format="minor": integers, headers `<name>_minor`.
- bold frozen header row, autofilter over the data; column widths from the content (the longest
  value of each column, measured by one aggregate over the report before the rows stream, as the
  widths come first in the sheet XML), so a 30-character ID is not clipped and a currency column
  is not as wide as one.
- print setup: landscape, fit to one page wide, the header row repeated on every printed page,
  sheet name and "Page n of N" in the footer.
- a new sheet ("Report", "Report (2)", …) every 1,048,575 data rows (Excel's row limit minus the
  header), instead of failing or truncating.
Rows and cells carry no `r` attribute: SpreadsheetML makes it optional and readers (Excel,
LibreOffice, openpyxl) number them in order.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape

from clickhouse_connect.driver.client import Client

from exports.reports.query import Column, Manifest, ReportQuery
from exports.writers.formatting import (DATE_EXCEL_FORMAT, DEFAULT_TIMESTAMP_STYLE,
                                        TIMESTAMP_STYLES, column_headers, excel_money_format)
from exports.writers.manifest import (Progress, QueryFacts, atomic_output, build_manifest,
                                      check_row_count, file_digest)
from exports.writers.sqlformat import (CURRENCY_COLUMN, EXPONENT_COLUMN, ident, money_major,
                                       sql_string, xml_escape)

EXCEL_MAX_DATA_ROWS = 1_048_575  # 1,048,576 rows per sheet, one of them the header
READ_CHUNK_BYTES = 1 << 20
ZIP_LEVEL = 1  # deflate level: sheet XML compresses ~10x even at level 1, and 3x faster than 6
MAX_MONEY_EXPONENT = 6

# cellXfs indexes (styles.xml below)
STYLE_HEADER, STYLE_DATE, STYLE_TIMESTAMP, STYLE_INTEGER_MONEY = 1, 2, 3, 4
STYLE_MONEY_BASE = 5  # + exponent, 0..MAX_MONEY_EXPONENT (a currency the styles do not name)
STYLE_CURRENCY_BASE = STYLE_MONEY_BASE + MAX_MONEY_EXPONENT + 1  # + the currency's position
EXCEL_EPOCH_OFFSET_DAYS = 25569  # 1970-01-01 as an Excel (1900 system) serial
MIN_WIDTH, MAX_WIDTH = 6, 80  # characters
FILTER_BUTTON_WIDTH = 2  # the autofilter arrow sits on the header cell

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def _money_style_sql(currencies: list[str]) -> str:
    """The row's money style index: its currency's (code shown), else by exponent."""
    by_exponent = (f"toUInt64({STYLE_MONEY_BASE} + least(toUInt8({ident(EXPONENT_COLUMN)}), "
                   f"{MAX_MONEY_EXPONENT}))")
    if not currencies:
        return f"toString({by_exponent})"
    if len(currencies) == 1:  # the typical account: one constant, no per-cell lookup
        return (f"if({ident(CURRENCY_COLUMN)} = {sql_string(currencies[0])}, "
                f"'{STYLE_CURRENCY_BASE}', toString({by_exponent}))")
    codes = ", ".join(sql_string(c) for c in currencies)
    styles = ", ".join(str(STYLE_CURRENCY_BASE + i) for i in range(len(currencies)))
    return f"toString(transform({ident(CURRENCY_COLUMN)}, [{codes}], [{styles}], {by_exponent}))"


def _cell_sql(ref: str, column: Column, money_format: str, exponents=None,
              currencies: list[str] | None = None) -> str:
    """SQL producing one `<c>` element (String) for a column value; `exponents` as for
    sqlformat.money_major; `currencies`: those with their own money style (_styles_xml)."""
    if column.kind == "money":
        if money_format == "minor":
            cell = f"concat('<c s=\"{STYLE_INTEGER_MONEY}\"><v>', toString({ref}), '</v></c>')"
        else:
            style = _money_style_sql(currencies or [])
            cell = f"concat('<c s=\"', {style}, '\"><v>', {money_major(ref, exponents=exponents)}, '</v></c>')"
    elif column.kind == "integer":
        cell = f"concat('<c><v>', toString({ref}), '</v></c>')"
    elif column.kind == "timestamp":
        wall_seconds = f"(toInt64(toUnixTimestamp(toDateTime({ref}))) + timezoneOffset({ref}))"
        cell = (f"concat('<c s=\"{STYLE_TIMESTAMP}\"><v>', "
                f"toString({EXCEL_EPOCH_OFFSET_DAYS} + {wall_seconds} / 86400), '</v></c>')")
    elif column.kind == "date":
        cell = (f"concat('<c s=\"{STYLE_DATE}\"><v>', "
                f"toString({EXCEL_EPOCH_OFFSET_DAYS} + toInt32({ref})), '</v></c>')")
    elif column.kind == "boolean":
        cell = f"concat('<c t=\"b\"><v>', if({ref}, '1', '0'), '</v></c>')"
    else:
        cell = (f"concat('<c t=\"inlineStr\"><is><t xml:space=\"preserve\">', "
                f"{xml_escape(f'toString({ref})')}, '</t></is></c>')")
    return f"if(isNull({ref}), '<c/>', {cell})"


def rows_select(query: ReportQuery, facts: QueryFacts, money_format: str) -> str:
    currencies = sorted(facts.exponents)
    cells = ", ".join(_cell_sql(facts.column_sql(i), c, money_format, facts.exponents.values(),
                                currencies)
                      for i, c in enumerate(query.columns))
    return f"SELECT concat('<row>', {cells}, '</row>') FROM ({query.sql})"


def content_widths(client: Client, query: ReportQuery, facts: QueryFacts, money_format: str,
                   names: list[str]) -> list[float]:
    """Column widths (characters) from the longest value of each column as it will show: one
    aggregate over the report's rows (no ORDER BY needed, so it runs on every core)."""
    exprs = []
    for index, column in enumerate(query.columns):
        ref = facts.column_sql(index)
        if column.kind in ("string", "json"):
            exprs.append(f"max(lengthUTF8(ifNull(toString({ref}), '')))")
        elif column.kind == "money":
            # Digits of the largest amount (in minor units when the file is in minor units).
            exprs.append(f"max(abs(toInt128(ifNull({ref}, 0))))")
        elif column.kind == "integer":
            exprs.append(f"max(abs(toInt128(ifNull({ref}, 0))))")
        else:
            exprs.append("0")
    row = client.query(f"SELECT {', '.join(exprs)} FROM ({query.sql})",
                       parameters=query.parameters).result_rows[0] if exprs else []
    exponent = max(facts.exponents.values(), default=0)
    widths = []
    for column, name, longest in zip(query.columns, names, row, strict=True):
        longest = len(str(int(longest or 0))) if column.kind in ("money", "integer") else int(longest or 0)
        if column.kind == "money":
            if money_format == "minor":
                content = longest + 1 + (longest - 1) // 3  # sign, thousands separators
            else:
                digits = max(longest - exponent, 1)
                content = 1 + digits + (digits - 1) // 3 + (exponent + 1 if exponent else 0)
                content += 4 if facts.exponents else 0  # ' USD'
        elif column.kind == "integer":
            content = longest + 1 + (longest - 1) // 3
        elif column.kind == "timestamp":
            content = 19
        elif column.kind == "date":
            content = 10
        elif column.kind == "boolean":
            content = 5
        else:
            content = longest
        header = len(name) + FILTER_BUTTON_WIDTH
        widths.append(float(min(max(content + 1, header + 1, MIN_WIDTH), MAX_WIDTH)))
    return widths


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _sheet_head(names: list[str], widths: list[float]) -> bytes:
    cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{w}" customWidth="1"/>'
                   for i, w in enumerate(widths))
    header = "".join(f'<c s="{STYLE_HEADER}" t="inlineStr"><is><t>{escape(name)}</t></is></c>'
                     for name in names)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<worksheet xmlns="{NS_MAIN}" xmlns:r="{NS_REL}">'
        '<sheetPr><pageSetUpPr fitToPage="1"/></sheetPr>'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
        'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        f'<cols>{cols}</cols><sheetData><row r="1">{header}</row>\n'
    ).encode()


def _sheet_tail(column_count: int, data_rows: int) -> bytes:
    ref = f"A1:{_column_letter(column_count - 1)}{data_rows + 1}"
    # Landscape, one page wide (as many tall as it takes); footer: sheet, page n of N.
    return (f'</sheetData><autoFilter ref="{ref}"/>'
            '<printOptions horizontalCentered="1"/>'
            '<pageMargins left="0.4" right="0.4" top="0.5" bottom="0.6" header="0.3" footer="0.3"/>'
            '<pageSetup orientation="landscape" fitToWidth="1" fitToHeight="0"/>'
            '<headerFooter><oddFooter>&amp;L&amp;A&amp;RPage &amp;P of &amp;N</oddFooter></headerFooter>'
            '</worksheet>').encode()


def _styles_xml(currencies: dict[str, int]) -> str:
    """Styles; `currencies` (code -> exponent) get money formats that show their code."""
    money_formats = [excel_money_format(e) for e in range(MAX_MONEY_EXPONENT + 1)]
    money_formats += [f'{excel_money_format(min(e, MAX_MONEY_EXPONENT))} "{code.upper()}"'
                      for code, e in sorted(currencies.items())]
    timestamp_format = TIMESTAMP_STYLES[DEFAULT_TIMESTAMP_STYLE].excel_format
    numfmts = [f'<numFmt numFmtId="164" formatCode="{DATE_EXCEL_FORMAT}"/>',
               f'<numFmt numFmtId="165" formatCode="{timestamp_format}"/>']
    numfmts += [f'<numFmt numFmtId="{166 + i}" formatCode="{escape(code, {chr(34): "&quot;"})}"/>'
                for i, code in enumerate(money_formats)]
    xf = '<xf numFmtId="{}" fontId="{}" fillId="0" borderId="0" xfId="0"{}/>'
    xfs = [xf.format(0, 0, ""), xf.format(0, 1, ' applyFont="1"'),
           xf.format(164, 0, ' applyNumberFormat="1"'), xf.format(165, 0, ' applyNumberFormat="1"'),
           xf.format(3, 0, ' applyNumberFormat="1"')]
    xfs += [xf.format(166 + i, 0, ' applyNumberFormat="1"') for i in range(len(money_formats))]
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<styleSheet xmlns="{NS_MAIN}">'
        f'<numFmts count="{len(numfmts)}">{"".join(numfmts)}</numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '</styleSheet>'
    )


def _sheet_name(number: int) -> str:
    return "Report" if number == 1 else f"Report ({number})"


def _package_parts(sheet_count: int, title: str, currencies: dict[str, int]) -> dict[str, str]:
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    sheets = "".join(f'<sheet name="{_sheet_name(n)}" sheetId="{n}" r:id="rId{n}"/>'
                     for n in range(1, sheet_count + 1))
    # Print titles: the header row repeats on every printed page of every sheet.
    titles = "".join(f'<definedName name="_xlnm.Print_Titles" localSheetId="{n - 1}">'
                     f"'{_sheet_name(n)}'!$1:$1</definedName>" for n in range(1, sheet_count + 1))
    sheet_rels = "".join(
        f'<Relationship Id="rId{n}" Type="{NS_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, sheet_count + 1))
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, sheet_count + 1))
    return {
        "[Content_Types].xml": head + (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/styles.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
            '<Override PartName="/docProps/core.xml" ContentType="application/'
            'vnd.openxmlformats-package.core-properties+xml"/>'
            f'{overrides}</Types>'),
        "_rels/.rels": head + (
            f'<Relationships xmlns="{NS_PKG_REL}">'
            f'<Relationship Id="rId1" Type="{NS_REL}/officeDocument" Target="xl/workbook.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
            'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
            '</Relationships>'),
        "docProps/core.xml": head + (
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">'
            f'<dc:title>{escape(title)}</dc:title><dc:creator>payreports</dc:creator>'
            '</cp:coreProperties>'),
        "xl/workbook.xml": head + (
            f'<workbook xmlns="{NS_MAIN}" xmlns:r="{NS_REL}"><bookViews><workbookView/></bookViews>'
            f'<sheets>{sheets}</sheets><definedNames>{titles}</definedNames></workbook>'),
        "xl/_rels/workbook.xml.rels": head + (
            f'<Relationships xmlns="{NS_PKG_REL}">{sheet_rels}'
            f'<Relationship Id="rId{sheet_count + 1}" Type="{NS_REL}/styles" Target="styles.xml"/>'
            '</Relationships>'),
        "xl/styles.xml": _styles_xml(currencies),
    }


def write_xlsx(client: Client, query: ReportQuery, facts: QueryFacts, out_path: Path, *,
               progress: Progress, money_format: Literal["major", "minor"] = "major",
               max_rows_per_sheet: int = EXCEL_MAX_DATA_ROWS) -> Manifest:
    columns = query.columns
    sql = rows_select(query, facts, money_format)
    names = column_headers(query.columns, money_format)
    widths = content_widths(client, query, facts, money_format, names)
    total_rows = 0
    sheet_count = 0
    with atomic_output(out_path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED,
                             compresslevel=ZIP_LEVEL, allowZip64=True) as archive:
            sheet = None
            sheet_rows = 0

            def open_sheet():
                nonlocal sheet, sheet_rows, sheet_count
                sheet_count += 1
                sheet_rows = 0
                sheet = archive.open(f"xl/worksheets/sheet{sheet_count}.xml", "w", force_zip64=True)
                sheet.write(_sheet_head(names, widths))

            def close_sheet():
                sheet.write(_sheet_tail(len(columns), sheet_rows))
                sheet.close()

            open_sheet()
            try:
                stream = client.raw_stream(sql, parameters=query.parameters, fmt="TabSeparated")
            except BaseException:
                sheet.close()  # the zip cannot close (and the error surface) with an entry open
                raise
            try:
                pending = b""
                while chunk := stream.read(READ_CHUNK_BYTES):
                    # Write whole lines only, so a sheet boundary never splits a row.
                    chunk = pending + chunk
                    end = chunk.rfind(b"\n") + 1
                    pending, chunk = chunk[end:], chunk[:end]
                    while chunk:
                        lines = chunk.count(b"\n")
                        room = max_rows_per_sheet - sheet_rows
                        if lines <= room:
                            sheet.write(chunk)
                            sheet_rows += lines
                            progress.advance(lines)
                            break
                        cut = 0
                        for _ in range(room):
                            cut = chunk.index(b"\n", cut) + 1
                        sheet.write(chunk[:cut])
                        sheet_rows += room
                        progress.advance(room)
                        chunk = chunk[cut:]
                        close_sheet()
                        open_sheet()
                if pending:
                    raise RuntimeError("the XLSX row stream ended in the middle of a row")
            except BaseException:
                sheet.close()
                raise
            finally:
                stream.close()
            close_sheet()
            total_rows = progress.rows
            for name, text in _package_parts(sheet_count, query.title, facts.exponents).items():
                archive.writestr(name, text)
        check_row_count(total_rows, facts, query)
    byte_size, sha256 = file_digest(out_path)
    progress.finish(total_rows)
    return build_manifest(query, "xlsx", out_path, facts, byte_size=byte_size, sha256=sha256,
                          row_count=total_rows, sheets=sheet_count, columns=names,
                          extra={"money_format": money_format,
                                 "max_rows_per_sheet": max_rows_per_sheet})
