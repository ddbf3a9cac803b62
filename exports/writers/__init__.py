"""Report writers: stream a `ReportQuery`'s rows from ClickHouse into CSV, XLSX, PDF or Parquet
with bounded memory, and describe the file with a `Manifest`.

    manifest = write_report(client, query, "csv", Path("out.csv"), gzip=True)

`client` is any clickhouse-connect client (embedded chdb or a server). Each format module says
how it streams; `manifest.py` says where totals come from. Every writer writes to a temp file
beside `out_path` and renames it into place only when complete.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from clickhouse_connect.driver.client import Client

from exports.errors import InvalidParameter
from exports.reports.query import Manifest, ReportQuery
from exports.settings import Settings, get_settings
from exports.writers.formatting import DEFAULT_TIMESTAMP_STYLE, validate_timestamp_style
from exports.writers.manifest import Progress, inspect_query

if TYPE_CHECKING:
    from exports.writers.pdf_writer import SummaryRows

FORMATS = ("csv", "xlsx", "pdf", "parquet")
FILE_SUFFIXES = {"csv": ".csv", "xlsx": ".xlsx", "pdf": ".pdf", "parquet": ".parquet"}
# A CSV of at most this many rows is read whole in one query (write_small_csv), above it streamed
# after a totals query: the rows are held in memory once (~200 bytes each).
SMALL_CSV_ROWS = 20_000


def write_report(client: Client, query: ReportQuery, fmt: str, out_path: Path, *,
                 progress: Callable[[int], None] | None = None, gzip: bool = False,
                 money_format: Literal["major", "minor"] = "major",
                 settings: Settings | None = None,
                 xlsx_rows_per_sheet: int | None = None, csv_bom: bool = False,
                 timestamp_format: str = DEFAULT_TIMESTAMP_STYLE,
                 small_csv_rows: list[tuple] | None = None,
                 summary_pdf_rows: "SummaryRows | None" = None) -> Manifest:
    """Write the report to `out_path` in `fmt`; `progress(rows_written)` is called a few times a
    second at most and once with the final count. `xlsx_rows_per_sheet` overrides Excel's sheet
    size (for tests of the sheet split). CSV only: `csv_bom` starts the file with a UTF-8 BOM
    (Excel on Windows), `timestamp_format` 'iso8601' prints timestamps with their UTC offset,
    `small_csv_rows` are the rows of its one-query path fetched already (exports.reports.batches);
    `summary_pdf_rows` are a summary PDF's (pdf_writer.SummaryRows), fetched the same way."""
    if fmt not in FORMATS:
        raise InvalidParameter(f"Unsupported format {fmt!r}; use one of {', '.join(FORMATS)}.",
                               param="format")
    if money_format not in ("major", "minor"):
        raise InvalidParameter(f"Unsupported money_format {money_format!r}; use 'major' or 'minor'.",
                               param="money_format")
    if gzip and fmt != "csv":
        raise InvalidParameter("gzip compression is only available for CSV.", param="compression")
    if csv_bom and fmt != "csv":
        raise InvalidParameter("A byte order mark (csv_bom) is only available for CSV.",
                               param="csv_bom")
    validate_timestamp_style(timestamp_format)
    if timestamp_format != DEFAULT_TIMESTAMP_STYLE and fmt != "csv":
        raise InvalidParameter(
            f"timestamp_format {timestamp_format!r} is only available for CSV (XLSX and Parquet "
            "carry typed timestamps).", param="timestamp_format")
    settings = settings or get_settings()
    out_path = Path(out_path)
    tracker = Progress(progress)
    if fmt == "pdf" and query.shape == "summary":
        # A summary PDF is a few seconds end to end, ~0.7 s of which is importing weasyprint:
        # import it while the engine runs the query (chdb and HTTP calls release the GIL; the
        # renderer's own import waits for this one). Its facts come from that one query.
        _preload("weasyprint", "jinja2")
        from exports.writers.pdf_writer import write_summary_pdf
        return write_summary_pdf(client, query, out_path, progress=tracker, settings=settings,
                                 prefetched=summary_pdf_rows)
    if fmt == "csv" and (small_csv_rows is not None or tries_small_csv(query)):
        from exports.writers.csv_writer import write_small_csv
        manifest = write_small_csv(client, query, out_path, max_rows=SMALL_CSV_ROWS,
                                   progress=tracker, gzip=gzip, money_format=money_format,
                                   bom=csv_bom, timestamp_style=timestamp_format,
                                   rows=small_csv_rows)
        if manifest is not None:
            return manifest
    facts = inspect_query(client, query)
    if fmt == "csv":
        from exports.writers.csv_writer import write_csv
        return write_csv(client, query, facts, out_path, progress=tracker, gzip=gzip,
                         money_format=money_format, bom=csv_bom, timestamp_style=timestamp_format)
    if fmt == "xlsx":
        from exports.writers.xlsx_writer import write_xlsx
        from exports.writers.xlsx_writer import EXCEL_MAX_DATA_ROWS
        return write_xlsx(client, query, facts, out_path, progress=tracker,
                          money_format=money_format,
                          max_rows_per_sheet=xlsx_rows_per_sheet or EXCEL_MAX_DATA_ROWS)
    if fmt == "parquet":
        from exports.writers.parquet_writer import write_parquet
        return write_parquet(client, query, facts, out_path, progress=tracker,
                             money_format=money_format)
    from exports.writers.pdf_writer import write_itemized_pdf
    return write_itemized_pdf(client, query, facts, out_path, progress=tracker, settings=settings)


def tries_small_csv(query: ReportQuery) -> bool:
    """Worth trying in one query (write_small_csv): a summary (rows per day or category), or an
    itemized report whose account is known to be small. A wrong guess costs one query."""
    if query.shape == "summary":
        return True
    return query.rows_bound is not None and query.rows_bound <= SMALL_CSV_ROWS


def _preload(*modules: str) -> None:
    def run() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # the renderer imports it again and reports the real error
                return

    threading.Thread(target=run, name="preload-" + "-".join(modules), daemon=True).start()


__all__ = ["FORMATS", "FILE_SUFFIXES", "tries_small_csv", "write_report"]
