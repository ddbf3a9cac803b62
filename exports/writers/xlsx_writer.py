"""XLSX: sheet XML generated inside ClickHouse, zipped with static workbook parts.

Why: Python XLSX libraries build every cell as a Python object (xlsxwriter constant_memory: 41 s
for 1M rows, openpyxl write_only: 67 s). Here ClickHouse turns each row into one line of
SpreadsheetML — `<row><c s=".."><v>10.00</v></c><c t="inlineStr">…</c>…</row>` — with strings
XML-escaped such that TabSeparated output has nothing left to escape (see sqlformat.xml_escape),
and we stream those lines via `raw_stream(fmt="TabSeparated")` straight into the zip entry of
the current sheet. Python only counts newlines to split sheets; memory stays constant.

Workbook layout:
- typed cells: integers and money are numbers (money in major units, written as the exact
  decimal text, with a currency number format by the row's exponent: '#,##0', '#,##0.00',
  '#,##0.000', …), timestamps/dates are Excel serial dates with 'yyyy-mm-dd hh:mm:ss' /
  'yyyy-mm-dd' formats, booleans are booleans, strings are inline strings, NULL is an empty cell.
- bold frozen header row, autofilter over the data, column widths by kind and header length.
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
from exports.writers.manifest import (Progress, QueryFacts, atomic_output, build_manifest,
                                      check_row_count, file_digest)
from exports.writers.sqlformat import EXPONENT_COLUMN, ident, money_major, xml_escape

EXCEL_MAX_DATA_ROWS = 1_048_575  # 1,048,576 rows per sheet, one of them the header
READ_CHUNK_BYTES = 1 << 20
ZIP_LEVEL = 1  # deflate level: sheet XML compresses ~10x even at level 1, and 3x faster than 6
MAX_MONEY_EXPONENT = 6

# cellXfs indexes (styles.xml below)
STYLE_HEADER, STYLE_DATE, STYLE_TIMESTAMP, STYLE_INTEGER_MONEY = 1, 2, 3, 4
STYLE_MONEY_BASE = 5  # + exponent, 0..MAX_MONEY_EXPONENT
EXCEL_EPOCH_OFFSET_DAYS = 25569  # 1970-01-01 as an Excel (1900 system) serial

NS_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
NS_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
NS_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"


def _cell_sql(ref: str, column: Column, money_format: str, exponents=None) -> str:
    """SQL producing one `<c>` element (String) for a column value; `exponents` as for
    sqlformat.money_major."""
    if column.kind == "money":
        if money_format == "minor":
            cell = f"concat('<c s=\"{STYLE_INTEGER_MONEY}\"><v>', toString({ref}), '</v></c>')"
        else:
            style = f"toString({STYLE_MONEY_BASE} + least(toUInt8({ident(EXPONENT_COLUMN)}), {MAX_MONEY_EXPONENT}))"
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
    cells = ", ".join(_cell_sql(facts.column_sql(i), c, money_format, facts.exponents.values())
                      for i, c in enumerate(query.columns))
    return f"SELECT concat('<row>', {cells}, '</row>') FROM ({query.sql})"


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _width(column: Column) -> float:
    by_kind = {"money": 14, "integer": 10, "timestamp": 20, "date": 12, "boolean": 8,
               "string": 22, "json": 40}
    return float(min(max(by_kind[column.kind], len(column.name) + 3), 60))


def _sheet_head(columns: tuple[Column, ...]) -> bytes:
    cols = "".join(f'<col min="{i + 1}" max="{i + 1}" width="{_width(c)}" customWidth="1"/>'
                   for i, c in enumerate(columns))
    header = "".join(f'<c s="{STYLE_HEADER}" t="inlineStr"><is><t>{escape(c.name)}</t></is></c>'
                     for c in columns)
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<worksheet xmlns="{NS_MAIN}" xmlns:r="{NS_REL}">'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
        'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        f'<cols>{cols}</cols><sheetData><row r="1">{header}</row>\n'
    ).encode()


def _sheet_tail(column_count: int, data_rows: int) -> bytes:
    ref = f"A1:{_column_letter(column_count - 1)}{data_rows + 1}"
    return f'</sheetData><autoFilter ref="{ref}"/></worksheet>'.encode()


def _styles_xml() -> str:
    money_formats = ["#,##0" + ("." + "0" * e if e else "") for e in range(MAX_MONEY_EXPONENT + 1)]
    numfmts = ['<numFmt numFmtId="164" formatCode="yyyy-mm-dd"/>',
               '<numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/>']
    numfmts += [f'<numFmt numFmtId="{166 + e}" formatCode="{code}"/>' for e, code in enumerate(money_formats)]
    xf = '<xf numFmtId="{}" fontId="{}" fillId="0" borderId="0" xfId="0"{}/>'
    xfs = [xf.format(0, 0, ""), xf.format(0, 1, ' applyFont="1"'),
           xf.format(164, 0, ' applyNumberFormat="1"'), xf.format(165, 0, ' applyNumberFormat="1"'),
           xf.format(3, 0, ' applyNumberFormat="1"')]
    xfs += [xf.format(166 + e, 0, ' applyNumberFormat="1"') for e in range(MAX_MONEY_EXPONENT + 1)]
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


def _package_parts(sheet_count: int, title: str) -> dict[str, str]:
    head = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    sheets = "".join(f'<sheet name="{_sheet_name(n)}" sheetId="{n}" r:id="rId{n}"/>'
                     for n in range(1, sheet_count + 1))
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
            f'<sheets>{sheets}</sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": head + (
            f'<Relationships xmlns="{NS_PKG_REL}">{sheet_rels}'
            f'<Relationship Id="rId{sheet_count + 1}" Type="{NS_REL}/styles" Target="styles.xml"/>'
            '</Relationships>'),
        "xl/styles.xml": _styles_xml(),
    }


def write_xlsx(client: Client, query: ReportQuery, facts: QueryFacts, out_path: Path, *,
               progress: Progress, money_format: Literal["major", "minor"] = "major",
               max_rows_per_sheet: int = EXCEL_MAX_DATA_ROWS) -> Manifest:
    columns = query.columns
    sql = rows_select(query, facts, money_format)
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
                sheet.write(_sheet_head(columns))

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
            for name, text in _package_parts(sheet_count, query.title).items():
                archive.writestr(name, text)
        check_row_count(total_rows, facts, query)
    byte_size, sha256 = file_digest(out_path)
    progress.finish(total_rows)
    return build_manifest(query, "xlsx", out_path, facts, byte_size=byte_size, sha256=sha256,
                          row_count=total_rows, sheets=sheet_count,
                          extra={"money_format": money_format,
                                 "max_rows_per_sheet": max_rows_per_sheet})
